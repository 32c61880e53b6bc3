"""The simulated-learner benchmark runs end to end against a real service (``--smoke``)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

from tests.conftest import checkout_env


def test_smoke_run_writes_finite_metrics(tmp_path: Path) -> None:
    out = tmp_path / "smoke.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.simulated", "--smoke", "--out", str(out)],
        cwd=tmp_path,
        env=checkout_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    cells = report["cells"]
    assert len(cells) == 1
    (regime,) = cells.values()
    assert {"dump-ucb", "uniform"} <= set(regime)
    for cell in regime.values():
        runs = cell["runs"]
        assert len(runs) == 2
        for run in runs:
            assert run["local_plans"] == 0  # every plan came from the service
            for key in ("auc", "final"):
                assert math.isfinite(run[key]) and 0.0 <= run[key] <= 1.0
            assert all(0.0 <= s <= 1.0 for s in run["final_success"])
        summary = cell["summary"]
        for key in ("steps_to_target", "auc", "final"):
            assert all(math.isfinite(summary[key][f]) for f in ("mean", "half", "lo", "hi"))
        curve = cell["curve_mean"]
        assert curve and all(0.0 <= v <= 1.0 for v in curve)


def test_core_engine_matches_the_service(tmp_path: Path) -> None:
    """``--engine core`` (sweeps in one process) gives the service's numbers, run for run."""
    curves = {}
    for engine in ("service", "core"):
        out = tmp_path / f"{engine}.json"
        proc = subprocess.run(
            [
                sys.executable, "-m", "benchmarks.simulated", "--smoke",
                "--strategies", "dump-ducb", "sec", "--engine", engine, "--out", str(out),
            ],
            cwd=tmp_path, env=checkout_env(), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr[-3000:]
        cells = json.loads(out.read_text())["cells"]
        curves[engine] = {
            (regime, label): cell["curve_mean"]
            for regime, by_label in cells.items()
            for label, cell in by_label.items()
        }
    assert set(curves["core"]) == {("ladder6", "dump-ducb"), ("ladder6", "sec")}
    assert curves["core"] == curves["service"]
