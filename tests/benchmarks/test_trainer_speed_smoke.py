"""The trainer-speed benchmark (bundled GRPO trainer against TRL) runs end to end (``--smoke``).

Needs the ``bench`` extra (TRL); skipped without it.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import checkout_env

pytest.importorskip("trl")


def test_smoke_run_times_both_trainers(tmp_path: Path) -> None:
    out = tmp_path / "speed.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.trainer_speed",
            "--smoke",
            "--threads",
            "1",
            "--json",
            str(out),
        ],
        cwd=tmp_path,
        env=checkout_env(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    for key in ("ours", "trl"):
        row = report[key]
        assert math.isfinite(row["median_s"]) and row["median_s"] > 0
        assert math.isfinite(row["p90_s"]) and row["p90_s"] >= row["median_s"]
        # warm-up plus timed steps, each trainer
        assert len(row["step_s"]) == report["warmup"] + report["steps"]
        assert 1 <= row["completion_tokens"] <= 9
    assert math.isfinite(report["ratio_trl_over_ours"]) and report["ratio_trl_over_ours"] > 0
    assert "ratio TRL/ours" in proc.stdout
