"""schemathesis, with every check, against a real service on a real Redis: no failure.

A bounded run (a fixed seed, 40 examples per operation, every phase; about 10 s). The long
one is ``scripts/fuzz`` (docs/api.md, "Contract fuzzing").
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from tests.conftest import ROOT

pytestmark = pytest.mark.fuzz

OPERATOR_TOKEN = "contract-fuzz-operator"


def schemathesis_command(url: str, token: str, *args: str) -> list[str]:
    """``st run`` on the service at ``url`` with every check, the operator's token and the
    project's settings (``schemathesis.toml``: the statuses that depend on a run's state)."""
    return [
        sys.executable, "-m", "schemathesis.cli",
        "--config-file", str(ROOT / "schemathesis.toml"),
        "run", f"{url}/openapi.json",
        "--checks", "all",
        "--header", f"Authorization: Bearer {token}",
        "--workers", "1",
        *args,
    ]  # fmt: skip


def test_schemathesis_finds_nothing(start_service: Callable[..., str], tmp_path: Path) -> None:
    url = start_service(admin_token=SecretStr(OPERATOR_TOKEN))
    command = schemathesis_command(url, OPERATOR_TOKEN, "--max-examples", "40", "--seed", "1")
    proc = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    assert "No issues found" in out, out[-6000:]
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert f"✅ {phase}" in out, out[-3000:]
