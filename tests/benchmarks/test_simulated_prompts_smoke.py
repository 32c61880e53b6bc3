"""The prompt-selection benchmark runs end to end (``--smoke``) and its numbers are sane."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

from tests.conftest import checkout_env


def test_smoke_run_writes_every_arm(tmp_path: Path) -> None:
    out = tmp_path / "smoke.json"
    proc = subprocess.run(
        [
            sys.executable, "-m", "benchmarks.simulated_prompts", "--smoke",
            "--regimes", "prompts12", "--arms", "dump-ucb", "dump-ucb+select", "ds-dump-ucb",
            "--out", str(out),
        ],
        cwd=tmp_path, env=checkout_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    cells = json.loads(out.read_text())["cells"]["prompts12"]
    assert set(cells) == {"dump-ucb", "dump-ucb+select", "ds-dump-ucb"}
    for cell in cells.values():
        assert len(cell["runs"]) == 2
        for key in ("zero_variance", "zero_variance_run", "final"):
            assert 0.0 <= cell[key]["mean"] <= 1.0 and math.isfinite(cell[key]["half"])
        assert cell["rollouts_to_target"]["mean"] > 0
    assert "| prompts12 | dump-ucb+select |" in proc.stdout
