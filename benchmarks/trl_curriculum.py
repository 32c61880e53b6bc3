"""Does the curriculum make a TRL run learn faster? TRL's GRPOTrainer three ways, paired seeds.

Arms, each a real ``trl.GRPOTrainer`` run on the same warm-started tiny model and mixture:

- ``trl``: TRL's own sampler (uniform over the dataset's rows);
- ``uniform``: ``CurriculumGRPOTrainer`` with the ``uniform`` strategy (the integration's
  plumbing, no curriculum);
- ``dump-ucb``: ``CurriculumGRPOTrainer`` with the default strategy.

The mixture is the demo's: digit reversal of lengths 1-8 and 11 after a supervised warm start
(``benchmarks/grpo_curriculum.py``'s, saved once per seed and loaded by every arm), where at
the start the short lengths are solved and the long ones out of reach: more than half of the
distributions give no learning signal. The *learnable* distributions of a seed are those whose
greedy test reward at the start is between 0.05 and 0.95.

Per run, every ``--eval-every`` steps: the greedy test reward per distribution. Per arm, paired
with ``trl`` on each seed: the mean test reward of the learnable distributions at the end, the
area under its curve (mean over the evaluations), and the steps to a target (per seed, halfway
from the start to the best final value any arm reached). Also the scheduler's overhead per
TRL step: the time the training loop spends on the curriculum (waiting for a plan, handing a
report over) over the training time, and the time of the client's calls themselves (on the
integration's worker thread, off the loop's path).

    python -m benchmarks.trl_curriculum --seeds 5 --steps 400 --out runs/trl-bench
    python -m benchmarks.trl_curriculum --smoke --out /tmp/trl-smoke

Two processes on two cores: ``--seeds 3`` and ``--first-seed 3 --seeds 5`` into one
``--out``, then ``--seeds 5`` once both are done (every run is found, the summary written).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.grpo_curriculum import SMOKE, warm_model
from benchmarks.sim.stats import curve_band, interval
from benchmarks.trainer_speed import trl_config
from trainer_client import CurriculumClient
from trainer_client.grpo.config import TrainConfig
from trainer_client.grpo.demo import DEMO
from trainer_client.grpo.model import char_tokenizer
from trainer_client.grpo.tasks import Distribution, build_distributions, reverse_reward
from trainer_client.grpo.trainer import evaluate_policy
from trainer_client.local_service import LocalService

ARMS = ("trl", "uniform", "dump-ucb")


class TimedClient(CurriculumClient):
    """A client that adds up the seconds its plans and reports take."""

    seconds = 0.0

    def plan(self, step: int, batch_size: int) -> Any:
        start = time.perf_counter()
        try:
            return super().plan(step, batch_size)
        finally:
            self.seconds += time.perf_counter() - start

    def report(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return super().report(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start


def _timed_trainer() -> type:
    from trainer_client.integrations.trl import CurriculumGRPOTrainer

    class TimedTrainer(CurriculumGRPOTrainer):
        """Adds up the seconds the training loop spends on the curriculum: waiting for a
        plan, and handing a report over (grouping it by source included)."""

        path_s = 0.0

        def _fetch_plan(self, round_: int, prompts: int) -> list[str]:
            start = time.perf_counter()
            try:
                return super()._fetch_plan(round_, prompts)
            finally:
                self.path_s += time.perf_counter() - start

        def _report_round(self, inputs: Any, output: Any) -> None:
            start = time.perf_counter()
            try:
                super()._report_round(inputs, output)
            finally:
                self.path_s += time.perf_counter() - start

    return TimedTrainer


def exact_match(completions: list[str], answer: list[str], **_: Any) -> list[float]:
    """The task's 0/1 reward with TRL's reward-function signature."""
    return reverse_reward(completions, answer)


def dataset_of(distributions: list[Distribution]) -> Any:
    from datasets import Dataset

    rows = [(d.name, ex) for d in distributions for ex in d.train]
    return Dataset.from_dict(
        {
            "prompt": [ex.prompt for _, ex in rows],
            "answer": [ex.answer for _, ex in rows],
            "data_source": [name for name, _ in rows],
        }
    )


def run_one(
    arm: str, seed: int, cfg: TrainConfig, model_dir: Path, url: str, out: Path
) -> dict[str, Any]:
    """One arm on one seed; its evaluation curve and timings."""
    from transformers import PrinterCallback, TrainerCallback
    from trl import GRPOTrainer

    TimedTrainer = _timed_trainer()
    dists = build_distributions("reverse", cfg.levels, seed, cfg.train_size, cfg.test_size)
    tokenizer = char_tokenizer()
    curve: list[dict[str, Any]] = []
    train_s = [0.0]

    class Evaluate(TrainerCallback):
        def _eval(self, step: int, model: Any) -> None:
            was_training = model.training
            model.eval()
            curve.append({"step": step, **evaluate_policy(model, tokenizer, dists, 12)})
            model.train(was_training)

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self._eval(0, kw["model"])
            self.mark = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            train_s[0] += time.perf_counter() - self.mark
            if state.global_step % cfg.eval_every == 0 or state.global_step == cfg.steps:
                self._eval(state.global_step, kw["model"])
            self.mark = time.perf_counter()

    args = trl_config(cfg, cfg.steps, str(out / f"{arm}-seed-{seed}"))
    common = dict(
        model=str(model_dir),
        reward_funcs=exact_match,
        args=args,
        train_dataset=dataset_of(dists),
        processing_class=tokenizer,
        callbacks=[Evaluate()],
    )
    client = None
    if arm == "trl":
        trainer = GRPOTrainer(**common)
    else:
        names = [d.name for d in dists]
        client = TimedClient.create_or_attach(
            url, names, run_id=f"trl-{arm}-{seed}-{time.time_ns()}", strategy={"name": arm},
            seed=seed,
        )  # fmt: skip
        trainer = TimedTrainer(**common, curriculum=client)
    trainer.remove_callback(PrinterCallback)
    torch.manual_seed(seed)
    trainer.train()
    client_s = client.seconds if client is not None else 0.0
    path_s = getattr(trainer, "path_s", 0.0)
    if client is not None:
        client.close()
    return {
        "arm": arm,
        "seed": seed,
        "curve": curve,
        "train_s": train_s[0],
        "client_s": client_s,  # the client's calls, on the integration's worker thread
        "path_s": path_s,  # what the training loop itself spent on the curriculum
    }


def learnable(run: dict[str, Any], names: list[str]) -> list[str]:
    start = run["curve"][0]
    return [n for n in names if 0.05 <= start[f"eval/{n}"] <= 0.95]


def mean_of(point: dict[str, Any], names: list[str]) -> float:
    return float(np.mean([point[f"eval/{n}"] for n in names]))


def summarise(runs: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """Per arm: final value, area and steps to target on the learnable distributions,
    paired with ``trl`` on each seed."""
    by = {(r["arm"], r["seed"]): r for r in runs}
    seeds = sorted({r["seed"] for r in runs})
    per: dict[str, dict[str, list[float]]] = {a: {} for a in ARMS}
    for seed in seeds:
        base = by[("trl", seed)]
        chosen = learnable(base, names) or names
        start = mean_of(base["curve"][0], chosen)
        finals = {a: mean_of(by[(a, seed)]["curve"][-1], chosen) for a in ARMS}
        target = start + (max(finals.values()) - start) / 2
        for arm in ARMS:
            curve = by[(arm, seed)]["curve"]
            values = [mean_of(p, chosen) for p in curve]
            reached = [p["step"] for p, v in zip(curve, values, strict=True) if v >= target]
            cell = per[arm]
            cell.setdefault("final", []).append(finals[arm])
            cell.setdefault("area", []).append(float(np.mean(values)))
            cell.setdefault("steps", []).append(reached[0] if reached else math.inf)
            run = by[(arm, seed)]
            if "path_s" in run:  # runs of an earlier version timed the worker alone
                cell.setdefault("overhead", []).append(run["path_s"] / max(run["train_s"], 1e-9))
            cell.setdefault("worker", []).append(run["client_s"] / max(run["train_s"], 1e-9))
            cell.setdefault("learnable", []).append(len(chosen))
    out: dict[str, Any] = {"seeds": seeds, "arms": {}}
    for arm in ARMS:
        cell = per[arm]
        row: dict[str, Any] = {k: interval(v) for k, v in cell.items() if k != "steps"}
        row["steps"] = cell["steps"]
        if arm != "trl":
            for key in ("final", "area"):
                diffs = np.subtract(cell[key], per["trl"][key])
                row[f"{key}_vs_trl"] = interval(diffs.tolist())
        out["arms"][arm] = row
    return out


def plot(runs: list[dict[str, Any]], names: list[str], path: Path) -> None:
    """Each arm's mean test reward on the learnable distributions over steps (mean over
    seeds, 95 % t band), written to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by = {(r["arm"], r["seed"]): r for r in runs}
    seeds = sorted({r["seed"] for r in runs})
    fig, ax = plt.subplots(figsize=(7, 4))
    for arm in ARMS:
        curves = []
        for seed in seeds:
            chosen = learnable(by[("trl", seed)], names) or names
            curves.append([mean_of(p, chosen) for p in by[(arm, seed)]["curve"]])
        steps = [p["step"] for p in by[(arm, seeds[0])]["curve"]]
        mean, half = curve_band(np.asarray(curves))
        ax.plot(steps, mean, label=arm)
        ax.fill_between(steps, mean - half, mean + half, alpha=0.2)
    ax.set_xlabel("TRL step (one generation round)")
    ax.set_ylabel("greedy test reward, learnable buckets")
    ax.set_title(f"TRL GRPOTrainer: its sampler vs the curriculum ({len(seeds)} paired seeds)")
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def table(summary: dict[str, Any]) -> str:
    lines = [
        "| arm | final (learnable) | vs trl | area (learnable) | vs trl | steps to target "
        "(per seed) | scheduler overhead | client calls (worker) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]

    def ci(c: dict[str, float]) -> str:
        return f"{c['mean']:.3f} ± {c['half']:.3f}"

    for arm, row in summary["arms"].items():
        steps = ", ".join("-" if math.isinf(s) else str(int(s)) for s in row["steps"])
        vs_final = ci(row["final_vs_trl"]) if "final_vs_trl" in row else ""
        vs_area = ci(row["area_vs_trl"]) if "area_vs_trl" in row else ""
        overhead = f"{100 * row['overhead']['mean']:.2f} %" if "overhead" in row else "n/a"
        overhead = "" if arm == "trl" else overhead
        worker = f"{100 * row['worker']['mean']:.2f} %" if arm != "trl" else ""
        lines.append(
            f"| {arm} | {ci(row['final'])} | {vs_final} | {ci(row['area'])} | {vs_area} | "
            f"{steps} | {overhead} | {worker} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="train seeds first-seed .. seeds-1 only (parallel processes into one --out)",
    )
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--eval-every", type=int, default=25)
    p.add_argument("--out", default="runs/trl-bench")
    p.add_argument("--smoke", action="store_true", help="seconds, not minutes (CI)")
    p.add_argument("--img-dir", help="write the curves' plot (trl_curriculum.png) here")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base: dict[str, Any] = {k: v for k, v in DEMO.items() if k != "steps"}
    if args.smoke:
        base.update(SMOKE)
        args.seeds, args.steps, args.eval_every = 1, 3, 1
    base.update(steps=args.steps, eval_every=args.eval_every)
    runs: list[dict[str, Any]] = []
    with LocalService(out / f"service-{args.first_seed}") as service:
        for seed in range(args.first_seed, args.seeds):
            model_dir, _ = warm_model(base, seed, out)
            cfg = TrainConfig(**base, seed=seed)
            for arm in ARMS:
                path = out / f"{arm}-seed-{seed}.json"
                if path.exists():
                    runs.append(json.loads(path.read_text()))
                    continue
                started = time.perf_counter()
                run = run_one(arm, seed, cfg, model_dir, service.url, out)
                path.write_text(json.dumps(run))
                runs.append(run)
                last = run["curve"][-1]["eval/mean"]
                print(
                    f"seed {seed} {arm}: final mean test reward {last:.3f} "
                    f"({time.perf_counter() - started:.0f} s)",
                    flush=True,
                )
    if args.first_seed:
        return 0  # a partial process: the plain run afterwards writes the summary
    names = [f"rev-{n}" for n in base["levels"]]
    summary = summarise(runs, names)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    if args.img_dir:
        plot(runs, names, Path(args.img_dir) / "trl_curriculum.png")
    print(table(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
