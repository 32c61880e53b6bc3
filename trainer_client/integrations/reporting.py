"""What every trainer integration reports: a round's per-sample values grouped by the
``data_source`` of their rows (plain lists, ready for :meth:`CurriculumClient.report`)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import torch


def by_source(sources: Iterable[Any], values: Iterable[float | None]) -> dict[str, list[float]]:
    """``values`` grouped by the ``data_source`` beside each, in order; ``None`` and NaN
    values are left out (a sample without a reward), the sources kept as strings."""
    grouped: dict[str, list[float]] = {}
    for source, value in zip(sources, values, strict=True):
        if value is not None and not math.isnan(value):
            grouped.setdefault(str(source), []).append(value)
    return grouped


def mean_abs_over_mask(values: torch.Tensor, mask: torch.Tensor) -> list[float]:
    """Each row's mean absolute value over its masked tokens (0 for a row with none).

    ``values`` and ``mask`` are ``(batch, response_len)``: a sequence's learning signal
    from token-level advantages, over the response tokens the policy produced.
    """
    mask = mask.float()
    total = (values.detach().float().abs() * mask).sum(-1)  # (batch,)
    return (total / mask.sum(-1).clamp(min=1)).tolist()


def row_sums(values: torch.Tensor, mask: torch.Tensor | None = None) -> list[float]:
    """Each row's sum (over ``mask`` when given): a sequence's reward from token scores."""
    values = values.detach().float()
    if mask is not None:
        values = values * mask.float()
    return values.sum(-1).tolist()


def round_report(
    sources: Sequence[Any],
    advantages: Sequence[float],
    rewards: Sequence[float | None] | None = None,
) -> tuple[dict[str, list[float]], dict[str, list[float]] | None]:
    """A round's ``(advantages, rewards)`` by distribution, as one report takes them;
    ``rewards`` is ``None`` when no sample has one."""
    by_advantage = by_source(sources, advantages)
    by_reward = by_source(sources, rewards) if rewards is not None else {}
    return by_advantage, by_reward or None
