"""What both verl routes do each step: draw its prompts by its plan, and report it once.

verl trains on one controller process, which holds the whole batch: one report a step
carries every sample, under the id ``{run}/step-{step}/rank-0``. In a run that declares its
prompts, that report also carries the step's ``groups`` (:func:`prompt_groups`): the
responses of one verl ``uid`` (one prompt of the batch) together, named by their row's
distribution and prompt id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from trainer_client.client import CurriculumClient
from trainer_client.integrations.reporting import mean_abs_over_mask, round_report, row_sums
from trainer_client.sampler import CurriculumBatchSampler


def step_draw(
    labels: Sequence[str], client: CurriculumClient, batch_size: int, seed: int
) -> CurriculumBatchSampler:
    """The bundled sampler's draw; verl's loop numbers the steps, so only its
    ``global_batch(step)`` (the step's rows by its plan) is used."""
    return CurriculumBatchSampler(
        list(labels), client, batch_size, num_steps=0, seed=seed, rank=0, world_size=1
    )


def sequence_values(
    advantages: torch.Tensor, mask: torch.Tensor, scores: torch.Tensor | None
) -> tuple[list[float], list[float] | None]:
    """Each response's mean ``|advantage|`` over its response ``mask`` and its reward (its
    token scores summed over the mask; ``None`` without scores). ``(batch, length)`` each."""
    rewards = row_sums(scores, mask) if scores is not None else None
    return mean_abs_over_mask(advantages, mask), rewards


def prompt_groups(
    draw: CurriculumBatchSampler,
    uids: Sequence[Any],
    rows: Sequence[int | None],
    rewards: Sequence[float | None],
) -> list[dict[str, Any]]:
    """The step's groups as a report's ``groups`` takes them: the sequences of one verl
    ``uid`` (the responses to one prompt of the batch) together, named by their dataset
    row's distribution and prompt id (``draw.prompt_of``), with their rewards, in the order
    their uids first come. A sequence without a row (a prompt verl drew itself) or without a
    reward is left out."""
    by_uid: dict[str, tuple[int, list[float]]] = {}
    for uid, row, reward in zip(uids, rows, rewards, strict=True):
        if row is None or reward is None:
            continue
        kept_row, values = by_uid.setdefault(str(uid), (int(row), []))
        if kept_row != int(row):
            raise ValueError(f"verl's uid {uid} holds rows {kept_row} and {row}: not one prompt")
        values.append(float(reward))
    groups = []
    for row, values in by_uid.values():
        name, prompt = draw.prompt_of(row)
        groups.append({"distribution": name, "prompt": prompt, "rewards": values})
    return groups


def report_step(
    client: CurriculumClient,
    step: int,
    sources: Sequence[str],
    advantages: Sequence[float],
    rewards: Sequence[float | None] | None,
    groups: Sequence[Mapping[str, Any]] | None = None,
) -> None:
    """Report step ``step``'s samples, grouped by ``data_source``, once (with the step's
    ``groups`` when given)."""
    by_advantage, by_reward = round_report(sources, advantages, rewards)
    client.report(
        step,
        by_advantage,
        by_reward,
        report_id=f"{client.run_id}/step-{step}/rank-0",
        with_weights=False,
        groups=groups or None,
    )
