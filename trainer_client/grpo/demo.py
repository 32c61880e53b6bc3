"""``demo_main``: a few minutes of GRPO on the tiny model, on 2 CPU cores, with DUMP.

Nine digit-reversal distributions (lengths 1-8 and 11). A short supervised warm start leaves
the short lengths solved, the middle ones partly, and length 11 (never solved in a few
minutes) hopeless; DUMP should move weight off both ends onto what is still learnable,
while the greedy test reward rises.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from trainer_client.grpo.cli import add_service_flags, scheduler_session
from trainer_client.grpo.config import TrainConfig
from trainer_client.grpo.metrics import read_metrics
from trainer_client.grpo.report import series, write_report
from trainer_client.grpo.tasks import build_distributions
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


def demo_main(argv: list[str] | None = None) -> int:
    """Train, then write ``weights.png``, ``test_reward.png`` and print the numbers."""
    p = argparse.ArgumentParser(description="GRPO + DUMP demo on the tiny model (CPU)")
    p.add_argument("--output-dir", default="runs/demo")
    p.add_argument("--steps", type=int, default=DEMO["steps"])
    p.add_argument(
        "--strategy",
        default="dump-ucb",
        help="dump-ucb | dump-rehearse | dump-ducb | uniform | sec | learning-progress | exp3s",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    add_service_flags(p)
    args = p.parse_args(argv)
    config = TrainConfig(
        **{**DEMO, "steps": args.steps},
        strategy=args.strategy,
        seed=args.seed,
        output_dir=args.output_dir,
    )
    torch.manual_seed(config.seed)
    start = time.perf_counter()
    dists = build_distributions(
        config.task, config.levels, config.seed, config.train_size, config.test_size
    )
    names = [d.name for d in dists]
    with scheduler_session(config, names, args.service_url, args.run_id, args.token) as scheduler:
        trainer = GRPOTrainer(config, scheduler, distributions=dists, progress=not args.no_progress)
        trainer.train()
        trainer.log.close()
    wall = time.perf_counter() - start
    records = read_metrics(trainer.log.path)
    charts = write_report(trainer.log.path, config.output_dir)
    evals = series(records, "eval/")
    weights = series(records, "weight/")
    step_times = [r["time/step"] for r in records if "time/step" in r]
    print(f"{'distribution':>14} {'test reward before':>19} {'after':>6} {'final weight':>13}")
    for name, (_, values) in evals.items():
        print(f"{name:>14} {values[0]:>19.2f} {values[-1]:>6.2f} {weights[name][1][-1]:>13.3f}")
    means = [r["eval/mean"] for r in records if "eval/mean" in r]
    print(f"mean test reward {means[0]:.3f} -> {means[-1]:.3f}")
    print(f"median step {np.median(step_times) * 1000:.1f} ms, wall time {wall:.0f} s")
    print("charts: " + ", ".join(str(c) for c in charts))
    return 0
