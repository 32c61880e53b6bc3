"""The GRPO trainer: plan -> draw prompts -> sample G completions -> reward -> advantages ->
report to the scheduler -> clipped-surrogate update with a KL penalty. Plus greedy evaluation
on each distribution's test split, checkpoints and resume.
"""

from __future__ import annotations

import copy
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm
from transformers import PreTrainedModel

from trainer_client.grpo.checkpoint import read_checkpoint, save_checkpoint
from trainer_client.grpo.config import TrainConfig
from trainer_client.grpo.loss import group_advantages, grpo_loss
from trainer_client.grpo.metrics import MetricsLog, PhaseTimer
from trainer_client.grpo.model import check_context, load_policy, pick_device
from trainer_client.grpo.rollout import Rollout, completion_logprobs, generate, select_rows
from trainer_client.grpo.scheduler import Scheduler
from trainer_client.grpo.tasks import Distribution, Example
from trainer_client.grpo.warmstart import warm_start


def frozen_copy(model: PreTrainedModel) -> PreTrainedModel:
    """A copy of ``model`` that takes no gradients: the KL reference."""
    reference = copy.deepcopy(model)
    reference.requires_grad_(False)
    return reference


def split_by_distribution(
    plan: list[str], values: torch.Tensor, group_size: int
) -> dict[str, list[float]]:
    """Per distribution, the values of its completions; ``values`` is ``(B * G,)``,
    prompt-major, and slot ``b`` of ``plan`` owns entries ``[b*G, (b+1)*G)``."""
    out: dict[str, list[float]] = defaultdict(list)
    for b, name in enumerate(plan):
        out[name].extend(values[b * group_size : (b + 1) * group_size].tolist())
    return dict(out)


@torch.no_grad()
def evaluate_policy(
    model: PreTrainedModel,
    tokenizer: Any,
    distributions: list[Distribution],
    max_new_tokens: int,
    chunk: int = 512,
) -> dict[str, float]:
    """Mean greedy-decoding reward of ``model`` on each distribution's test split, as
    ``eval/<name>``, and their mean as ``eval/mean``; ``chunk`` prompts are decoded at once."""
    rows = [(d, ex) for d in distributions for ex in d.test]
    texts: list[str] = []
    for start in range(0, len(rows), chunk):
        part = rows[start : start + chunk]
        texts += generate(
            model, tokenizer, [ex.prompt for _, ex in part], max_new_tokens, temperature=0.0
        ).texts
    out = {}
    for d in distributions:
        idx = [i for i, (dist, _) in enumerate(rows) if dist is d]
        scores = d.reward([texts[i] for i in idx], [rows[i][1].answer for i in idx])
        out[f"eval/{d.name}"] = float(np.mean(scores))
    out["eval/mean"] = float(np.mean(list(out.values())))
    return out


class GRPOTrainer:
    """Trains one policy with GRPO on the distributions of ``config``, batches composed by
    ``scheduler``. ``resume_from`` is a checkpoint folder to continue from.

    Attributes a caller may read: ``step`` (optimisation steps done), ``model``,
    ``tokenizer``, ``distributions``, ``log`` (the metrics log).
    """

    def __init__(
        self,
        config: TrainConfig,
        scheduler: Scheduler,
        resume_from: str | Path | None = None,
        distributions: list[Distribution] | None = None,
        progress: bool = True,
    ) -> None:
        self.config, self.scheduler, self.progress = config, scheduler, progress
        cfg = config
        self.device, dtype = pick_device(cfg.device, cfg.dtype)
        self.distributions = distributions or cfg.distributions()
        self.by_name = {d.name: d for d in self.distributions}
        source = str(Path(resume_from) / "policy") if resume_from else cfg.model
        prompts = [ex.prompt for d in self.distributions for ex in (*d.train, *d.test)]
        # a tiny model built here gets room for the longest prompt (one token a character)
        positions = max(256, max((len(p) for p in prompts), default=0) + cfg.max_new_tokens + 8)
        # the tiny model runs eager attention (faster than SDPA at its size); a checkpoint of
        # it must be reloaded the same way, or a resumed run is slower and numerically apart
        attn = "eager" if cfg.model == "tiny" else None
        self.model, self.tokenizer = load_policy(
            source,
            self.device,
            dtype,
            cfg.tiny_layers,
            cfg.tiny_dim,
            cfg.tiny_heads,
            cfg.seed,
            positions,
            attn,
        )
        check_context(self.model, self.tokenizer, prompts, cfg.max_new_tokens)
        # RL runs without dropout: the policy that sampled and the policy being scored must be
        # the same function, or the importance ratio is noise. eval() only switches dropout.
        self.model.eval()
        self.prompt_rng = np.random.default_rng(cfg.seed)  # which train prompt fills a slot
        self.sample_gen = torch.Generator(device=self.device).manual_seed(cfg.seed)
        self.step = 0
        self.reference: PreTrainedModel | None = None
        self.warmstart_loss: float | None = None
        if resume_from is None:
            if cfg.warmstart_steps:
                losses = warm_start(
                    self.model,
                    self.tokenizer,
                    self.distributions,
                    cfg.warmstart_steps,
                    cfg.warmstart_batch,
                    cfg.warmstart_lr,
                    self.prompt_rng,
                )
                self.warmstart_loss = losses[-1]
            if cfg.kl_beta > 0:
                self.reference = frozen_copy(self.model)
        elif cfg.kl_beta > 0:
            self.reference = (
                load_policy(
                    str(Path(resume_from) / "reference"),
                    self.device,
                    dtype,
                    attn_implementation=attn,
                )[0]
                .eval()
                .requires_grad_(False)
            )
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay
        )
        if resume_from is not None:
            self._restore(resume_from)
        self.log = MetricsLog(cfg.output_dir, cfg.tensorboard)
        self.log.write(
            {
                "step": self.step,
                "event": "config",
                "config": cfg.to_dict(),
                "warmstart_loss": self.warmstart_loss,
                "resumed_from": str(resume_from or ""),
            }
        )

    # --- one GRPO step -------------------------------------------------------------------

    def draw(self, name: str, prompt: int | None = None) -> Example:
        """Row ``prompt`` of distribution ``name``'s train split, or (``None``: the plan names
        no prompt) a row drawn uniformly, with replacement."""
        train = self.by_name[name].train
        if prompt is None:
            return train[int(self.prompt_rng.integers(len(train)))]
        if not 0 <= prompt < len(train):
            raise ValueError(
                f"the plan names prompt {prompt} of {name!r}, which has {len(train)} train "
                "rows: the scheduling run declares other prompt counts than this data"
            )
        return train[prompt]

    def rewards(self, plan: list[str], examples: list[Example], texts: list[str]) -> torch.Tensor:
        """Reward of each completion, ``(B * G,)``, each scored by its distribution's function."""
        G = self.config.group_size
        out = torch.zeros(len(texts))
        for name in set(plan):
            idx = [b * G + g for b, n in enumerate(plan) if n == name for g in range(G)]
            scores = self.by_name[name].reward(
                [texts[i] for i in idx], [examples[i // G].answer for i in idx]
            )
            out[idx] = torch.tensor(scores, dtype=out.dtype)
        return out

    def update(self, rollout: Rollout, advantages: torch.Tensor) -> dict[str, float]:
        """``ppo_epochs`` gradient steps on the clipped surrogate; metrics of the last one."""
        cfg = self.config
        advantages = advantages.to(self.device)
        with torch.no_grad():
            ref_logp = completion_logprobs(self.reference, rollout) if self.reference else None
            # With one pass the sampling policy is the current one, so logp.detach() below is
            # the old log-prob exactly (ratio 1) and this extra forward can be skipped.
            old_logp = completion_logprobs(self.model, rollout) if cfg.ppo_epochs > 1 else None
        for _ in range(cfg.ppo_epochs):
            logp = completion_logprobs(self.model, rollout)  # (N, T)
            loss, metrics = grpo_loss(
                logp,
                logp.detach() if old_logp is None else old_logp,
                ref_logp,
                advantages,
                rollout.completion_mask,
                cfg.clip_eps,
                cfg.kl_beta,
            )
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            metrics["grad_norm"] = float(
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
            )
            self.optimizer.step()
        return metrics

    def sample(
        self, plan: list[str], prompt_ids: list[int] | None = None
    ) -> tuple[list[Example], Rollout]:
        """Each slot's train prompt (row ``prompt_ids[b]`` of its distribution, or drawn when
        the plan names none) and ``G`` completions of each: the examples and the rollout
        (``n * G`` rows, prompt-major)."""
        G = self.config.group_size
        ids = prompt_ids if prompt_ids is not None else [None] * len(plan)
        examples = [self.draw(name, i) for name, i in zip(plan, ids, strict=True)]
        prompts = [ex.prompt for ex in examples for _ in range(G)]  # n * G, prompt-major
        rollout = generate(
            self.model,
            self.tokenizer,
            prompts,
            self.config.max_new_tokens,
            self.config.temperature,
            self.sample_gen,
        )
        return examples, rollout

    def train_step(self) -> dict[str, Any]:
        """One GRPO step; returns its metrics record (also written to the log)."""
        cfg, timer = self.config, PhaseTimer()
        G, B = cfg.group_size, cfg.prompts_per_step
        # Round 0 is the step's planned batch. With dynamic sampling (DAPO), a group whose
        # rewards are all equal has zero advantages and so no gradient: it is dropped, and the
        # batch refilled from the plans of the step's further rounds (every rank gets the
        # same), generating only the slots still missing, until B groups are kept or
        # max_rounds rounds ran; the update trains on the groups kept. The scheduler hears of
        # every generated group: it learns from what was generated, not only what was trained.
        # When the plans name each slot's prompt (prompt selection), every generated group
        # is also reported with its prompt, so the run learns which prompts teach nothing.
        parts: list[tuple[Rollout, list[int]]] = []  # each round's rollout, its kept groups
        trained: list[str] = []  # distribution of each kept group, in order
        kept_rewards: list[torch.Tensor] = []  # (G,) each
        filtered: dict[str, list[list[float]]] = defaultdict(list)
        prompt_groups: list[dict[str, Any]] = []  # each generated group's prompt and rewards
        generated: Counter[str] = Counter()
        zero_variance: Counter[str] = Counter()  # generated groups whose rewards are all equal
        round_groups: list[int] = []  # groups generated in each round
        all_rewards: list[torch.Tensor] = []  # (n * G,) each round
        tokens: list[torch.Tensor] = []  # (n * G,) completion lengths each round
        for round in range(cfg.max_rounds if cfg.dynamic_sampling else 1):
            if len(trained) == B:
                break
            n = B - len(trained)
            with timer("plan"):
                planned = self.scheduler.plan(self.step, B, round)
                plan = list(planned[:n])  # n names
                ids = getattr(planned, "prompt_ids", None)  # a plain list names no prompts
                ids = None if ids is None else ids[:n]
            with timer("generate"):
                examples, rollout = self.sample(plan, ids)
            with timer("reward"):
                rewards = self.rewards(plan, examples, rollout.texts)  # (n * G,)
            groups = rewards.view(-1, G)  # (n, G)
            varied = [bool(groups[b].max() > groups[b].min()) for b in range(len(plan))]
            keep = [b for b in range(len(plan)) if varied[b] or not cfg.dynamic_sampling]
            for b in sorted(set(range(len(plan))) - set(keep)):
                filtered[plan[b]].append(groups[b].tolist())
            if ids is not None:
                prompt_groups += [
                    {"distribution": d, "prompt": i, "rewards": g.tolist()}
                    for d, i, g in zip(plan, ids, groups, strict=True)
                ]
            parts.append((rollout, [b * G + g for b in keep for g in range(G)]))
            round_groups.append(len(plan))
            trained += [plan[b] for b in keep]
            kept_rewards += [groups[b] for b in keep]
            generated.update(plan)
            zero_variance.update(d for d, v in zip(plan, varied, strict=True) if not v)
            all_rewards.append(rewards)
            tokens.append(rollout.completion_mask.sum(1).float())  # (n * G,)
        rewards = torch.cat(kept_rewards) if trained else torch.zeros(0)  # (b * G,)
        with timer("reward"):
            advantages = group_advantages(rewards, G, cfg.adv_eps)  # (b * G,)
            signal = advantages
            if cfg.report_signal == "centered":
                signal = group_advantages(rewards, G, normalize=False)  # (b * G,)
        with timer("report"):
            reward_lists = split_by_distribution(trained, rewards, G)
            adv_lists = split_by_distribution(trained, signal, G)
            # a scheduler of the old protocol (no groups=) serves a run that names no prompts
            extra = {"groups": prompt_groups} if prompt_groups else {}
            self.scheduler.report(
                self.step, adv_lists, reward_lists, dict(filtered) or None, **extra
            )
        with timer("update"):
            if trained:
                rollout = select_rows(parts, self.tokenizer.pad_token_id)  # (b * G, P + T)
                metrics = self.update(rollout, advantages)
            else:  # every group of every round was dropped: nothing to train on
                metrics = {"update_skipped": 1}
        with timer("report"):
            weights = self.scheduler.weights()
        record: dict[str, Any] = {"step": self.step, **metrics}
        record["reward"] = torch.cat(all_rewards).mean().item()  # over every generated one
        record["completion_tokens"] = torch.cat(tokens).mean().item()
        for name, values in reward_lists.items():
            record[f"reward/{name}"] = float(np.mean(values))
            record[f"adv_abs/{name}"] = float(np.mean(np.abs(adv_lists[name])))
            record[f"count/{name}"] = len(values) // G
        for name in generated:
            record[f"generated_groups/{name}"] = generated[name]
            record[f"zero_variance_groups/{name}"] = zero_variance[name]
        if cfg.dynamic_sampling:
            record["round_groups"] = round_groups
            trained_count = Counter(trained)
            for name in generated:
                record[f"trained_groups/{name}"] = trained_count[name]
        record.update({f"weight/{name}": w for name, w in weights.items()})
        record.update({f"time/{phase}": s for phase, s in timer.seconds.items()})
        record["time/step"] = sum(timer.seconds.values())
        self.step += 1
        self.log.write(record)
        return record

    # --- evaluation ----------------------------------------------------------------------

    def evaluate(self, chunk: int = 512) -> dict[str, float]:
        """Mean greedy-decoding reward on each distribution's test split, as ``eval/<name>``."""
        return evaluate_policy(
            self.model, self.tokenizer, self.distributions, self.config.max_new_tokens, chunk
        )

    def log_evaluation(self) -> dict[str, float]:
        """Evaluate and write the result to the log at the current step."""
        start = time.perf_counter()
        result = self.evaluate()
        self.log.write({"step": self.step, **result, "time/eval": time.perf_counter() - start})
        return result

    # --- the loop ------------------------------------------------------------------------

    def train(self) -> dict[str, float]:
        """Run until ``config.steps``, evaluating and checkpointing on schedule; returns the
        final evaluation (empty when ``eval_every`` is 0)."""
        cfg = self.config
        final: dict[str, float] = {}
        if cfg.eval_every and self.step == 0:
            self.log_evaluation()
        bar = tqdm(total=cfg.steps, initial=self.step, disable=not self.progress, unit="step")
        while self.step < cfg.steps:
            record = self.train_step()
            bar.update(1)
            bar.set_postfix(reward=f"{record['reward']:.2f}", loss=f"{record.get('loss', 0):.3f}")
            last = self.step == cfg.steps
            if cfg.eval_every and (self.step % cfg.eval_every == 0 or last):
                final = self.log_evaluation()
            if cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0 and not last:
                self.save()
        bar.close()
        self.save()
        return final

    # --- checkpoints ---------------------------------------------------------------------

    def save(self, path: str | Path | None = None) -> Path:
        """Save a checkpoint (default ``<output_dir>/checkpoint-<step>``); returns its path."""
        path = Path(path or Path(self.config.output_dir) / f"checkpoint-{self.step}")
        state = {
            "step": self.step,
            "optimizer": self.optimizer.state_dict(),
            "prompt_rng": self.prompt_rng.bit_generator.state,
            "sample_gen": self.sample_gen.get_state(),
            "torch_rng": torch.get_rng_state(),
        }
        return save_checkpoint(
            path,
            self.model,
            self.tokenizer,
            self.reference,
            state,
            self.scheduler.export(),
            self.config.to_dict(),
        )

    def _restore(self, path: str | Path) -> None:
        state, snapshot, _ = read_checkpoint(path)
        self.step = int(state["step"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.prompt_rng.bit_generator.state = state["prompt_rng"]
        self.sample_gen.set_state(state["sample_gen"])
        torch.set_rng_state(state["torch_rng"])
        self.scheduler.import_(snapshot)
