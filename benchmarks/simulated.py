"""Curriculum quality on simulated learners, every run scheduled by the real service.

Each (regime, strategy, seed) is one run of the service, driven through
:class:`trainer_client.AsyncCurriculumClient`: per step the client asks for the plan of a
batch of ``B`` prompts, the population learner of :mod:`sim.learner` rolls out ``G``
rollouts per prompt and learns, and the client reports the per-rollout GRPO advantages and
rewards. Many runs share one service process, multiplexed by one asyncio loop.

Metrics per run (over the regime's learnable distributions, from the learner's true success
probabilities): steps to the target mean success ``sim.regimes.TARGET``, the normalised area
under the mean-success curve, the final mean success; per cell, their means and 95 %
t-intervals over seeds. A run that never reaches the target counts its step budget as its
steps to target (a lower bound; the table says how many runs reached it).

    python -m benchmarks.simulated --seeds 10 --out results.json
    python -m benchmarks.simulated --smoke --out smoke.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from benchmarks.sim.learner import PopulationLearner
from benchmarks.sim.regimes import TARGET, Regime, all_regimes
from benchmarks.sim.stats import curve_band, interval, run_metrics
from curriculum_core import STRATEGIES, RunModel, strategy_from_dict
from trainer_client import AsyncCurriculumClient, ServiceUnavailable
from trainer_client.local_service import LocalService

BATCH = 16  # prompts per step (B)
GROUP = 8  # rollouts per prompt (G)

STRATEGY_CONFIGS: dict[str, dict[str, Any]] = {
    **{name: {"name": name} for name in STRATEGIES},
    "dump-ucb+floor": {"name": "dump-ucb", "floor": 0.1},
    "dump-ucb+regress": {"name": "dump-ucb", "regress_bonus": 1.0},
    "dump-ucb+spread": {"name": "dump-ucb", "signal": "reward-spread"},
    "dump-ucb+centred": {"name": "dump-ucb"},
}
"""Label -> the ``strategy`` object the run is created with (service defaults otherwise)."""

CENTRED = {"dump-ucb+centred"}
"""Labels whose trainer reports group-centred advantages ``r - mean(group)`` (the bundled
trainer's ``report_signal=centered``) instead of std-normalised ones. The learner learns the
same either way: only what the scheduler sees changes."""


def centred(rewards: list[float]) -> list[float]:
    """``r - mean(group)`` for one distribution's rewards, laid out group after group."""
    r = np.asarray(rewards, dtype=np.float64).reshape(-1, GROUP)
    return (r - r.mean(axis=1, keepdims=True)).ravel().tolist()


SMOKE_REGIME = "ladder6"
SMOKE_SCALE = 0.15  # ladder6 runs 30 steps in a smoke run
TRACE_REGIME = "forgetting"  # the regime whose seed-0 weights are kept for the plot
RUN_ATTEMPTS = 3  # tries of a run the service failed (5xx after the client's retries)


@dataclass
class RunResult:
    """One run: the learnable mean-success curve and what the service said along the way."""

    regime: str
    label: str
    seed: int
    curve: list[float]
    final_success: list[float]
    success_auc: list[float]
    window_mean: dict[str, float]
    local_plans: int
    weights: list[list[float]] = field(default_factory=list)


def available(labels: list[str]) -> tuple[list[str], dict[str, str]]:
    """The labels whose config the scheduling code accepts, and why the others are skipped."""
    ok: list[str] = []
    skipped: dict[str, str] = {}
    for label in labels:
        try:
            strategy_from_dict(dict(STRATEGY_CONFIGS[label]))
        except ValueError as exc:
            skipped[label] = str(exc)
        else:
            ok.append(label)
    return ok, skipped


class CoreScheduler:
    """The scheduling core in this process (``--engine core``): the client's calls, answered
    by a :class:`curriculum_core.RunModel`, which the property tests hold to the service."""

    def __init__(self, names: list[str], strategy: dict[str, Any], seed: int) -> None:
        self.model = RunModel(names, strategy, seed)

    async def plan(self, step: int, batch_size: int) -> SimpleNamespace:
        return SimpleNamespace(assignment=self.model.plan(step, batch_size), source="service")

    async def report(
        self, step: int, advantages: dict[str, list[float]], rewards: dict[str, list[float]]
    ) -> SimpleNamespace:
        self.model.apply(f"step-{step}", advantages, rewards)
        return SimpleNamespace(weights=self.model.named_weights())

    async def run_info(self) -> dict[str, Any]:
        means = self.model.stats().window_mean
        return {
            "stats": {
                n: {"window_mean": float(m)} for n, m in zip(self.model.names, means, strict=True)
            }
        }

    async def delete(self) -> None:
        return None

    async def close(self) -> None:
        return None


async def open_scheduler(
    url: str | None, regime: Regime, label: str, seed: int
) -> AsyncCurriculumClient | CoreScheduler:
    """A run on the service at ``url``, or in this process when ``url`` is None."""
    if url is None:
        return CoreScheduler(list(regime.names), STRATEGY_CONFIGS[label], seed)
    tag = uuid.uuid4().hex[:6]
    return await AsyncCurriculumClient.create_or_attach(
        url,
        list(regime.names),
        run_id=re.sub(r"[^A-Za-z0-9._-]", "_", f"sim-{regime.name}-{label}-{seed}-{tag}"),
        strategy=STRATEGY_CONFIGS[label],
        seed=seed,
        refresh_every=10**9,
        timeout=60.0,
    )


async def run_one(
    url: str | None, regime: Regime, label: str, seed: int, keep_weights: bool
) -> RunResult:
    """Train one simulated learner for ``regime.steps`` steps under the scheduler's plans."""
    dynamics = regime.make(seed)
    learner = PopulationLearner(dynamics, GROUP, np.random.default_rng(seed))
    index = {name: j for j, name in enumerate(regime.names)}
    learnable = list(regime.learnable)
    client = await open_scheduler(url, regime, label, seed)
    curve: list[float] = []
    success_sum = np.zeros(dynamics.k)
    weights: list[list[float]] = []
    local_plans = 0
    try:
        for step in range(regime.steps):
            plan = await client.plan(step, BATCH)
            local_plans += plan.source != "service"
            out = learner.step(step, [index[name] for name in plan.assignment])
            if label in CENTRED:
                reported = {j: centred(out.rewards[j]) for j in out.advantages}
            else:
                reported = out.advantages
            result = await client.report(
                step,
                {regime.names[j]: v for j, v in reported.items()},
                rewards={regime.names[j]: v for j, v in out.rewards.items()},
            )
            success = learner.success()
            success_sum += success
            curve.append(float(success[learnable].mean()))
            if keep_weights:
                weights.append([float(result.weights[name]) for name in regime.names])
        info = await client.run_info()
        await client.delete()
    finally:
        await client.close()
    stats = info.get("stats", {})
    window_mean = {
        name: float(s.get("window_mean", math.nan))
        for name, s in stats.items()
        if isinstance(s, Mapping)
    }
    return RunResult(
        regime=regime.name,
        label=label,
        seed=seed,
        curve=curve,
        final_success=[float(v) for v in learner.success()],
        success_auc=(success_sum / regime.steps).tolist(),
        window_mean=window_mean,
        local_plans=local_plans,
        weights=weights,
    )


async def run_all(
    url: str | None, regimes: list[Regime], labels: list[str], seeds: int, parallel: int
) -> list[RunResult]:
    """Every (regime, label, seed) run, at most ``parallel`` at once; progress on stderr."""
    jobs = [(r, lab, s) for r in regimes for lab in labels for s in range(seeds)]
    total_steps = sum(r.steps for r, _, _ in jobs)
    gate = asyncio.Semaphore(parallel)
    done_steps = 0
    results: list[RunResult] = []
    start = time.monotonic()

    async def guarded(regime: Regime, label: str, seed: int) -> None:
        nonlocal done_steps
        async with gate:
            keep = regime.name == TRACE_REGIME and seed == 0
            for attempt in range(1, RUN_ATTEMPTS + 1):
                # a run the service failed is redone whole, under a new id
                try:
                    res = await run_one(url, regime, label, seed, keep)
                except ServiceUnavailable as exc:
                    if attempt == RUN_ATTEMPTS:
                        raise
                    print(f"{regime.name} {label} seed {seed}: {exc}; redo", file=sys.stderr)
                    continue
                if res.local_plans == 0 or attempt == RUN_ATTEMPTS:
                    break
                print(f"{regime.name} {label} seed {seed}: local plans; redo", file=sys.stderr)
        results.append(res)
        done_steps += regime.steps
        elapsed = time.monotonic() - start
        eta = elapsed * (total_steps - done_steps) / max(done_steps, 1)
        print(
            f"[{len(results)}/{len(jobs)} runs, {done_steps}/{total_steps} steps, "
            f"{elapsed:.0f} s, eta {eta:.0f} s] {regime.name} {label} seed {seed}: "
            f"final {res.curve[-1]:.3f}"
            + (f" ({res.local_plans} local plans!)" if res.local_plans else ""),
            file=sys.stderr,
            flush=True,
        )

    await asyncio.gather(*(guarded(r, lab, s) for r, lab, s in jobs))
    return results


def summarise(
    regimes: list[Regime], labels: list[str], results: list[RunResult]
) -> dict[str, dict[str, Any]]:
    """Per (regime, label): per-run metrics, their intervals, and the mean curve with band."""
    cells: dict[str, dict[str, Any]] = {}
    for regime in regimes:
        cells[regime.name] = {}
        for label in labels:
            runs = sorted(
                (r for r in results if r.regime == regime.name and r.label == label),
                key=lambda r: r.seed,
            )
            if not runs:
                continue
            metrics = [run_metrics(r.curve, TARGET) for r in runs]
            steps = [m["steps_to_target"] or regime.steps for m in metrics]
            mean, half = curve_band(np.array([r.curve for r in runs]))
            windows = {
                name: float(np.mean([r.window_mean.get(name, math.nan) for r in runs]))
                for name in regime.names
            }
            cells[regime.name][label] = {
                "strategy": STRATEGY_CONFIGS[label],
                "runs": [
                    {
                        "seed": r.seed,
                        **m,
                        "final_success": r.final_success,
                        "success_auc": r.success_auc,
                        "window_mean": r.window_mean,
                        "local_plans": r.local_plans,
                    }
                    for r, m in zip(runs, metrics, strict=True)
                ],
                "summary": {
                    "steps_to_target": interval(steps),
                    "reached": sum(m["steps_to_target"] is not None for m in metrics),
                    "auc": interval([float(m["auc"]) for m in metrics]),
                    "final": interval([float(m["final"]) for m in metrics]),
                    "final_success_per_distribution": np.mean(
                        [r.final_success for r in runs], axis=0
                    ).tolist(),
                    "success_auc_per_distribution": np.mean(
                        [r.success_auc for r in runs], axis=0
                    ).tolist(),
                    "window_mean_per_distribution": windows,
                    "local_plans": sum(r.local_plans for r in runs),
                },
                "curve_mean": mean.tolist(),
                "curve_half": half.tolist(),
            }
    return cells


def traces(results: list[RunResult]) -> dict[str, list[list[float]]]:
    """The per-step weights of seed 0 of the trace regime, per label."""
    return {r.label: r.weights for r in results if r.weights}


def plot(report: Mapping[str, Any], img_dir: Path) -> list[Path]:
    """Mean-success curves with 95 % bands per regime, and the forgetting regime's weights."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    cells = report["cells"]
    names = list(cells)
    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.3 * rows), squeeze=False)
    for ax, regime in zip(axes.flat, names, strict=False):
        for label, cell in cells[regime].items():
            mean, half = np.array(cell["curve_mean"]), np.array(cell["curve_half"])
            x = np.arange(1, mean.size + 1)
            (line,) = ax.plot(x, mean, label=label, lw=1.3)
            ax.fill_between(x, mean - half, mean + half, color=line.get_color(), alpha=0.2)
        ax.axhline(report["config"]["target"], color="grey", ls=":", lw=0.8)
        ax.set_title(regime)
        ax.set_xlabel("step")
        ax.set_ylabel("mean success (learnable)")
        ax.set_ylim(0, 1.02)
    for ax in list(axes.flat)[len(names) :]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    path = img_dir / "sim_success_curves.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)

    trace = report.get("weights_trace", {})
    if trace:
        dist_names = report["regimes"][TRACE_REGIME]["names"]
        cols = min(4, len(trace))
        rows = math.ceil(len(trace) / cols)
        fig, axes = plt.subplots(
            rows, cols, figsize=(4.2 * cols, 3.3 * rows), squeeze=False, sharey=True
        )
        for ax in list(axes.flat)[len(trace) :]:
            ax.axis("off")
        for ax, (label, w) in zip(axes.flat, trace.items(), strict=False):
            arr = np.array(w)
            x = np.arange(1, arr.shape[0] + 1)
            ax.plot(x, arr[:, 0], color="crimson", lw=1.6, label=f"{dist_names[0]} (forgets)")
            ax.plot(x, arr[:, 1:].max(axis=1), color="grey", lw=0.8, label="max of the ladder")
            ax.set_title(f"{label}, seed 0")
            ax.set_xlabel("step")
            ax.set_yscale("log")
            ax.set_ylim(1e-4, 1.5)
            ax.set_ylabel("sampling weight")
        axes.flat[0].legend(fontsize=8)
        fig.tight_layout()
        path = img_dir / "sim_forgetting_weights.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


def table(report: Mapping[str, Any]) -> str:
    """The results as a Markdown table, one row per (regime, strategy)."""
    lines = [
        "| regime | strategy | steps to target | reached | AUC | final |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for regime, by_label in report["cells"].items():
        for label, cell in by_label.items():
            s = cell["summary"]
            st, auc, fin = s["steps_to_target"], s["auc"], s["final"]
            lines.append(
                f"| {regime} | {label} | {st['mean']:.0f} ± {st['half']:.0f} | "
                f"{s['reached']}/{st['n']} | {auc['mean']:.3f} ± {auc['half']:.3f} | "
                f"{fin['mean']:.3f} ± {fin['half']:.3f} |"
            )
    return "\n".join(lines)


def checks(report: Mapping[str, Any]) -> list[str]:
    """The issue's targets, checked on the report, as sentences.

    On each ladder: ``dump-ucb``'s steps to target over ``uniform``'s (the ratio of the means,
    with the bounds from the two intervals' ends). On every regime: each rival whose 95 %
    interval lies wholly on the better side of ``dump-ucb``'s, on steps to target (fewer) or
    on AUC (more).
    """
    out: list[str] = []
    for regime, by_label in report["cells"].items():
        dump = by_label.get("dump-ucb")
        if dump is None:
            continue
        d = dump["summary"]
        uni = by_label.get("uniform")
        if regime.startswith("ladder") and uni is not None:
            ds, us = d["steps_to_target"], uni["summary"]["steps_to_target"]
            ratio = ds["mean"] / us["mean"]
            lo, hi = ds["lo"] / us["hi"], ds["hi"] / max(us["lo"], 1e-9)
            verdict = "met" if ratio <= 0.6 else "missed"
            out.append(
                f"{regime}: dump-ucb/uniform steps to target = {ratio:.2f} "
                f"(bounds {lo:.2f}..{hi:.2f}); target <= 0.6 {verdict}"
            )
        for label, cell in by_label.items():
            if label == "dump-ucb":
                continue
            r = cell["summary"]
            if r["steps_to_target"]["hi"] < d["steps_to_target"]["lo"]:
                out.append(
                    f"{regime}: {label} beats dump-ucb on steps to target "
                    f"({r['steps_to_target']['mean']:.0f} vs {d['steps_to_target']['mean']:.0f})"
                )
            if r["auc"]["lo"] > d["auc"]["hi"]:
                out.append(
                    f"{regime}: {label} beats dump-ucb on AUC "
                    f"({r['auc']['mean']:.3f} vs {d['auc']['mean']:.3f})"
                )
    return out


STATIONARY_SLACK = 1.15
"""A rule for forgetting learners may take this many times ``dump-ucb``'s steps to the
target on a regime that does not forget (issue 9's bar)."""
BASELINES = ("dump-ucb", "uniform", "sec")
"""The rules every candidate is held against."""


def _versus(mine: Mapping[str, float], theirs: Mapping[str, float]) -> str:
    """``beyond`` when ``mine``'s 95 % interval lies wholly above ``theirs``, ``below`` when
    wholly under it, ``level`` when the two meet."""
    if mine["lo"] > theirs["hi"]:
        return "beyond"
    return "below" if mine["hi"] < theirs["lo"] else "level"


def forgetting_checks(report: Mapping[str, Any]) -> list[str]:
    """Issue 9's bars for each candidate rule (every label but the baselines), as sentences.

    On a regime that does not forget: steps to target within :data:`STATIONARY_SLACK` times
    ``dump-ucb``'s (the ratio of the means). On one that forgets: final success against
    ``uniform``'s and ``sec``'s (:func:`_versus`).
    """
    out: list[str] = []
    regimes = report.get("regimes", {})
    for regime, by_label in report["cells"].items():
        forgets = regimes.get(regime, {}).get("forgets")
        for label, cell in by_label.items():
            if label in BASELINES or forgets is None:
                continue
            r = cell["summary"]
            if not forgets and "dump-ucb" in by_label:
                ratio = (
                    r["steps_to_target"]["mean"]
                    / by_label["dump-ucb"]["summary"]["steps_to_target"]["mean"]
                )
                verdict = "met" if ratio <= STATIONARY_SLACK else "missed"
                out.append(
                    f"{regime} (stationary): {label}/dump-ucb steps to target = {ratio:.2f}; "
                    f"target <= {STATIONARY_SLACK} {verdict}"
                )
            elif forgets:
                versus = [
                    f"{_versus(r['final'], by_label[b]['summary']['final'])} {b} "
                    f"({by_label[b]['summary']['final']['mean']:.3f})"
                    for b in ("uniform", "sec")
                    if b in by_label
                ]
                out.append(
                    f"{regime} (forgets): {label} final {r['final']['mean']:.3f}: "
                    + ", ".join(versus)
                )
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line (``argv``, or ``sys.argv[1:]`` when None)."""
    regimes = all_regimes()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seeds", type=int, default=10, help="seeds per (regime, strategy) cell")
    p.add_argument("--out", type=Path, default=Path("results.json"), help="results JSON")
    p.add_argument("--regimes", nargs="+", choices=sorted(regimes), help="default: all")
    p.add_argument(
        "--strategies", nargs="+", choices=sorted(STRATEGY_CONFIGS),
        help="strategy labels (default: every one the scheduling code accepts)",
    )  # fmt: skip
    p.add_argument("--url", help="an already running service (default: start one here)")
    p.add_argument(
        "--engine", choices=("service", "core"), default="service",
        help="service: every run scheduled over HTTP by the real service (default); core: by "
        "curriculum_core.RunModel in this process, the same math without the network "
        "(tests/service/test_core_agrees_with_service.py holds the two equal), for sweeps",
    )  # fmt: skip
    p.add_argument(
        "--service-dir", type=Path,
        help="data dir (Redis, service.log) of the started service (default: a temporary one)",
    )  # fmt: skip
    p.add_argument("--parallel", type=int, default=12, help="runs in flight at once")
    p.add_argument("--img-dir", type=Path, help="write the PNG plots there")
    p.add_argument("--table", type=Path, help="write the Markdown results table there")
    p.add_argument(
        "--render", action="store_true",
        help="run nothing: re-render the table, checks and plots from the --out JSON",
    )  # fmt: skip
    p.add_argument(
        "--smoke", action="store_true",
        help=f"2 seeds, {SMOKE_REGIME} for a few steps, dump-ucb and uniform",
    )  # fmt: skip
    args = p.parse_args(argv)
    if args.seeds < 2 and not args.smoke:
        p.error("--seeds must be >= 2 (intervals need two runs)")
    return args


def render(report: Mapping[str, Any], args: argparse.Namespace) -> None:
    """Print (and write, as asked) the table, the target checks and the plots."""
    md = table(report)
    print(md)
    for line in [*checks(report), *forgetting_checks(report)]:
        print(line)
    if args.table:
        args.table.write_text(md + "\n")
    if args.img_dir:
        for path in plot(report, args.img_dir):
            print(f"wrote {path}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or ``--render`` a finished one); the exit status."""
    args = parse_args(argv)
    if args.render:
        render(json.loads(args.out.read_text()), args)
        return 0
    scale = SMOKE_SCALE if args.smoke else 1.0
    regimes_by_name = all_regimes(scale)
    if args.smoke:
        seeds, regime_names = 2, [SMOKE_REGIME]
        wanted = args.strategies or ["dump-ucb", "uniform"]
    else:
        seeds, regime_names = args.seeds, args.regimes or list(regimes_by_name)
        wanted = args.strategies or list(STRATEGY_CONFIGS)
    labels, skipped = available(wanted)
    for label, why in skipped.items():
        print(f"skipping {label}: {why}", file=sys.stderr)
    regimes = [regimes_by_name[n] for n in regime_names]

    start = time.monotonic()
    if args.engine == "core":
        results = asyncio.run(run_all(None, regimes, labels, seeds, args.parallel))
    elif args.url:
        results = asyncio.run(run_all(args.url, regimes, labels, seeds, args.parallel))
    else:
        with LocalService(args.service_dir) as service:
            results = asyncio.run(run_all(service.url, regimes, labels, seeds, args.parallel))
    wall = time.monotonic() - start

    report: dict[str, Any] = {
        "command": " ".join(["python", "-m", "benchmarks.simulated", *(argv or sys.argv[1:])]),
        "wall_s": wall,
        "config": {
            "batch": BATCH,
            "group": GROUP,
            "target": TARGET,
            "seeds": seeds,
            "engine": args.engine,
        },
        "skipped": skipped,
        "regimes": {
            r.name: {
                "about": r.about,
                "forgets": r.forgets,
                "steps": r.steps,
                "names": list(r.names),
                "learnable": list(r.learnable),
            }
            for r in regimes
        },
        "cells": summarise(regimes, labels, results),
        "weights_trace": traces(results),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    render(report, args)
    print(f"{len(results)} runs in {wall:.1f} s -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
