"""Curriculum quality with the real GRPO trainer: strategies x seeds, one shared service.

Every run is the bundled GRPO trainer (:class:`trainer_client.grpo.trainer.GRPOTrainer`) on
the demo's task mixture (digit reversal, lengths 1-8 and 11, ``trainer_client.grpo.demo``),
its batches planned by one real scheduling service (a :class:`LocalService` on its embedded
Redis, or ``--service-url``) that all runs share. For each seed the supervised warm start is
done once, saved with ``save_pretrained`` and loaded by every strategy's run (``model`` set to
that folder, ``warmstart_steps=0``): the strategies of one seed start from the same weights,
the same data splits and the same prompt/sampling seeds, so the comparison is paired.

Per run: the greedy test reward per distribution and its mean every ``--eval-every`` steps,
and the sampling weights every step. Per strategy: the mean test reward curve with its
min-max band over seeds, the final mean test reward (mean, 95 % t-interval, min-max), and the
steps to a target mean test reward: per seed, halfway from the seed's starting reward to the
best final reward any strategy reached on that seed (a run that never reaches it is reported
as not reaching it); the distributions each run solved (greedy test reward at least
``SOLVED`` at some evaluation) and ended below it, and the evaluations they spent below
``LAPSED`` once solved; and every strategy's final reward and area
paired by seed against ``--baseline``'s (``uniform`` by default). Each run also records the
groups it generated and the zero-variance ones among them (every reward equal: no gradient)
per distribution, their share, and the groups generated before each evaluation; per
strategy the summary gives the groups generated to reach the target (times the group size:
rollouts) and the zero-variance share; a second table gives each arm's rollouts to the
target with paired ratios against the default and the dynamic-sampling arms, and its
rollouts per trained batch, a third its final sampling weights. The ``dump-guard+prompts``
arm lets the service choose the prompts too (``prompt_selection``; ``--set
prompt_selection=true`` turns it on for every arm); the ``+dynamic`` arms over-generate and
drop zero-variance groups (``dynamic_sampling``). ``--task reverse-mixed`` mixes lengths
inside each distribution (``MIXED_BUCKETS``), so that prompts differ in difficulty inside
a distribution:

    python -m benchmarks.grpo_curriculum --task reverse-mixed --seeds 5 --steps 1500 \
        --eval-every 100 --out runs/mixed \
        --strategies dump-guard,dump-guard+prompts,uniform,uniform+dynamic,dump-guard+dynamic

    python -m benchmarks.grpo_curriculum --seeds 3 --steps 1000 \
        --strategies dump-ucb,uniform,sec --out runs/grpo-bench --img-dir docs/img
    python -m benchmarks.grpo_curriculum --smoke --out /tmp/grpo-smoke

With a local checkpoint on a GPU (no warm start: the checkpoint is the starting policy):

    python -m benchmarks.grpo_curriculum --model /path/to/checkpoint --task kk \
        --levels 3,4,5,6,7,8 --device cuda --seeds 3 --steps 300 --out runs/kk-bench

Runs already finished in ``--out`` (their ``run.json`` exists) are reused, so a cut-off grid
continues where it stopped, and more seeds can be added later.

Seeds can run in parallel, one process each, into one ``--out`` (``benchmarks/gpu_grid.sh``):
``--only-seed S`` trains seed S's runs only (its own local service, no report; with
``--strategies`` a process per seed and strategy works too); a plain run
with ``--seeds N`` afterwards finds every run done and only writes the report, and
``--report-only`` writes it from the seeds whose runs are all done, training nothing.

    for s in 0 1 2; do python -m benchmarks.grpo_curriculum --seeds 3 --only-seed $s \
        --out runs/grpo-bench & done; wait
    python -m benchmarks.grpo_curriculum --seeds 3 --out runs/grpo-bench
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
import shutil
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.sim.stats import interval
from curriculum_core import STRATEGIES as CORE_STRATEGIES
from trainer_client.grpo.cli import prompt_counts, scheduler_session
from trainer_client.grpo.config import TrainConfig
from trainer_client.grpo.demo import DEMO
from trainer_client.grpo.metrics import read_metrics
from trainer_client.grpo.model import load_policy, pick_device
from trainer_client.grpo.report import series
from trainer_client.grpo.tasks.reverse import reverse_example
from trainer_client.grpo.trainer import GRPOTrainer
from trainer_client.grpo.warmstart import warm_start
from trainer_client.local_service import LocalService

STRATEGIES: dict[str, tuple[str, dict[str, Any]]] = {
    **{name: (name, {}) for name in CORE_STRATEGIES},
    "dump-ucb+floor": ("dump-ucb", {"floor": 0.1}),
    "dump-guard+prompts": ("dump-guard", {}),
    "dump-guard+dynamic": ("dump-guard", {}),
    "uniform+dynamic": ("uniform", {}),
}
"""Label -> (strategy name, strategy params) the run is created with on the service: every
strategy by its name with its defaults, and labelled variants."""
ARM_CONFIG: dict[str, dict[str, Any]] = {
    "dump-guard+prompts": {"prompt_selection": True},
    "dump-guard+dynamic": {"dynamic_sampling": True},
    "uniform+dynamic": {"dynamic_sampling": True},
}
"""Label -> TrainConfig fields an arm sets beyond its strategy (over ``--set``'s)."""

SMOKE: dict[str, Any] = dict(
    levels=[1, 2, 3],
    max_new_tokens=5,
    train_size=64,
    test_size=8,
    prompts_per_step=4,
    group_size=4,
    warmstart_steps=5,
    warmstart_batch=8,
)
"""Tiny sizes of a ``--smoke`` run (seconds, not minutes)."""

SMOKE_STEPS = 5
DEFAULTS = dict(seeds=3, strategies="dump-ucb,uniform,sec", steps=1000, eval_every=50)
SMOKE_DEFAULTS = dict(seeds=1, strategies="dump-ucb,uniform", steps=SMOKE_STEPS, eval_every=2)
"""What unset ``--seeds``, ``--strategies``, ``--steps``, ``--eval-every`` become."""
ROLLOUT_BASELINES = ["dump-guard", "uniform+dynamic", "dump-guard+dynamic"]
"""The arms the rollouts table gives paired ratios against, those of them in the grid."""
SOLVED = 0.9
"""A distribution counts as solved once its greedy test reward reaches this."""
LAPSED = 0.5
"""A solved distribution counts as lost (for the moment) while its test reward is below this."""
DROPPED = 0.95
"""A distribution counts as one the filter drops (solved or hopeless for the sampling policy)
when at least this share of its groups generated over a run's last tenth of steps had every
reward equal (no gradient; dynamic sampling drops them)."""
WEIGHTS_LABEL = "dump-ucb"  # whose first seed's weights are plotted


MIXED_BUCKETS: dict[str, list[int]] = {
    "mix-1-4-7": [1, 4, 7],
    "mix-2-5-8": [2, 5, 8],
    "mix-3-6-9": [3, 6, 9],
}
"""Task ``reverse-mixed``: distributions whose prompts differ in difficulty inside each (digit
reversal of the listed lengths, equally many of each): a solved length, a learnable one and a
hard one per bucket, the case prompt selection is for."""
MIXED_TRAIN = 100
"""Task ``reverse-mixed``: train prompts per length (300 per distribution), so that a run of
1,500 steps sees each prompt many times, as multi-epoch RL runs do."""


def write_mixed_task(path: Path, n_test: int) -> Path:
    """The ``reverse-mixed`` data file (JSONL, the ``file`` task's columns), the same rows for
    every seed, like a fixed data set: ``MIXED_TRAIN`` train rows per length and ``n_test``
    test rows per distribution, lengths in turn."""
    rows = []
    for name, lengths in MIXED_BUCKETS.items():
        rng = random.Random(f"reverse-mixed-{name}")
        for split, n in (("train", MIXED_TRAIN * len(lengths)), ("test", n_test)):
            for i in range(n):
                ex = reverse_example(lengths[i % len(lengths)], rng)
                rows.append(
                    {"data_source": name, "prompt": ex.prompt, "answer": ex.answer, "split": split}
                )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def base_config(args: argparse.Namespace) -> dict[str, Any]:
    """The TrainConfig fields every run shares (strategy, seed, model, output dir aside)."""
    if args.task in ("reverse", "reverse-mixed"):
        base: dict[str, Any] = {k: v for k, v in DEMO.items() if k != "steps"}
    else:
        base = {"task": args.task}
    if args.task == "reverse-mixed":
        del base["levels"]
        path = write_mixed_task(Path(args.out) / "reverse-mixed.jsonl", int(base["test_size"]))
        base.update(task="file", data_file=str(path))
    if args.levels:
        base["levels"] = args.levels
    if args.smoke:
        base.update(SMOKE)
    base.update(steps=args.steps, eval_every=args.eval_every, device=args.device)
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set needs KEY=VALUE, got {item!r}")
        try:
            base[key] = json.loads(value)
        except json.JSONDecodeError:
            base[key] = value
    return base


def warm_model(base: dict[str, Any], seed: int, out: Path) -> tuple[Path, bool]:
    """The tiny model after the supervised warm start for ``seed``, saved once under ``out``.

    Mirrors what ``GRPOTrainer`` does when it warm-starts itself (same init seed, same data,
    same warm-start RNG), so every strategy of this seed starts from these weights. Returns
    the folder and whether it was already there. Processes running strategies of one seed in
    parallel may each compute it; the first one saved is the one they all use.
    """
    path = out / "warm" / f"seed-{seed}"
    if (path / "config.json").exists():
        return path, True
    # saved under a temporary name and renamed, so a cut-off save is never taken for done
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    cfg = TrainConfig(**base, seed=seed)
    device, dtype = pick_device(cfg.device, cfg.dtype)
    torch.manual_seed(seed)
    dists = cfg.distributions(seed)
    model, tokenizer = load_policy(
        "tiny", device, dtype, cfg.tiny_layers, cfg.tiny_dim, cfg.tiny_heads, seed
    )
    model.eval()
    warm_start(
        model,
        tokenizer,
        dists,
        cfg.warmstart_steps,
        cfg.warmstart_batch,
        cfg.warmstart_lr,
        np.random.default_rng(seed),
    )
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    try:
        tmp.rename(path)  # fails if another process saved it first: theirs is used
    except OSError:
        shutil.rmtree(tmp)
        if not (path / "config.json").exists():
            raise
        return path, True
    return path, False


def dry_run(url: str, base: dict[str, Any], labels: list[str], model: str | None) -> int:
    """Check that the grid would start, without training: the data builds, the model loads,
    the longest prompt plus ``max_new_tokens`` fits the model's context, and the service
    plans a first batch for every strategy. Returns the exit code (2: prompts too long)."""
    config = TrainConfig(**{**base, "warmstart_steps": 0}, model=model or "tiny")
    device, dtype = pick_device(config.device, config.dtype)
    dists = config.distributions()
    policy, tokenizer = load_policy(
        config.model, device, dtype, config.tiny_layers, config.tiny_dim, config.tiny_heads
    )
    longest = max(
        len(tokenizer(ex.prompt, add_special_tokens=False)["input_ids"])
        for d in dists
        for ex in d.train + d.test
    )
    limit = getattr(policy.config, "max_position_embeddings", None)
    print(f"model {config.model} on {device} ({dtype}), context {limit} tokens")
    sizes = ", ".join(f"{d.name} ({len(d.train)}/{len(d.test)})" for d in dists)
    print(f"distributions (train/test): {sizes}")
    for label in labels:
        name, params = STRATEGIES[label]
        cfg = dataclasses.replace(
            config, strategy=name, strategy_params=dict(params), **ARM_CONFIG.get(label, {})
        )
        names = [d.name for d in dists]
        with scheduler_session(
            cfg, names, url, None, None, prompts=prompt_counts(dists)
        ) as scheduler:
            plan = scheduler.plan(0, cfg.prompts_per_step)
        print(f"{label}: first plan {dict(sorted(Counter(plan).items()))}")
    need = longest + config.max_new_tokens
    if limit is not None and need > limit:
        print(
            f"the longest prompt ({longest} tokens) + max_new_tokens ({config.max_new_tokens})"
            f" = {need} > the model's context of {limit} tokens",
            file=sys.stderr,
        )
        return 2
    print(f"longest prompt {longest} tokens + max_new_tokens {config.max_new_tokens} fits")
    return 0


def run_dir(out: Path, label: str, seed: int) -> Path:
    """The folder of one (strategy, seed) run; its ``run.json`` exists once it is done."""
    return out / "runs" / f"{label}-seed{seed}"


def run_one(
    url: str, base: dict[str, Any], label: str, seed: int, model: str, out: Path
) -> dict[str, Any]:
    """Train one (strategy, seed) run against the service at ``url``; its summary record."""
    folder = run_dir(out, label, seed)
    done = folder / "run.json"
    if done.exists():
        return json.loads(done.read_text(encoding="utf-8"))
    if (folder / "metrics.jsonl").exists():
        (folder / "metrics.jsonl").unlink()  # an interrupted run starts over
    name, params = STRATEGIES[label]
    config = TrainConfig(
        **{**base, "warmstart_steps": 0, **ARM_CONFIG.get(label, {})},
        model=model,
        strategy=name,
        strategy_params=dict(params),
        seed=seed,
        output_dir=str(folder),
    )
    torch.manual_seed(seed)
    dists = config.distributions(seed)
    start = time.perf_counter()
    names = [d.name for d in dists]
    with scheduler_session(
        config, names, url, None, None, prompts=prompt_counts(dists)
    ) as scheduler:
        trainer = GRPOTrainer(config, scheduler, distributions=dists, progress=False)
        if config.model != "tiny" and trainer.model.config.model_type == "gpt2":
            # from_pretrained picks SDPA; the tiny model runs faster eagerly on a CPU
            # (model.build_tiny), so keep the attention a freshly built tiny model has.
            for policy in (trainer.model, trainer.reference):
                if policy is not None:
                    policy.set_attn_implementation("eager")
        trainer.train()
        trainer.log.close()
    wall = time.perf_counter() - start
    records = read_metrics(trainer.log.path)
    evals = series(records, "eval/")
    weights = series(records, "weight/")
    result = {
        "label": label,
        "seed": seed,
        "wall_s": wall,
        "load_avg": os.getloadavg()[0],
        "step_s_median": float(np.median([r["time/step"] for r in records if "time/step" in r])),
        "eval_steps": [r["step"] for r in records if "eval/mean" in r],
        "eval_mean": [r["eval/mean"] for r in records if "eval/mean" in r],
        "eval": {name: values for name, (_, values) in evals.items()},
        "weights": {name: values for name, (_, values) in weights.items()},
        "prompt_selection": config.prompt_selection,
        "group_size": config.group_size,
        **group_counts(records, config.dynamic_sampling),
    }
    partial = done.with_name(f"run.json.tmp-{os.getpid()}")
    partial.write_text(json.dumps(result), encoding="utf-8")
    partial.replace(done)  # atomic: a run.json is always whole
    return result


def group_counts(records: list[dict[str, Any]], dynamic_sampling: bool) -> dict[str, Any]:
    """What a run generated, from its metrics: per distribution the groups generated, the
    zero-variance ones among them (every reward equal: no gradient) and, with dynamic
    sampling, the ones trained; the zero-variance share of all generated groups; and
    ``generated_at_eval``, the groups generated before each evaluation (parallel to
    ``eval_steps``; times ``group_size``: the rollouts to reach that evaluation)."""
    kinds = ["generated_groups", "zero_variance_groups"]
    kinds += ["trained_groups"] if dynamic_sampling else []
    out: dict[str, Any] = {kind: Counter() for kind in kinds}
    # the same two counts over the last tenth of the steps: what a bucket is at the end
    late: dict[str, Counter[str]] = {f"late_{kind}": Counter() for kind in kinds[:2]}
    steps = sum("time/step" in record for record in records)
    late_from, step = steps - last_tenth(steps), 0
    done, at_eval = 0, []
    for record in records:
        if "eval/mean" in record:
            at_eval.append(done)
        for key, value in record.items():
            kind, _, name = key.partition("/")
            if kind in out:
                out[kind][name] += int(value)
                done += int(value) if kind == "generated_groups" else 0
                if step >= late_from and f"late_{kind}" in late:
                    late[f"late_{kind}"][name] += int(value)
        step += "time/step" in record
    out = {kind: dict(counts) for kind, counts in {**out, **late}.items()}
    generated = sum(out["generated_groups"].values())
    zero = sum(out["zero_variance_groups"].values())
    out["zero_variance_fraction"] = zero / generated if generated else None
    out["generated_at_eval"] = at_eval
    return out


def rollouts_per_step(run: dict[str, Any]) -> float | None:
    """The rollouts a run generated per trained batch: its generated groups times the group
    size over its steps (with dynamic sampling, every round of every step)."""
    generated = sum(run.get("generated_groups", {}).values())
    steps = len(next(iter(run["weights"].values()), []))
    return generated * run["group_size"] / steps if generated and steps else None


def solved_then_lost(run: dict[str, Any], solved: float = SOLVED) -> dict[str, float]:
    """The distributions whose test reward reached ``solved`` at some evaluation (the start
    included) and ended below it, with their final test reward."""
    return {
        name: values[-1]
        for name, values in run["eval"].items()
        if max(values) >= solved and values[-1] < solved
    }


def lapses(run: dict[str, Any], solved: float = SOLVED, lost: float = LAPSED) -> int:
    """The evaluations at which a distribution the run had solved (test reward at least
    ``solved`` at an earlier or that evaluation) was below ``lost``, summed over the
    distributions: how long what was learnt stayed lost, the end or not."""
    count = 0
    for values in run["eval"].values():
        reached = False
        for v in values:
            reached = reached or v >= solved
            count += reached and v < lost
    return count


def summarise(
    runs: list[dict[str, Any]], labels: list[str], baseline: str = "uniform"
) -> dict[str, Any]:
    """Per strategy: curves over seeds, final reward, steps to the target, the solved
    distributions it lost; the targets; and paired differences to ``baseline``'s runs.

    The target is per seed (seeds start from different warm starts): halfway from the seed's
    starting mean test reward (the same for every strategy: paired) to the best final mean
    test reward any strategy reached on that seed.
    """
    steps = runs[0]["eval_steps"]
    seeds = sorted({r["seed"] for r in runs})
    starts = {s: [r["eval_mean"][0] for r in runs if r["seed"] == s] for s in seeds}
    best = {s: max(r["eval_mean"][-1] for r in runs if r["seed"] == s) for s in seeds}
    targets = {s: starts[s][0] + 0.5 * (best[s] - starts[s][0]) for s in seeds}
    finals = {lab: [r["eval_mean"][-1] for r in runs if r["label"] == lab] for lab in labels}
    out: dict[str, Any] = {
        "eval_steps": steps,
        "start": {str(s): starts[s][0] for s in seeds},
        "paired_starts_equal": all(len(set(v)) == 1 for v in starts.values()),
        "target": {str(s): targets[s] for s in seeds},
        "cells": {},
    }
    for lab in labels:
        mine = sorted((r for r in runs if r["label"] == lab), key=lambda r: r["seed"])
        curves = np.array([r["eval_mean"] for r in mine])
        hit = [
            next(
                (s for s, v in zip(steps, r["eval_mean"], strict=True) if v >= targets[r["seed"]]),
                None,
            )
            for r in mine
        ]
        reached = [h for h in hit if h is not None]
        per_dist = {name: np.array([r["eval"][name] for r in mine]) for name in mine[0]["eval"]}
        aucs = [float(np.mean(c)) for c in curves]
        out["cells"][lab] = {
            "seeds": [r["seed"] for r in mine],
            "final": finals[lab],
            "final_mean": float(np.mean(finals[lab])),
            "final_min": float(np.min(finals[lab])),
            "final_max": float(np.max(finals[lab])),
            "final_t_half": interval(finals[lab])["half"],
            "auc": aucs,
            "steps_to_target": hit,
            "reached": len(reached),
            "steps_to_target_mean": float(np.mean(reached)) if reached else None,
            # groups generated before the evaluation that first reached the target (times
            # group_size: rollouts), and the share of generated groups that were zero-variance
            "groups_to_target": [
                r["generated_at_eval"][steps.index(h)]
                if h is not None and "generated_at_eval" in r
                else None
                for r, h in zip(mine, hit, strict=True)
            ],
            "zero_variance_fraction": [r.get("zero_variance_fraction") for r in mine],
            # rollouts generated per trained batch (more than the batch under dynamic
            # sampling's refills) and each distribution's final sampling weight
            "rollouts_per_step": [rollouts_per_step(r) for r in mine],
            "group_size": mine[0]["group_size"],
            "total_rollouts": [
                sum(r.get("generated_groups", {}).values()) * r["group_size"] for r in mine
            ],
            "eval_rollouts": [
                [g * r["group_size"] for g in r.get("generated_at_eval", [])] for r in mine
            ],
            "final_weights": {
                name: float(np.mean([r["weights"][name][-1] for r in mine]))
                for name in mine[0]["weights"]
            },
            # where a run settles: the last step's weights move with every report
            "late_weights": {
                name: float(np.mean([late_mean(r["weights"][name]) for r in mine]))
                for name in mine[0]["weights"]
            },
            "dropped": [dropped_buckets(r) for r in mine],
            "curve": curves.tolist(),
            "curve_mean": curves.mean(0).tolist(),
            "curve_min": curves.min(0).tolist(),
            "curve_max": curves.max(0).tolist(),
            "per_dist_mean": {k: v.mean(0).tolist() for k, v in per_dist.items()},
            "per_dist_min": {k: v.min(0).tolist() for k, v in per_dist.items()},
            "per_dist_max": {k: v.max(0).tolist() for k, v in per_dist.items()},
            "wall_s": [r["wall_s"] for r in mine],
            "lost": [solved_then_lost(r) for r in mine],
            "lapses": [lapses(r) for r in mine],
        }
    out["baseline"] = baseline
    if baseline in out["cells"]:
        ref = out["cells"][baseline]
        levels = dict(zip(ref["seeds"], ref["final"], strict=True))
        for lab in labels:
            mine = sorted((r for r in runs if r["label"] == lab), key=lambda r: r["seed"])
            # the first evaluation at the level the baseline ends at on the same seed
            out["cells"][lab]["steps_to_baseline_final"] = [
                next(
                    (
                        s
                        for s, v in zip(steps, r["eval_mean"], strict=True)
                        if v >= levels[r["seed"]]
                    ),
                    None,
                )
                if r["seed"] in levels
                else None
                for r in mine
            ]
        for cell in out["cells"].values():
            cell["vs_baseline"] = {
                key: interval([a - b for a, b in zip(cell[key], ref[key], strict=True)])
                for key in ("final", "auc")
            }
    return out


def plot(summary: dict[str, Any], runs: list[dict[str, Any]], img_dir: Path) -> list[Path]:
    """``grpo_mean_reward.png``, ``grpo_per_distribution.png`` and ``grpo_weights.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img_dir.mkdir(parents=True, exist_ok=True)
    steps, cells = summary["eval_steps"], summary["cells"]
    paths = [img_dir / f"grpo_{n}.png" for n in ("mean_reward", "per_distribution", "weights")]

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for lab, cell in cells.items():
        (line,) = ax.plot(steps, cell["curve_mean"], label=f"{lab} ({len(cell['seeds'])} seeds)")
        ax.fill_between(
            steps, cell["curve_min"], cell["curve_max"], alpha=0.2, color=line.get_color()
        )
    target = float(np.mean(list(summary["target"].values())))
    ax.axhline(target, color="grey", ls="--", lw=1, label="target (mean over seeds)")
    ax.set(
        xlabel="GRPO step",
        ylabel="mean greedy test reward",
        title="Mean test reward over distributions (mean over seeds, band: min-max)",
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(paths[0], dpi=110)
    plt.close(fig)

    names = list(next(iter(cells.values()))["per_dist_mean"])
    cols = 3
    fig, axes = plt.subplots(
        math.ceil(len(names) / cols), cols, figsize=(12, 8), sharex=True, sharey=True, squeeze=False
    )
    for ax, name in zip(axes.flat, names, strict=False):
        for lab, cell in cells.items():
            (line,) = ax.plot(steps, cell["per_dist_mean"][name], label=lab)
            ax.fill_between(
                steps,
                cell["per_dist_min"][name],
                cell["per_dist_max"][name],
                alpha=0.15,
                color=line.get_color(),
            )
        ax.set_title(name)
        ax.set_ylim(-0.03, 1.03)
    axes.flat[0].legend(fontsize=8)
    fig.suptitle("Greedy test reward per distribution (mean over seeds, band: min-max)")
    fig.tight_layout()
    fig.savefig(paths[1], dpi=110)
    plt.close(fig)

    traced = [r for r in runs if r["label"] == WEIGHTS_LABEL] or runs
    trace = min(traced, key=lambda r: r["seed"])
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, values in trace["weights"].items():
        ax.plot(range(len(values)), values, label=name)
    ax.set(
        xlabel="GRPO step",
        ylabel="sampling probability",
        title=f"Weights of {trace['label']}, seed {trace['seed']}",
    )
    ax.legend(ncol=3, fontsize=8)
    fig.tight_layout()
    fig.savefig(paths[2], dpi=110)
    plt.close(fig)
    return paths


def table(summary: dict[str, Any]) -> str:
    """The results as a Markdown table."""
    lines = [
        "| strategy | final mean test reward: mean ± 95% t (min-max) | per seed | "
        "steps to target: mean (reached) | per seed | area under curve (mean) | "
        f"paired minus {summary.get('baseline', 'uniform')}, per seed mean ± 95% t: final; "
        f"area | solved (test reward >= {SOLVED}) then lost, per seed | evaluations a solved "
        f"distribution spent below {LAPSED}, per seed | steps to the final mean of "
        f"{summary.get('baseline', 'uniform')} on the same seed, per seed (—: not reached) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for lab, c in summary["cells"].items():
        per_seed = ", ".join(f"{v:.3f}" for v in c["final"])
        hits = ", ".join("—" if h is None else str(h) for h in c["steps_to_target"])
        mean_hit = "—" if c["steps_to_target_mean"] is None else f"{c['steps_to_target_mean']:.0f}"
        lines.append(
            f"| {lab} | {c['final_mean']:.3f} ± {c['final_t_half']:.3f} "
            f"({c['final_min']:.3f}-{c['final_max']:.3f}) | {per_seed} | "
            f"{mean_hit} ({c['reached']}/{len(c['seeds'])}) | {hits} | {np.mean(c['auc']):.3f} | "
            + _diff(c)
            + " | "
            + _lost(c)
            + " | "
            + ", ".join(str(n) for n in c.get("lapses", []))
            + " | "
            + _baseline_steps(c)
            + " |"
        )
    return "\n".join(lines)


def rollouts_table(summary: dict[str, Any], against: list[str]) -> str:
    """The rollouts each arm spent, as a Markdown table: generated to the target (groups
    before the first evaluation at or above it, times the group size; mean over the seeds
    that reached it), paired ratios to each arm in ``against`` (the geometric mean over the
    seeds where both reached it: above 1, that arm needed more), the zero-variance share of
    generated groups, the rollouts per trained batch, the final mean test reward, and the
    mean test reward at equal rollouts: at the last evaluation within the smallest total
    any run generated (the fixed-batch arms' whole run; a dynamic arm's earlier one)."""
    cells = summary["cells"]
    budget = min((t for c in cells.values() for t in c["total_rollouts"] if t), default=0)
    against = [a for a in against if a in cells]
    head = [
        "arm",
        "rollouts to target: mean (reached)",
        "per seed",
        *(f"{a} / arm, paired" for a in against),
        "zero-variance share",
        "rollouts per trained batch",
        "final mean test reward",
        f"mean test reward at {budget:,} rollouts",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for lab, c in cells.items():
        size = c["group_size"]
        rollouts = [None if g is None else g * size for g in c["groups_to_target"]]
        reached = [r for r in rollouts if r is not None]
        ratios = []
        for other in against:
            theirs = cells[other]["groups_to_target"]
            pairs = [(t, m) for t, m in zip(theirs, c["groups_to_target"], strict=True) if t and m]
            geo = math.exp(np.mean([math.log(t / m) for t, m in pairs])) if pairs else None
            ratios.append("—" if geo is None else f"{geo:.2f}x ({len(pairs)})")
        zero = [z for z in c["zero_variance_fraction"] if z is not None]
        per_step = [r for r in c["rollouts_per_step"] if r is not None]
        cols = [
            lab,
            (f"{np.mean(reached):,.0f}" if reached else "—") + f" ({len(reached)}/{len(rollouts)})",
            ", ".join("—" if r is None else f"{r:,}" for r in rollouts),
            *ratios,
            f"{np.mean(zero):.3f}" if zero else "—",
            f"{np.mean(per_step):.0f}" if per_step else "—",
            f"{c['final_mean']:.3f} ± {c['final_t_half']:.3f}",
            _reward_within(c, budget),
        ]
        lines.append("| " + " | ".join(cols) + " |")
    return "\n".join(lines)


def _reward_within(cell: dict[str, Any], budget: int) -> str:
    """The mean over seeds of the test reward at each run's last evaluation with at most
    ``budget`` rollouts generated before it, or a dash where a run has no rollout counts."""
    values = []
    for curve, spent in zip(cell["curve"], cell["eval_rollouts"], strict=True):
        within = [i for i, r in enumerate(spent) if r <= budget]
        if not within:
            return "—"
        values.append(curve[within[-1]])
    return f"{np.mean(values):.3f}" if values else "—"


def last_tenth(steps: int) -> int:
    """How many of a run's last steps count as its end: a tenth, at least one."""
    return max(1, steps // 10)


def late_mean(values: list[float]) -> float:
    """The mean of the last tenth of a run's per-step values (at least the last one)."""
    return float(np.mean(values[-last_tenth(len(values)) :]))


def dropped_buckets(run: dict[str, Any], share: float = DROPPED) -> dict[str, float] | None:
    """The distributions the filter drops at the end of a run (at least ``share`` of their
    groups over the last tenth of the steps zero-variance), each with its mean sampling
    weight over that tenth; None for a run recorded without the late counts."""
    generated, zero = run.get("late_generated_groups"), run.get("late_zero_variance_groups")
    if generated is None or zero is None:
        return None
    return {
        name: late_mean(run["weights"][name])
        for name, n in generated.items()
        if n and zero.get(name, 0) >= share * n
    }


def dropped_table(summary: dict[str, Any]) -> str:
    """Per arm, the distributions the filter drops at the end (:func:`dropped_buckets`,
    counted once per seed) and where their sampling weights settle against a uniform share,
    as Markdown."""
    lines = [
        f"| arm | distributions the filter drops at the end (>= {DROPPED:.0%} zero-variance "
        "groups over the last tenth of the steps), all seeds | their weight over that tenth: "
        "mean, largest | above a uniform share |",
        "| --- | --- | --- | --- |",
    ]
    for lab, c in summary["cells"].items():
        runs = [d for d in c.get("dropped", []) if d is not None]
        if not runs:
            continue
        k = len(c["late_weights"])
        weights = [w for d in runs for w in d.values()]
        above = [w for w in weights if w > 1 / k + 1e-9]
        spread = f"{np.mean(weights):.3f}, {max(weights):.3f}" if weights else "—"
        lines.append(f"| {lab} | {len(weights)} | {spread} | {len(above)} (1/K = {1 / k:.3f}) |")
    return "\n".join(lines)


def weights_table(summary: dict[str, Any]) -> str:
    """Each arm's sampling weight per distribution, at the last step and averaged over the
    last tenth of the steps (each a mean over seeds), as Markdown."""
    cells = summary["cells"]
    names = list(next(iter(cells.values()))["final_weights"])
    lines = [
        "| arm | weights | " + " | ".join(names) + " |",
        "|" + " --- |" * (len(names) + 2),
    ]
    for lab, c in cells.items():
        for key, what in (("final_weights", "last step"), ("late_weights", "last 10 % of steps")):
            if key in c:  # results written before late_weights existed have none
                cols = " | ".join(f"{c[key][n]:.3f}" for n in names)
                lines.append(f"| {lab} | {what} | {cols} |")
    return "\n".join(lines)


def _baseline_steps(cell: dict[str, Any]) -> str:
    """Per seed, the steps to the baseline's final level, and their median over the seeds
    that reached it."""
    hits = cell.get("steps_to_baseline_final")
    if hits is None:
        return "—"
    reached = [h for h in hits if h is not None]
    median = f"; median {np.median(reached):.0f} ({len(reached)}/{len(hits)})" if reached else ""
    return ", ".join("—" if h is None else str(h) for h in hits) + median


def _diff(cell: dict[str, Any]) -> str:
    """``final; area`` paired differences to the baseline, or a dash without its arm."""
    diff = cell.get("vs_baseline")
    if diff is None:
        return "—"
    return "; ".join(f"{diff[k]['mean']:+.3f} ± {diff[k]['half']:.3f}" for k in ("final", "auc"))


def _lost(cell: dict[str, Any]) -> str:
    """Per seed, the solved distributions a run ended below the bar with, or ``none``."""
    per_seed = [
        ", ".join(f"{name} {final:.2f}" for name, final in lost.items()) or "none"
        for lost in cell.get("lost", [])
    ]
    return "; ".join(per_seed)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line arguments; ``--smoke`` changes the defaults of seeds, strategies, steps."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--seeds", type=int, help=f"seeds 0..N-1 per strategy (default {DEFAULTS['seeds']})"
    )
    p.add_argument(
        "--only-seed",
        type=int,
        metavar="S",
        help="train seed S's runs only (0 <= S < --seeds), with a local service of its own, "
        "and write no report: one process per seed can share --out",
    )
    p.add_argument(
        "--report-only",
        action="store_true",
        help="train nothing: report the seeds whose runs are all done in --out",
    )
    p.add_argument("--steps", type=int, help=f"GRPO steps per run (default {DEFAULTS['steps']})")
    p.add_argument(
        "--strategies",
        help=f"comma-separated labels from {sorted(STRATEGIES)} (default {DEFAULTS['strategies']})",
    )
    p.add_argument(
        "--eval-every",
        type=int,
        help=f"test evaluation interval (default {DEFAULTS['eval_every']})",
    )
    p.add_argument(
        "--baseline",
        default="uniform",
        help="the label the paired differences are taken against (default uniform)",
    )
    p.add_argument("--out", required=True, help="folder for runs, results.json, results.md")
    p.add_argument("--img-dir", help="where the PNGs go (default: --out)")
    p.add_argument(
        "--task",
        default="reverse",
        help="reverse (the demo mixture) | reverse-mixed (lengths mixed inside each "
        "distribution, for prompt selection) | kk",
    )
    p.add_argument(
        "--levels",
        type=lambda s: [int(x) for x in s.split(",")],
        help="difficulty levels (default: the demo's 1-8,11 for reverse)",
    )
    p.add_argument("--model", help="a local checkpoint to start every run from (no warm start)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any other TrainConfig field for every run",
    )
    p.add_argument("--service-url", help="use this scheduling service instead of a local one")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="check data, model, context length and the service's first plans; train nothing",
    )
    p.add_argument(
        "--smoke",
        action="store_true",
        help=f"tiny sizes; unless given, 1 seed, dump-ucb and uniform, {SMOKE_STEPS} steps",
    )
    args = p.parse_args(argv)
    for key, value in (SMOKE_DEFAULTS if args.smoke else DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.only_seed is not None and not 0 <= args.only_seed < args.seeds:
        p.error(f"--only-seed {args.only_seed} is not one of the seeds 0..{args.seeds - 1}")
    if args.only_seed is not None and (args.report_only or args.dry_run):
        p.error("--only-seed trains; it does not go with --report-only or --dry-run")
    unknown = [s for s in args.strategies.split(",") if s not in STRATEGIES]
    if unknown:
        p.error(f"unknown strategies {unknown}; known: {sorted(STRATEGIES)}")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the grid (seed-major, so a cut-off grid stays paired), then write the report."""
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the local service (a child process) is stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    labels = args.strategies.split(",")
    base = base_config(args)
    grid_start = time.perf_counter()
    seeds = list(range(args.seeds)) if args.only_seed is None else [args.only_seed]
    if args.report_only:
        seeds = [s for s in seeds if all(_done(out, lab, s) for lab in labels)]
        if not seeds:
            print(f"no seed has all of {labels} done in {out}", file=sys.stderr)
            return 1
    todo = [s for s in seeds if not all(_done(out, lab, s) for lab in labels)]
    runs: list[dict[str, Any]] = []
    if args.service_url:
        service: LocalService | _Url = _Url(args.service_url)
    elif todo or args.dry_run:
        # a process per seed (or per seed and strategy) keeps its own service, so its own
        # Redis data folder
        name = "service"
        if args.only_seed is not None:
            name += f"-seed{args.only_seed}-{'+'.join(labels)}"
        service = LocalService(out / name)
    else:
        service = _Url("")  # every run is done: nothing to schedule, no service to start
    with service as svc:
        if args.dry_run:
            return dry_run(svc.url, base, labels, args.model)
        for seed in seeds:
            t0 = time.perf_counter()
            model = args.model or ""
            if not model and seed in todo:
                path, cached = warm_model(base, seed, out)
                model = str(path)
                took = "reused" if cached else f"{time.perf_counter() - t0:.0f} s"
                print(f"seed {seed}: warm start {took}", flush=True)
            for label in labels:
                run = run_one(svc.url, base, label, seed, model, out)
                runs.append(run)
                print(
                    f"{label:>16} seed {seed}: mean test reward {run['eval_mean'][0]:.3f} -> "
                    f"{run['eval_mean'][-1]:.3f}, wall {run['wall_s']:.0f} s, median step "
                    f"{run['step_s_median'] * 1000:.0f} ms, load {run['load_avg']:.1f}",
                    flush=True,
                )
    if args.only_seed is not None:
        wall = time.perf_counter() - grid_start
        print(f"seed {args.only_seed} done in {wall:.0f} s; run without --only-seed to report")
        return 0
    summary = summarise(runs, labels, args.baseline)
    img_dir = Path(args.img_dir) if args.img_dir else out
    images = plot(summary, runs, img_dir)
    wall = time.perf_counter() - grid_start
    summary.update(
        argv=sys.argv[1:] if argv is None else argv,
        config=base,
        wall_s=wall,
        images=[str(p) for p in images],
        runs=runs,
    )
    (out / "results.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    md = "\n\n".join(
        [
            table(summary),
            rollouts_table(summary, ROLLOUT_BASELINES),
            weights_table(summary),
            dropped_table(summary),
        ]
    )
    (out / "results.md").write_text(md + "\n", encoding="utf-8")
    print(md)
    for seed, target in summary["target"].items():
        print(f"seed {seed}: start {summary['start'][seed]:.3f}, target {target:.3f}")
    print(f"wall {wall:.0f} s")
    return 0


def _done(out: Path, label: str, seed: int) -> bool:
    return (run_dir(out, label, seed) / "run.json").exists()


class _Url:
    """A stand-in for :class:`LocalService` when ``--service-url`` names a running service."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __enter__(self) -> _Url:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


if __name__ == "__main__":
    sys.exit(main())
