"""The real-GRPO curriculum benchmark runs end to end against a real service (``--smoke``)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import checkout_env


def _finite_unit(values: list[float]) -> bool:
    return bool(values) and all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in values)


def _smoke(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m benchmarks.grpo_curriculum --smoke *args`` from ``tmp_path``, which must
    exit 0."""
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.grpo_curriculum", "--smoke", *args],
        cwd=tmp_path,
        env=checkout_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_smoke_run_writes_finite_rewards(tmp_path: Path) -> None:
    out = tmp_path / "smoke"
    proc = _smoke(tmp_path, "--out", str(out))
    report = json.loads((out / "results.json").read_text())
    assert set(report["cells"]) == {"dump-ucb", "uniform"}
    assert {run["label"] for run in report["runs"]} == {"dump-ucb", "uniform"}
    assert report["paired_starts_equal"]
    assert _finite_unit(list(report["target"].values()))
    steps = report["eval_steps"]
    assert steps[0] == 0 and steps[-1] == 5
    for run in report["runs"]:
        assert run["eval_steps"] == steps
        assert _finite_unit(run["eval_mean"])
        assert run["eval"] and all(_finite_unit(v) for v in run["eval"].values())
        # one weight vector per step, a probability distribution each
        assert all(len(v) == 5 for v in run["weights"].values())
        for step in range(5):
            assert math.isclose(sum(v[step] for v in run["weights"].values()), 1.0, abs_tol=1e-6)
        assert math.isfinite(run["wall_s"]) and run["wall_s"] > 0
    for cell in report["cells"].values():
        assert _finite_unit(cell["final"]) and _finite_unit(cell["curve_mean"])
        assert math.isfinite(cell["final_mean"]) and cell["reached"] in (0, 1)
    for image in report["images"]:
        assert Path(image).stat().st_size > 0
    assert "mean test reward" in proc.stdout  # one progress line per run


def test_seeds_run_in_parallel_then_one_report(tmp_path: Path) -> None:
    """``--only-seed`` processes share ``--out`` (a service each); the plain run then only
    reports, starting no service."""
    out = tmp_path / "grid"
    common = [
        sys.executable,
        "-m",
        "benchmarks.grpo_curriculum",
        *("--smoke", "--seeds", "2", "--strategies", "uniform", "--out", str(out)),
    ]
    procs = [
        subprocess.Popen(
            [*common, "--only-seed", str(seed)],
            cwd=tmp_path,
            env=checkout_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (0, 1)
    ]
    try:
        for proc in procs:
            _, err = proc.communicate(timeout=180)
            assert proc.returncode == 0, err[-3000:]
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    assert not (out / "results.json").exists()  # a seed's process writes no report
    services = {p.name for p in out.iterdir() if p.name.startswith("service")}
    assert services == {"service-seed0-uniform", "service-seed1-uniform"}
    proc = subprocess.run(
        common, cwd=tmp_path, env=checkout_env(), capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (out / "service").exists()  # every run was done: no service was started
    report = json.loads((out / "results.json").read_text())
    assert report["cells"]["uniform"]["seeds"] == [0, 1]
    assert sorted(run["seed"] for run in report["runs"]) == [0, 1]


def test_solved_then_lost_and_the_paired_baseline() -> None:
    """A distribution counts as lost when it reached the bar at some evaluation and ended
    below it; differences are paired by seed against the ``baseline`` label's runs."""
    from benchmarks.grpo_curriculum import lapses, solved_then_lost, summarise

    def run(label: str, seed: int, a: list[float], b: list[float]) -> dict[str, object]:
        return {
            "label": label,
            "seed": seed,
            "eval_steps": [0, 50, 100],
            "eval_mean": [(x + y) / 2 for x, y in zip(a, b, strict=True)],
            "eval": {"a": a, "b": b},
            "weights": {},
            "group_size": 8,
            "wall_s": 1.0,
        }

    kept = run("x", 0, [0.5, 0.95, 0.9], [0.0, 0.2, 0.3])
    lost = run("y", 0, [0.5, 0.95, 0.4], [0.0, 0.2, 0.5])
    assert solved_then_lost(kept) == {}
    assert solved_then_lost(lost) == {"a": 0.4}
    assert lapses(kept) == 0 and lapses(lost) == 1  # a at 0.4 < 0.5 once solved; b never was
    assert lapses(run("z", 0, [0.95, 0.1, 0.3], [0.0, 0.95, 0.2])) == 3
    runs = [kept, lost, run("x", 1, [0.1, 0.2, 0.6], [0.1, 0.1, 0.1])]
    runs.append(run("y", 1, [0.1, 0.2, 0.4], [0.1, 0.1, 0.1]))
    summary = summarise(runs, ["x", "y"], baseline="y")
    assert summary["baseline"] == "y"
    assert summary["cells"]["y"]["lost"] == [{"a": 0.4}, {}]
    diff = summary["cells"]["x"]["vs_baseline"]["final"]
    assert math.isclose(diff["mean"], (0.6 - 0.45 + 0.35 - 0.25) / 2)


def test_dynamic_sampling_runs_through_the_config(tmp_path: Path) -> None:
    """``--set dynamic_sampling=true`` reaches TrainConfig: each run records the groups it
    generated and trained, and never trains more than it generated."""
    out = tmp_path / "smoke"
    _smoke(tmp_path, "--strategies", "uniform", "--set", "dynamic_sampling=true",
           "--set", "max_rounds=2", "--out", str(out))  # fmt: skip
    (run,) = json.loads((out / "results.json").read_text())["runs"]
    generated, trained = run["generated_groups"], run["trained_groups"]
    assert sum(generated.values()) >= 5 * 4  # 5 steps, at least round 0's batch each
    assert all(0 <= trained.get(name, 0) <= n for name, n in generated.items())


def test_prompt_selection_arm_records_groups(tmp_path: Path) -> None:
    """The ``dump-guard+prompts`` arm trains with prompt selection, ``uniform`` beside it
    without; each run records the groups it generated, the zero-variance ones among them,
    and the groups generated before each evaluation (rollouts to a target)."""
    out = tmp_path / "smoke"
    _smoke(tmp_path, "--strategies", "uniform,dump-guard+prompts", "--out", str(out))
    report = json.loads((out / "results.json").read_text())
    runs = {run["label"]: run for run in report["runs"]}
    assert runs["dump-guard+prompts"]["prompt_selection"] is True
    assert runs["uniform"]["prompt_selection"] is False
    for run in runs.values():
        assert sum(run["generated_groups"].values()) == 5 * 4  # 5 steps of 4 prompts
        zero = sum(run["zero_variance_groups"].values())
        assert run["zero_variance_fraction"] == zero / 20
        assert run["eval_steps"] == [0, 2, 4, 5]
        assert run["generated_at_eval"] == [0, 8, 16, 20]
    for label, cell in report["cells"].items():
        assert cell["zero_variance_fraction"] == [runs[label]["zero_variance_fraction"]]
        (hit,) = cell["steps_to_target"]
        expected = None if hit is None else 4 * hit
        assert cell["groups_to_target"] == [expected]


def test_prompt_selection_set_reaches_the_config() -> None:
    """``--set prompt_selection=true`` (and its parameters) become TrainConfig fields of
    every run."""
    from benchmarks.grpo_curriculum import base_config, parse_args
    from trainer_client.grpo.config import TrainConfig

    args = parse_args(["--smoke", "--out", "x", "--set", "prompt_selection=true", "--set",
                       'prompt_selection_params={"mode": "coverage"}'])  # fmt: skip
    config = TrainConfig(**base_config(args))
    assert config.prompt_selection and config.prompt_selection_params == {"mode": "coverage"}


def test_mixed_task_with_prompt_and_dynamic_arms(tmp_path: Path) -> None:
    """``--task reverse-mixed``: lengths mixed inside each distribution; the prompt arm plans
    prompts, the dynamic arm over-generates, and the rollouts table counts both."""
    out = tmp_path / "mixed"
    arms = "dump-guard+prompts,uniform+dynamic"
    proc = _smoke(tmp_path, "--task", "reverse-mixed", "--strategies", arms, "--out", str(out))
    rows = [json.loads(line) for line in (out / "reverse-mixed.jsonl").read_text().splitlines()]
    mix = {"mix-1-4-7": {1, 4, 7}, "mix-2-5-8": {2, 5, 8}, "mix-3-6-9": {3, 6, 9}}
    for name, lengths in mix.items():
        train = [r for r in rows if r["data_source"] == name and r["split"] == "train"]
        assert len(train) == 300
        assert {len(r["answer"]) for r in train} == lengths
        assert all(r["prompt"] == r["answer"][::-1] + "=" for r in train)
    report = json.loads((out / "results.json").read_text())
    runs = {run["label"]: run for run in report["runs"]}
    assert set(runs["uniform+dynamic"]["eval"]) == set(mix)
    # smoke: 4 prompts x 4 rollouts a step, 5 steps
    assert runs["dump-guard+prompts"]["prompt_selection"] is True
    assert report["cells"]["dump-guard+prompts"]["rollouts_per_step"] == [16.0]
    dynamic = runs["uniform+dynamic"]
    trained = sum(dynamic["trained_groups"].values())
    generated = sum(dynamic["generated_groups"].values())
    # a full batch a step at most; round 0 always, at most max_rounds = 4 rounds a step, and
    # every round while the batch is short (the smoke model solves nothing: all dropped)
    assert trained <= 4 * 5 and 4 * 5 <= generated <= 4 * 4 * 5
    assert trained == 4 * 5 or generated > 4 * 5
    assert report["cells"]["uniform+dynamic"]["rollouts_per_step"] == [generated * 4 / 5]
    assert "rollouts to target" in proc.stdout and "| uniform+dynamic |" in proc.stdout


def test_weights_table_shows_the_last_step_and_the_last_tenth() -> None:
    """Where a run settles is the mean over its last tenth of steps, not its last step."""
    from benchmarks.grpo_curriculum import late_mean, weights_table

    assert late_mean([0.0] * 18 + [0.2, 0.6]) == pytest.approx(0.4)  # last 2 of 20
    assert late_mean([0.3, 0.5]) == 0.5  # fewer than 10 steps: the last one
    cells = {
        "x": {"final_weights": {"a": 0.6, "b": 0.4}, "late_weights": {"a": 0.55, "b": 0.45}},
        "old": {"final_weights": {"a": 0.5, "b": 0.5}},  # written before late_weights
    }
    lines = weights_table({"cells": cells}).splitlines()
    assert lines[0] == "| arm | weights | a | b |"
    assert lines[2:] == [
        "| x | last step | 0.600 | 0.400 |",
        "| x | last 10 % of steps | 0.550 | 0.450 |",
        "| old | last step | 0.500 | 0.500 |",
    ]


def test_the_buckets_the_filter_drops_and_where_their_weights_settle() -> None:
    """group_counts keeps the last tenth of the steps apart; a bucket counts as dropped when
    at least 95 % of its groups there were zero-variance, whatever it did before."""
    from benchmarks.grpo_curriculum import dropped_buckets, dropped_table, group_counts

    def step(a: tuple[int, int], b: tuple[int, int]) -> dict[str, object]:
        return {
            "time/step": 0.1,
            "generated_groups/a": a[0],
            "zero_variance_groups/a": a[1],
            "generated_groups/b": b[0],
            "zero_variance_groups/b": b[1],
        }

    # 20 steps: a is all zero-variance only in the last 2, b mixed throughout
    records = [{"event": "config"}] + [step((4, 0), (4, 2))] * 18 + [step((4, 4), (4, 2))] * 2
    records.insert(5, {"eval/mean": 0.5})  # an evaluation record is not a step
    counts = group_counts(records, dynamic_sampling=True)
    assert counts["late_generated_groups"] == {"a": 8, "b": 8}
    assert counts["late_zero_variance_groups"] == {"a": 8, "b": 4}
    assert counts["zero_variance_groups"] == {"a": 8, "b": 40}
    run = {**counts, "weights": {"a": [0.5] * 18 + [0.3, 0.2], "b": [0.5] * 18 + [0.7, 0.8]}}
    assert dropped_buckets(run) == {"a": pytest.approx(0.25)}
    assert dropped_buckets({"weights": {}}) is None  # recorded before the late counts
    cells = {
        "x": {"dropped": [{"a": 0.25}, {"a": 0.75, "b": 0.1}], "late_weights": {"a": 0, "b": 0}}
    }
    row = dropped_table({"cells": cells}).splitlines()[2]
    assert row == "| x | 3 | 0.367, 0.750 | 1 (1/K = 0.500) |"
