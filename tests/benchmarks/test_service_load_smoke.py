"""The service load benchmark runs end to end at tiny sizes and writes sane JSON."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

SECTIONS = (
    "redis_py",
    "math",
    "bare",
    "plan",
    "report",
    "ratios",
    "plan_rate",
    "window",
    "memory",
    "client",
    "targets",
)
POSITIVE = (
    "rps",
    "p50_ms",
    "p99_ms",
    "weights_us_p50",
    "compose_us_p50",
    "live_bytes",
    "live_bytes_per_distribution",
    "logs_bytes",
    "step_mean_ms",
    "overhead_pct",
    "rps_vs_bare",
)


def _numbers(rows: list[dict[str, Any]]) -> list[tuple[str, float]]:
    return [
        (key, value)
        for row in rows
        for key, value in row.items()
        if key in POSITIVE and isinstance(value, int | float)
    ]


@pytest.mark.timeout(120)
def test_smoke_run_writes_positive_finite_results(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    out = tmp_path / "smoke.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.service_load", "--smoke", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "plan, closed loop" in done.stdout

    results = json.loads(out.read_text())
    for section in SECTIONS:
        assert results[section], f"section {section!r} is empty"
    assert {row["case"] for row in results["plan"]} == {"kept", "new step"}
    for section in SECTIONS:
        if section == "targets":
            continue
        numbers = _numbers(results[section])
        assert numbers, f"no numbers in {section!r}"
        for key, value in numbers:
            assert math.isfinite(value) and value > 0, f"{section}.{key} = {value}"
    for row in [*results["plan"], *results["report"], *results["bare"]]:
        assert row["errors"] == 0 and row["requests"] > 0
    for row in results["targets"]:
        assert isinstance(row["met"], bool) and math.isfinite(row["value"])


@pytest.mark.timeout(60)
def test_noisy_neighbour_smoke_measures_the_small_tenant_alone_and_beside(
    tmp_path: Path,
) -> None:
    """``--noisy-neighbour --smoke``: the small tenant's plans alone and beside a large
    tenant's back-to-back reports, every request answered, in a few seconds."""
    out = tmp_path / "noisy.json"
    command = ["-m", "benchmarks.service_load", "--noisy-neighbour", "--smoke", "--out", str(out)]
    done = subprocess.run(
        [sys.executable, *command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Small tenant's plan" in done.stdout
    results = json.loads(out.read_text())
    small = {row["small tenant"]: row for row in results["noisy_small"]}
    assert set(small) == {"alone", "beside the large one"}
    (large,) = results["noisy_large"]
    assert large["requests"] > 0 and large["errors"] == 0
    assert large["body_bytes"] > 8 * large["values_per_report"] * 0.5
    for row in [*small.values(), large]:
        assert row["errors"] == 0 and row["requests"] > 0
        assert 0 < row["p50_ms"] <= row["p99_ms"] <= row["max_ms"]
