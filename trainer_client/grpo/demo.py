"""``demo_main``: a few minutes of GRPO on the tiny model, on 2 CPU cores, curriculum against
uniform sampling.

Nine digit-reversal distributions (lengths 1-8 and 11). A short supervised warm start leaves
the short lengths solved, the middle ones partly, and length 11 (never solved in a few
minutes) hopeless. The demo trains the same model from the same warm start twice, one run
after the other: once with batches composed by the curriculum (the default strategy), once
with the mixture sampled uniformly, and says which ended ahead. A loss is reported as one.
"""

from __future__ import annotations

import argparse
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from curriculum_core import DEFAULT_STRATEGY, STRATEGIES
from trainer_client.grpo.cli import add_service_flags, scheduler_session
from trainer_client.grpo.config import TrainConfig
from trainer_client.grpo.metrics import read_metrics
from trainer_client.grpo.report import plot_means, series, write_report
from trainer_client.grpo.trainer import GRPOTrainer

DEMO = dict(
    levels=[1, 2, 3, 4, 5, 6, 7, 8, 11],
    max_new_tokens=12,
    steps=1500,
    warmstart_steps=400,
    lr=5e-4,
    kl_beta=0.1,
    eval_every=100,
    test_size=64,
)
"""The demo's departures from TrainConfig's defaults (found by trying on a 2-core CPU)."""


@dataclass(frozen=True)
class Arm:
    """One trained run of the demo: its strategy and what its evaluations said."""

    strategy: str
    steps: list[int]
    mean: list[float]
    per_distribution: dict[str, tuple[float, float]]
    final_weights: dict[str, float]
    step_s: float
    wall_s: float

    @property
    def area(self) -> float:
        """The mean of the mean test reward over the evaluations (start included)."""
        return float(np.mean(self.mean))

    def first_step_at(self, level: float) -> int | None:
        """The first evaluated step whose mean test reward is at least ``level``."""
        return next((s for s, v in zip(self.steps, self.mean, strict=True) if v >= level), None)


def train_arm(
    strategy: str, args: argparse.Namespace, url: str | None, output_dir: Path, main: bool
) -> Arm:
    """Train one run with ``strategy`` into ``output_dir``; its evaluations."""
    config = TrainConfig(
        **{**DEMO, "steps": args.steps, "warmstart_steps": args.warmstart_steps},
        strategy=strategy,
        seed=args.seed,
        output_dir=str(output_dir),
    )
    torch.manual_seed(config.seed)  # both arms: the same initial weights and warm start
    start = time.perf_counter()
    dists = config.distributions()
    names = [d.name for d in dists]
    # --run-id and --token name the curriculum's run; the baseline always gets a new one
    run_id, token = (args.run_id, args.token) if main else (None, None)
    with scheduler_session(config, names, url, run_id, token) as scheduler:
        trainer = GRPOTrainer(config, scheduler, distributions=dists, progress=not args.no_progress)
        trainer.train()
        trainer.log.close()
    wall = time.perf_counter() - start
    write_report(trainer.log.path, output_dir)
    records = read_metrics(trainer.log.path)
    evals = series(records, "eval/")
    weights = series(records, "weight/")
    return Arm(
        strategy=strategy,
        steps=[r["step"] for r in records if "eval/mean" in r],
        mean=[r["eval/mean"] for r in records if "eval/mean" in r],
        per_distribution={name: (v[0], v[-1]) for name, (_, v) in evals.items()},
        final_weights={name: v[-1] for name, (_, v) in weights.items()},
        step_s=float(np.median([r["time/step"] for r in records if "time/step" in r])),
        wall_s=wall,
    )


def print_arm(arm: Arm) -> None:
    """The per-distribution table of one arm."""
    print(f"\n{arm.strategy}: test reward per distribution")
    print(f"{'distribution':>14} {'test reward before':>19} {'after':>6} {'final weight':>13}")
    for name, (before, after) in arm.per_distribution.items():
        weight = arm.final_weights.get(name, float("nan"))
        print(f"{name:>14} {before:>19.2f} {after:>6.2f} {weight:>13.3f}")
    print(
        f"mean test reward {arm.mean[0]:.3f} -> {arm.mean[-1]:.3f}, area {arm.area:.3f}; "
        f"median step {arm.step_s * 1000:.1f} ms, wall time {arm.wall_s:.0f} s"
    )


def verdict(arm: Arm, baseline: Arm) -> list[str]:
    """Sentences comparing ``arm`` with ``baseline`` on the same seed: area, final mean
    test reward, steps to the level the baseline ends at; a loss is said to be one."""
    area = arm.area - baseline.area
    final = arm.mean[-1] - baseline.mean[-1]
    if area > 0.005:
        head = f"{arm.strategy} is ahead of {baseline.strategy}"
    elif area < -0.005:
        head = f"{arm.strategy} is BEHIND {baseline.strategy}: a loss on this seed"
    else:
        head = f"{arm.strategy} is level with {baseline.strategy}"
    lines = [
        f"{head}: area under the mean test reward {arm.area:.3f} against {baseline.area:.3f} "
        f"({area:+.3f}), final {arm.mean[-1]:.3f} against {baseline.mean[-1]:.3f} ({final:+.3f})."
    ]
    level = baseline.mean[-1]
    mine, theirs = arm.first_step_at(level), baseline.first_step_at(level)
    reached = f"step {mine}" if mine is not None else "not within the run"
    lines.append(
        f"Mean test reward {level:.3f} (where {baseline.strategy} ends): {arm.strategy} at "
        f"{reached}, {baseline.strategy} at step {theirs}."
    )
    lost = [
        name
        for name, (_, after) in arm.per_distribution.items()
        if baseline.per_distribution[name][1] - after >= 0.25
    ]
    if lost:
        lines.append(
            f"Distributions {baseline.strategy} ends well above {arm.strategy} on: "
            + ", ".join(lost)
        )
    lines.append(
        "One seed on one machine: docs/benchmarks.md has the paired comparison over 10 seeds."
    )
    return lines


def demo_main(argv: list[str] | None = None) -> int:
    """Train the curriculum and the baseline, print both tables and the comparison, write
    ``mean_test_reward.png`` (both mean curves) and each run's charts; the exit code."""
    p = argparse.ArgumentParser(
        description="GRPO on the tiny model (CPU): the curriculum against uniform sampling"
    )
    p.add_argument("--output-dir", default="runs/demo")
    p.add_argument("--steps", type=int, default=DEMO["steps"], help="GRPO steps per run")
    p.add_argument(
        "--warmstart-steps", type=int, default=DEMO["warmstart_steps"],
        help="supervised warm-start steps before GRPO (the same for both runs)",
    )  # fmt: skip
    p.add_argument("--strategy", default=DEFAULT_STRATEGY, choices=sorted(STRATEGIES))
    p.add_argument(
        "--baseline", default="uniform", choices=[*sorted(STRATEGIES), "none"],
        help="the strategy trained second, on the same seed, for the comparison (none: skip)",
    )  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    add_service_flags(p)
    args = p.parse_args(argv)
    out = Path(args.output_dir)
    labels = [args.strategy] + ([] if args.baseline == "none" else [args.baseline])
    with ExitStack() as stack:
        url = args.service_url
        if url is None:  # one local service for both runs
            from trainer_client.local_service import LocalService

            url = stack.enter_context(LocalService(out / "scheduler")).url
        arms = []
        for i, label in enumerate(labels):
            print(f"== {label} ({i + 1} of {len(labels)}): {args.steps} steps", flush=True)
            arms.append(train_arm(label, args, url, out / label, main=i == 0))
    for arm in arms:
        print_arm(arm)
    chart = plot_means(
        {arm.strategy: (arm.steps, arm.mean) for arm in arms},
        f"Mean greedy test reward, seed {args.seed}",
        out / "mean_test_reward.png",
    )
    if len(arms) == 2:
        print()
        print("\n".join(verdict(arms[0], arms[1])))
    print(f"charts: {chart}, and each run's in {', '.join(str(out / a) for a in labels)}")
    return 0
