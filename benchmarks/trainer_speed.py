"""Step time of the bundled GRPO trainer against TRL's ``GRPOTrainer`` on the same tiny config.

Both trainers start from the same weights (the project's tiny 2-layer GPT-2, d=64, built by
``trainer_client.grpo.model.build_tiny`` with the character tokenizer) and train on the same
digit-reversal data (``trainer_client.grpo.tasks``, lengths 1-8) with the same 0/1
exact-match reward: 16 prompts x 8 completions a step, at most 9 new tokens, temperature 1,
AdamW at a constant learning rate, a k3 KL penalty to a frozen reference (beta 0.04), one
optimisation pass per batch, clipped surrogate (eps 0.2), gradient clipping at 1, float32 on
the CPU, no evaluation, checkpoints or logging.

The bundled trainer plans its batches with the in-process ``LocalScheduler`` (the service's
scheduling math, no HTTP). TRL needs the ``bench`` extra (``pip install -e '.[bench]'``).

On a shared machine the load drifts, so the two are timed interleaved in one process: TRL's
``train()`` loop runs, and after each of its optimisation steps a callback runs one step of the
bundled trainer, so every TRL step is followed by one of ours (A, B, A, B, ...). A TRL step is
the wall time from the end of our previous step to TRL's next ``on_step_end``: everything its
loop does for one step (data loading, generation, reward, reference and policy forward passes,
loss, backward, optimizer step and its bookkeeping). The first ``--warmup`` steps of each are
dropped.

    python -m benchmarks.trainer_speed --steps 100 --json runs/trainer-speed.json
    python -m benchmarks.trainer_speed --smoke --json /tmp/trainer-speed.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainer_client.grpo.config import TrainConfig
from trainer_client.grpo.model import build_tiny, char_tokenizer
from trainer_client.grpo.scheduler import LocalScheduler
from trainer_client.grpo.tasks import Distribution, reverse_distributions, reverse_reward
from trainer_client.grpo.trainer import GRPOTrainer as BundledTrainer

LEVELS = [1, 2, 3, 4, 5, 6, 7, 8]
"""Digit-reversal lengths: one distribution each, as the trainer's default config."""
TRAIN_SIZE = 500
"""Train prompts per distribution (a step draws 16, so the size only affects set-up time)."""


def bundled_config(steps: int, output_dir: str, seed: int) -> TrainConfig:
    """The bundled trainer's config: its tiny-model defaults, CPU, no eval or warm start."""
    return TrainConfig(
        model="tiny",
        device="cpu",
        levels=LEVELS,
        train_size=TRAIN_SIZE,
        test_size=8,
        steps=steps,
        prompts_per_step=16,
        group_size=8,
        max_new_tokens=9,
        temperature=1.0,
        lr=1e-3,
        clip_eps=0.2,
        kl_beta=0.04,
        ppo_epochs=1,
        max_grad_norm=1.0,
        warmstart_steps=0,
        scheduler="local",
        eval_every=0,
        output_dir=output_dir,
        seed=seed,
    )


def trl_config(cfg: TrainConfig, steps: int, output_dir: str) -> Any:
    """TRL's ``GRPOConfig`` equivalent to ``cfg``.

    TRL counts a batch in completions (prompts x generations); its defaults that differ from
    the bundled trainer's semantics are overridden: bf16 and gradient checkpointing off, a
    constant learning rate, the per-completion ``"grpo"`` loss (not ``"dapo"``), and no
    importance weight on the KL term (always 1 with one pass, but it changes the gradient).
    """
    from trl import GRPOConfig

    return GRPOConfig(
        output_dir=output_dir,
        use_cpu=True,
        bf16=False,
        fp16=False,
        gradient_checkpointing=False,
        model_init_kwargs={"dtype": "float32", "attn_implementation": "eager"},
        per_device_train_batch_size=cfg.prompts_per_step * cfg.group_size,
        gradient_accumulation_steps=1,
        num_generations=cfg.group_size,
        max_completion_length=cfg.max_new_tokens,
        temperature=cfg.temperature,
        learning_rate=cfg.lr,
        lr_scheduler_type="constant",
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        beta=cfg.kl_beta,
        epsilon=cfg.clip_eps,
        num_iterations=cfg.ppo_epochs,
        loss_type="grpo",
        scale_rewards="group",
        use_bias_correction_kl=False,
        max_steps=steps,
        logging_strategy="no",
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        disable_tqdm=True,
        seed=cfg.seed,
    )


def train_dataset(distributions: list[Distribution]) -> Any:
    """Every train example of every distribution as a TRL prompt dataset (``prompt``,
    ``answer``); TRL draws prompts uniformly from it, the bundled trainer per its plan."""
    from datasets import Dataset

    rows = [ex for d in distributions for ex in d.train]
    return Dataset.from_dict(
        {"prompt": [ex.prompt for ex in rows], "answer": [ex.answer for ex in rows]}
    )


class ExactMatch:
    """The task's 0/1 exact-match reward with TRL's reward-function signature; also records
    the mean completion length (EOS included) of every call, for the report."""

    __name__ = "exact_match"

    def __init__(self) -> None:
        self.lengths: list[float] = []

    def __call__(
        self, completions: list[str], completion_ids: list[list[int]], answer: list[str], **_: Any
    ) -> list[float]:
        self.lengths.append(float(np.mean([len(ids) for ids in completion_ids])))
        return reverse_reward(completions, answer)


def summary(seconds: list[float]) -> dict[str, float]:
    """Median, 90th percentile and mean of step times, in seconds."""
    return {
        "median_s": statistics.median(seconds),
        "p90_s": float(np.percentile(seconds, 90)),
        "mean_s": statistics.fmean(seconds),
    }


def run(steps: int, warmup: int, seed: int) -> dict[str, Any]:
    """Train both for ``warmup + steps`` steps, interleaved one step each; the timings."""
    import trl
    from transformers import PrinterCallback, TrainerCallback
    from trl import GRPOTrainer as TRLTrainer

    total = warmup + steps
    with tempfile.TemporaryDirectory(prefix="trainer-speed-") as tmp:
        cfg = bundled_config(total, str(Path(tmp) / "bundled"), seed)
        distributions = reverse_distributions(LEVELS, seed, cfg.train_size, cfg.test_size)
        scheduler = LocalScheduler([d.name for d in distributions], cfg.strategy, seed=seed)
        ours = BundledTrainer(cfg, scheduler, distributions=distributions, progress=False)

        # TRL loads the policy and builds its reference from a path: save the very weights the
        # bundled trainer starts from (same builder, same seed).
        tokenizer = char_tokenizer()
        weights_dir = Path(tmp) / "tiny"
        policy = build_tiny(tokenizer, cfg.tiny_layers, cfg.tiny_dim, cfg.tiny_heads, seed=seed)
        policy.save_pretrained(weights_dir)
        tokenizer.save_pretrained(weights_dir)
        reward = ExactMatch()
        ours_s: list[float] = []
        ours_tokens: list[float] = []
        trl_s: list[float] = []

        class Interleave(TrainerCallback):
            """After each TRL step, time it and run (and time) one bundled step."""

            def on_train_begin(self, *args: Any, **kwargs: Any) -> None:
                self.mark = time.perf_counter()

            def on_step_end(self, *args: Any, **kwargs: Any) -> None:
                start = time.perf_counter()
                trl_s.append(start - self.mark)
                record = ours.train_step()
                self.mark = time.perf_counter()
                ours_s.append(self.mark - start)
                ours_tokens.append(record["completion_tokens"])

        theirs = TRLTrainer(
            model=str(weights_dir),
            reward_funcs=reward,
            args=trl_config(cfg, total, str(Path(tmp) / "trl")),
            train_dataset=train_dataset(distributions),
            processing_class=tokenizer,
            callbacks=[Interleave()],
        )
        theirs.remove_callback(PrinterCallback)  # it prints the end-of-training summary
        load_before = os.getloadavg()
        theirs.train()
        load_after = os.getloadavg()
    if len(trl_s) != total or len(ours_s) != total:
        raise RuntimeError(f"expected {total} steps each, got TRL {len(trl_s)}, ours {len(ours_s)}")
    result: dict[str, Any] = {
        "steps": steps,
        "warmup": warmup,
        "trl_version": trl.__version__,
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "loadavg_before": list(load_before),
        "loadavg_after": list(load_after),
        "ours": {
            **summary(ours_s[warmup:]),
            "completion_tokens": statistics.fmean(ours_tokens[warmup:]),
            "step_s": ours_s,
        },
        "trl": {
            **summary(trl_s[warmup:]),
            "completion_tokens": statistics.fmean(reward.lengths[warmup:]),
            "step_s": trl_s,
        },
    }
    result["ratio_trl_over_ours"] = result["trl"]["median_s"] / result["ours"]["median_s"]
    # Each TRL step and the bundled step right after it saw about the same load.
    pairs = zip(trl_s[warmup:], ours_s[warmup:], strict=True)
    result["ratio_paired_median"] = statistics.median(t / o for t, o in pairs)
    return result


def table(result: dict[str, Any]) -> str:
    """The report: one row per trainer, then the ratio of medians and the machine load."""
    lines = [
        f"{'trainer':<10} {'median s':>9} {'p90 s':>9} {'mean s':>9} {'tokens':>7}",
    ]
    for label, key in (("bundled", "ours"), (f"TRL {result['trl_version']}", "trl")):
        row = result[key]
        lines.append(
            f"{label:<10} {row['median_s']:>9.4f} {row['p90_s']:>9.4f} {row['mean_s']:>9.4f} "
            f"{row['completion_tokens']:>7.2f}"
        )
    load = "/".join(f"{x:.2f}" for x in result["loadavg_before"])
    lines.append(
        f"ratio TRL/ours: {result['ratio_trl_over_ours']:.2f}x of medians, "
        f"{result['ratio_paired_median']:.2f}x median of step pairs, over "
        f"{result['steps']} steps each after {result['warmup']} warm-up, interleaved; "
        f"torch {result['torch_version']}, {result['torch_threads']} threads, "
        f"load average {load} at start"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the interleaved benchmark, print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=50, help="timed steps per trainer")
    parser.add_argument("--warmup", type=int, default=5, help="untimed first steps per trainer")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, help="torch intra-op threads for both (default: torch's own)"
    )
    parser.add_argument("--json", type=Path, help="also write the results (all step times) here")
    parser.add_argument(
        "--smoke", action="store_true", help="3 steps after 1 warm-up step (used by a test)"
    )
    args = parser.parse_args(argv)
    if args.smoke:
        args.steps, args.warmup = 3, 1
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be >= 1 and --warmup >= 0")
    if importlib.util.find_spec("trl") is None:
        message = "trl is not installed (pip install -e '.[bench]'): nothing to compare against"
        if args.smoke:
            print(f"SKIPPED: {message}")
            return 0
        parser.error(message)
    if args.threads:
        torch.set_num_threads(args.threads)
    result = run(args.steps, args.warmup, args.seed)
    print(table(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0 if math.isfinite(result["ratio_trl_over_ours"]) else 1


if __name__ == "__main__":
    sys.exit(main())
