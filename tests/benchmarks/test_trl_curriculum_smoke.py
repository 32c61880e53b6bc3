"""The TRL curriculum benchmark (TRL's sampler against CurriculumGRPOTrainer) runs end to end
(``--smoke``). Needs the ``trl`` extra; skipped without it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import checkout_env

pytest.importorskip("trl")


def test_smoke_run_trains_every_arm_and_writes_the_summary(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.trl_curriculum", "--smoke",
         "--out", str(out)],
        cwd=tmp_path, env=checkout_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["arms"]) == {"trl", "uniform", "dump-ucb"}
    for arm in ("uniform", "dump-ucb"):
        run = json.loads((out / f"{arm}-seed-0.json").read_text())
        assert [p["step"] for p in run["curve"]] == [0, 1, 2, 3]
        assert run["client_s"] > 0 and run["path_s"] > 0  # the curriculum's time was measured
        assert 0.0 <= summary["arms"][arm]["final"]["mean"] <= 1.0
    assert "| dump-ucb |" in proc.stdout
