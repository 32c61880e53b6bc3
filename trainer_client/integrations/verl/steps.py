"""What both verl routes do each step: draw its prompts by its plan, and report it once.

verl trains on one controller process, which holds the whole batch: one report a step
carries every sample, under the id ``{run}/step-{step}/rank-0``.
"""

from __future__ import annotations

from collections.abc import Sequence

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


def report_step(
    client: CurriculumClient,
    step: int,
    sources: Sequence[str],
    advantages: Sequence[float],
    rewards: Sequence[float | None] | None,
) -> None:
    """Report step ``step``'s samples, grouped by ``data_source``, once."""
    by_advantage, by_reward = round_report(sources, advantages, rewards)
    client.report(
        step,
        by_advantage,
        by_reward,
        report_id=f"{client.run_id}/step-{step}/rank-0",
        with_weights=False,
    )
