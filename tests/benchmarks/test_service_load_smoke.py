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
    "prompts_plan",
    "prompts_report",
    "prompts_memory",
    "prompts_paired",
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
    "run_bytes",
    "rps_ratio_median",
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
    _check_prompt_section(results)


def _check_prompt_section(results: dict[str, Any]) -> None:
    """The prompt section: every case measured at every concurrency without an error, reports
    with 128 groups exactly where the run declares prompts, a byte of Redis per prompt (and
    none without), and a new-step paired ratio and its target per prompt count."""
    counts = results["sizes"]["prompt_counts"]
    assert 0 in counts and max(counts) > 0
    concurrencies = results["sizes"]["prompt_concurrencies"]
    plans = {
        (r["prompts_per_distribution"], r["case"], r["concurrency"])
        for r in results["prompts_plan"]
    }
    assert plans == {
        (n, case, c) for n in counts for case in ("kept", "new step") for c in concurrencies
    }
    for row in [*results["prompts_plan"], *results["prompts_report"]]:
        assert row["errors"] == 0 and row["requests"] > 0
        assert 0 < row["p50_ms"] <= row["p99_ms"]
    assert {(r["prompts_per_distribution"], r["groups"]) for r in results["prompts_report"]} == {
        (n, 128 if n else 0) for n in counts
    }
    for row in results["prompts_memory"]:
        assert row["prompts"] == 12 * row["prompts_per_distribution"]
        if row["prompts"]:
            # one byte a prompt, plus a 56-byte record per distribution and Redis's overhead
            assert (
                row["prompts"] + 12 * 56 <= row["prompt_state_bytes"] <= 2 * row["prompts"] + 4096
            )
        else:
            assert row["prompt_state_bytes"] == 0
        assert row["run_bytes"] > row["prompt_state_bytes"] + row["plans_bytes"]
        assert row["plans_kept"] > 0
    assert [r["prompts_per_distribution"] for r in results["prompts_paired"]] == list(counts)
    for row in results["prompts_paired"]:
        assert row["rps_ratio_min"] <= row["rps_ratio_median"] <= row["rps_ratio_max"]
    names = [row["target"] for row in results["targets"]]
    for n in counts:
        assert any(
            name.startswith("new-step plan") and f", {12 * n} prompts" in name for name in names
        )
    assert any(
        name.startswith(f"Redis memory of a run with {12 * max(counts)} prompts") for name in names
    )


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
