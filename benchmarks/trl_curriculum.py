"""Does the curriculum make a TRL run learn faster? TRL's GRPOTrainer three ways, paired seeds.

Arms, each a real ``trl.GRPOTrainer`` run on the same warm-started tiny model and mixture:

- ``trl``: TRL's own sampler (uniform over the dataset's rows);
- ``uniform``: ``CurriculumGRPOTrainer`` with the ``uniform`` strategy (the integration's
  plumbing, no curriculum);
- ``dump-ucb``: ``CurriculumGRPOTrainer`` with the default strategy.

Any other strategy name can be trained as a probe arm (``--arms dump-ucb,dump-rehearse``):
its runs are saved beside the others, and the summary stays the three arms'.

The mixture is the demo's: digit reversal of lengths 1-8 and 11 after a supervised warm start
(``benchmarks/grpo_curriculum.py``'s, saved once per seed and loaded by every arm), where at
the start the short lengths are solved and the long ones out of reach: more than half of the
distributions give no learning signal. The *learnable* distributions of a seed are those whose
greedy test reward at the start is between 0.05 and 0.95.

Every arm's model scores its completions at the positions it sampled them at
(``positions_from_mask``: TRL 1.16 shifts them by the left padding, which made every arm
forget; ``--trl-positions`` keeps TRL's behaviour).

Per run, every ``--eval-every`` steps: the greedy test reward per distribution. Per arm, paired
with ``trl`` on each seed: the mean test reward of the learnable distributions at the end, the
area under its curve (mean over the evaluations), and the steps to two targets that do not
depend on the curriculum's arms (``summarise``). Also the scheduler's overhead per TRL step:
the time the training loop spends on the curriculum (waiting for a plan, handing a report
over) over the training time, and the time of the client's calls themselves (on the
integration's worker thread, off the loop's path).

    python -m benchmarks.trl_curriculum --seeds 6 --steps 400 --out runs/trl-bench
    python -m benchmarks.trl_curriculum --smoke --out /tmp/trl-smoke

Two processes on two cores: ``--seeds 3`` and ``--first-seed 3 --seeds 6`` into one
``--out``, then ``--seeds 6`` once both are done (every run is found, the summary written).
``--lr``, ``--beta``, ``--layers``, ``--dim``, ``--warmstart-steps`` and ``--warmstart-lr``
change the configuration; an ``--out`` folder holds one configuration only (``config.json``).
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
from curriculum_core import STRATEGIES
from trainer_client import CurriculumClient
from trainer_client.grpo.config import TrainConfig
from trainer_client.grpo.demo import DEMO
from trainer_client.grpo.model import char_tokenizer
from trainer_client.grpo.tasks import Distribution, build_distributions, reverse_reward
from trainer_client.grpo.trainer import evaluate_policy
from trainer_client.local_service import LocalService

ARMS = ("trl", "uniform", "dump-ucb")
"""The arms the summary compares."""


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


def _positions_from_mask(module: Any, args: tuple, kwargs: dict[str, Any]) -> Any:
    """A forward pre-hook: a full forward pass (no cache) without ``position_ids`` gets them
    from its 2-D attention mask, counting from each row's first real token."""
    mask = kwargs.get("attention_mask")
    cache = kwargs.get("cache")
    if kwargs.get("position_ids") is not None or mask is None or mask.ndim != 2:
        return None
    if cache is not None and cache.get_seq_length() > 0:
        return None
    kwargs["position_ids"] = (mask.long().cumsum(-1) - 1).clamp(min=0)
    return args, kwargs


def positions_from_mask(trainer: Any) -> None:
    """Make TRL's scoring passes see the positions its generation used.

    TRL 1.16 left-pads the prompts and computes the log-probabilities of the completions
    (policy, old policy, reference) without ``position_ids``; ``generate`` derives them from
    the attention mask. For a model with absolute position embeddings (GPT-2's ``wpe``, the
    tiny model here) a prompt padded by k tokens is then scored k positions later than it was
    sampled and is evaluated, so the policy gradient trains another model than the one that
    sampled; with prompts of 1 to 11 digits in a batch the shift varies from row to row.
    Rotary models (Llama, Qwen) are unaffected. Applied to every arm alike."""
    for model in (trainer.model, getattr(trainer, "ref_model", None)):
        if model is not None:
            model.transformer.register_forward_pre_hook(_positions_from_mask, with_kwargs=True)


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
    arm: str,
    seed: int,
    cfg: TrainConfig,
    model_dir: Path,
    url: str,
    out: Path,
    fix_positions: bool = True,
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
    if fix_positions:
        positions_from_mask(trainer)
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


TARGET_FRACTION = 0.25
"""The fixed target of a seed: this fraction of the way from the start to 1.0, on the
learnable distributions (chosen before the curriculum arms' results were seen)."""


def first_reached(curve: list[dict[str, Any]], values: list[float], target: float) -> float:
    """The first evaluated step at which ``values`` is at least ``target`` (inf: never)."""
    reached = [p["step"] for p, v in zip(curve, values, strict=True) if v >= target]
    return reached[0] if reached else math.inf


def summarise(runs: list[dict[str, Any]], names: list[str]) -> dict[str, Any]:
    """Per arm: final value, area and steps to two targets on the learnable distributions,
    paired with ``trl`` on each seed.

    Both targets depend on the seed's start and TRL's own sampler only, never on the
    curriculum's arms: ``steps`` to ``TARGET_FRACTION`` of the way from the start to 1.0,
    and ``steps_trl_end`` to the level TRL's sampler ends at (the mean of its last two
    evaluations), the usual "steps to match the baseline's final value"."""
    by = {(r["arm"], r["seed"]): r for r in runs}
    seeds = sorted({r["seed"] for r in runs})
    per: dict[str, dict[str, list[float]]] = {a: {} for a in ARMS}
    targets: list[dict[str, float]] = []
    for seed in seeds:
        base = by[("trl", seed)]
        chosen = learnable(base, names) or names
        start = mean_of(base["curve"][0], chosen)
        trl_end = float(np.mean([mean_of(p, chosen) for p in base["curve"][-2:]]))
        target = start + TARGET_FRACTION * (1.0 - start)
        targets.append({"seed": seed, "start": start, "target": target, "trl_end": trl_end})
        for arm in ARMS:
            run = by[(arm, seed)]
            curve = run["curve"]
            values = [mean_of(p, chosen) for p in curve]
            cell = per[arm]
            cell.setdefault("final", []).append(values[-1])
            cell.setdefault("final_all", []).append(curve[-1]["eval/mean"])  # every bucket
            cell.setdefault("area", []).append(float(np.mean(values)))
            cell.setdefault("steps", []).append(first_reached(curve, values, target))
            cell.setdefault("steps_trl_end", []).append(first_reached(curve, values, trl_end))
            if "path_s" in run:  # runs of an earlier version timed the worker alone
                cell.setdefault("overhead", []).append(run["path_s"] / max(run["train_s"], 1e-9))
            cell.setdefault("worker", []).append(run["client_s"] / max(run["train_s"], 1e-9))
            cell.setdefault("learnable", []).append(len(chosen))
    out: dict[str, Any] = {"seeds": seeds, "targets": targets, "arms": {}}
    step_keys = ("steps", "steps_trl_end")
    for arm in ARMS:
        cell = per[arm]
        row: dict[str, Any] = {k: interval(v) for k, v in cell.items() if k not in step_keys}
        for key in step_keys:
            row[key] = cell[key]
        if arm != "trl":
            for key in ("final", "area", "final_all"):
                diffs = np.subtract(cell[key], per["trl"][key])
                row[f"{key}_vs_trl"] = interval(diffs.tolist())
            for key in step_keys:  # paired, on the seeds where both arms reached it
                pairs = [
                    (a, t) for a, t in zip(cell[key], per["trl"][key], strict=True)
                    if math.isfinite(a) and math.isfinite(t)
                ]  # fmt: skip
                if pairs:
                    row[f"{key}_vs_trl"] = interval([a - t for a, t in pairs])
        out["arms"][arm] = row
    return out


def plot(runs: list[dict[str, Any]], names: list[str], path: Path) -> None:
    """Each arm's mean test reward on the learnable distributions over steps (mean over
    seeds, 95 % t band), and its paired difference from ``trl``, written to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by = {(r["arm"], r["seed"]): r for r in runs}
    seeds = sorted({r["seed"] for r in runs})
    curves: dict[str, np.ndarray] = {}
    for arm in ARMS:
        rows = []
        for seed in seeds:
            chosen = learnable(by[("trl", seed)], names) or names
            rows.append([mean_of(p, chosen) for p in by[(arm, seed)]["curve"]])
        curves[arm] = np.asarray(rows)
    steps = [p["step"] for p in by[("trl", seeds[0])]["curve"]]
    fig, (ax, dx) = plt.subplots(1, 2, figsize=(11, 4))
    for i, arm in enumerate(ARMS):
        colour = f"C{i}"
        mean, half = curve_band(curves[arm])
        ax.plot(steps, mean, label=arm, color=colour)
        ax.fill_between(steps, mean - half, mean + half, alpha=0.15, color=colour)
        if arm != "trl":
            mean, half = curve_band(curves[arm] - curves["trl"])
            dx.plot(steps, mean, label=f"{arm} - trl", color=colour)
            dx.fill_between(steps, mean - half, mean + half, alpha=0.2, color=colour)
    dx.axhline(0.0, color="grey", linewidth=0.8)
    ax.set_xlabel("TRL step (one generation round)")
    ax.set_ylabel("greedy test reward, learnable buckets")
    ax.set_title(f"TRL GRPOTrainer: its sampler vs the curriculum ({len(seeds)} seeds)")
    ax.legend()
    dx.set_xlabel("TRL step (one generation round)")
    dx.set_ylabel("paired difference from trl")
    dx.set_title("paired by seed (95 % t band)")
    dx.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def table(summary: dict[str, Any]) -> str:
    lines = [
        "| arm | final (learnable) | vs trl | area (learnable) | vs trl | steps to target "
        "(per seed) | vs trl | steps to TRL's end (per seed) | vs trl | scheduler overhead "
        "| client calls (worker) | final (all buckets) | vs trl |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]

    def ci(c: dict[str, float], fmt: str = ".3f", sign: str = "") -> str:
        return f"{c['mean']:{sign}{fmt}} ± {c['half']:{fmt}}"

    def vs(row: dict[str, Any], key: str, fmt: str = ".3f") -> str:
        if key not in row:
            return ""
        c = row[key]
        n = f" (n = {c['n']})" if key.startswith("steps") else ""
        return ci(c, fmt, "+") + n

    def listed(steps: list[float]) -> str:
        return ", ".join("-" if math.isinf(s) else str(int(s)) for s in steps)

    for arm, row in summary["arms"].items():
        overhead = f"{100 * row['overhead']['mean']:.2f} %" if "overhead" in row else "n/a"
        overhead = "" if arm == "trl" else overhead
        worker = f"{100 * row['worker']['mean']:.2f} %" if arm != "trl" else ""
        lines.append(
            f"| {arm} | {ci(row['final'])} | {vs(row, 'final_vs_trl')} | {ci(row['area'])} | "
            f"{vs(row, 'area_vs_trl')} | {listed(row['steps'])} | "
            f"{vs(row, 'steps_vs_trl', '.0f')} | {listed(row['steps_trl_end'])} | "
            f"{vs(row, 'steps_trl_end_vs_trl', '.0f')} | {overhead} | {worker} | "
            f"{ci(row['final_all'])} | {vs(row, 'final_all_vs_trl')} |"
        )
    targets = ", ".join(
        f"seed {t['seed']}: {t['start']:.3f} -> {t['target']:.3f} (TRL ends {t['trl_end']:.3f})"
        for t in summary["targets"]
    )
    return (
        "\n".join(lines) + f"\n\nstart -> target ({TARGET_FRACTION:.0%} of the way to 1): {targets}"
    )


def same_config(path: Path, base: dict[str, Any]) -> None:
    """Record the configuration of an ``--out`` folder, or check that it is the recorded one:
    its warm starts and runs are reused, so another configuration must not land there."""
    wanted = json.loads(json.dumps(base))
    if path.exists():
        found = json.loads(path.read_text())
        if found != wanted:
            diff = {k: (found.get(k), wanted.get(k)) for k in found.keys() | wanted.keys()
                    if found.get(k) != wanted.get(k)}  # fmt: skip
            sys.exit(f"{path.parent} holds runs of another configuration (was, now): {diff}")
        return
    path.write_text(json.dumps(wanted, indent=2))


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
    p.add_argument("--lr", type=float, help=f"GRPO learning rate (default {DEMO['lr']})")
    p.add_argument("--beta", type=float, help=f"KL weight (default {DEMO['kl_beta']})")
    p.add_argument("--layers", type=int, help="tiny model's layers (default 2)")
    p.add_argument("--dim", type=int, help="tiny model's hidden size (default 64)")
    p.add_argument(
        "--warmstart-steps",
        type=int,
        help=f"supervised warm-start steps (default {DEMO['warmstart_steps']})",
    )
    p.add_argument("--warmstart-lr", type=float, help="warm start's learning rate (default 3e-3)")
    p.add_argument(
        "--arms",
        default=",".join(ARMS),
        help="train only these arms, any strategy name beside trl (no summary unless "
        f"{', '.join(ARMS)} are among them)",
    )
    p.add_argument(
        "--trl-positions",
        action="store_true",
        help="score with TRL's own position ids (shifted by the left padding; the results "
        "before the fix), not the ones its generation used",
    )
    p.add_argument("--smoke", action="store_true", help="seconds, not minutes (CI)")
    p.add_argument("--img-dir", help="write the curves' plot (--img-name) here")
    p.add_argument("--img-name", default="trl_curriculum.png")
    args = p.parse_args(argv)
    warnings.filterwarnings("ignore", category=FutureWarning)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base: dict[str, Any] = {k: v for k, v in DEMO.items() if k != "steps"}
    if args.smoke:
        base.update(SMOKE)
        args.seeds, args.steps, args.eval_every = 1, 3, 1
    base.update(steps=args.steps, eval_every=args.eval_every)
    overrides = {
        "lr": args.lr,
        "kl_beta": args.beta,
        "tiny_layers": args.layers,
        "tiny_dim": args.dim,
        "warmstart_steps": args.warmstart_steps,
        "warmstart_lr": args.warmstart_lr,
    }
    base.update({k: v for k, v in overrides.items() if v is not None})
    same_config(out / "config.json", {**base, "fix_positions": not args.trl_positions})
    arms = list(dict.fromkeys(args.arms.split(",")))
    unknown = [a for a in arms if a != "trl" and a not in STRATEGIES]
    if unknown:
        raise SystemExit(f"unknown arms {unknown}: trl or one of {sorted(STRATEGIES)}")
    names = [f"rev-{n}" for n in base["levels"]]
    runs: list[dict[str, Any]] = []
    with LocalService(out / f"service-{args.first_seed}") as service:
        for seed in range(args.first_seed, args.seeds):
            model_dir, _ = warm_model(base, seed, out)
            cfg = TrainConfig(**base, seed=seed)
            for arm in arms:
                path = out / f"{arm}-seed-{seed}.json"
                if path.exists():
                    runs.append(json.loads(path.read_text()))
                    continue
                started = time.perf_counter()
                run = run_one(arm, seed, cfg, model_dir, service.url, out, not args.trl_positions)
                path.write_text(json.dumps(run))
                runs.append(run)
                last = run["curve"][-1]["eval/mean"]
                chosen = learnable(run, names) or names
                trace = " ".join(f"{mean_of(q, chosen):.3f}" for q in run["curve"])
                print(
                    f"seed {seed} {arm}: final mean test reward {last:.3f} "
                    f"({time.perf_counter() - started:.0f} s); learnable {chosen}: {trace}",
                    flush=True,
                )
    if args.first_seed or not set(ARMS) <= set(arms):
        return 0  # a partial process or a probe: the plain run afterwards writes the summary
    summary = summarise([r for r in runs if r["arm"] in ARMS], names)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    if args.img_dir:
        plot(runs, names, Path(args.img_dir) / args.img_name)
    print(table(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
