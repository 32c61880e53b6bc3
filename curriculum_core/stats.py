"""The numbers strategies read: per-distribution statistics and one report's summary."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_WINDOW = 300
"""Sliding window of absolute advantages kept per distribution (DUMP's ``W``)."""

MAX_WINDOW = 10_000
"""The longest window a strategy may keep."""

MAX_REPORT_VALUE = 1e38
"""The largest magnitude a reported advantage or reward may have. Windows hold float32
(largest 3.4e38), and a ``reward-spread`` value, ``|r - mean r|``, is at most twice a reward;
every sum and difference the strategies take of such values stays finite in float64."""


def reportable(values: Sequence[float]) -> bool:
    """Whether every value is finite and at most :data:`MAX_REPORT_VALUE` in magnitude."""
    return all(math.isfinite(v) and -MAX_REPORT_VALUE <= v <= MAX_REPORT_VALUE for v in values)


DEFAULT_REWARD_ALPHA = 0.1
"""Weight of each report's batch mean in a distribution's reward moving average."""


@dataclass(frozen=True)
class RunStats:
    """The per-distribution numbers a strategy may look at, each an array of shape ``(K,)``.

    ``n`` is the cumulative count of samples reported for each distribution (not capped by
    the window); ``window_mean`` is the mean absolute advantage over the window (0 while the
    window is empty); ``reward_mean`` the moving average of reported batch mean rewards and
    ``reward_best`` the highest that moving average has been (both 0 before any reward).
    """

    n: np.ndarray
    window_mean: np.ndarray
    reward_mean: np.ndarray | None = None
    reward_best: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.n.shape != self.window_mean.shape or self.n.ndim != 1:
            raise ValueError(
                f"n and window_mean must be 1-D and of one length, got {self.n.shape} "
                f"and {self.window_mean.shape}"
            )
        if self.n.size == 0:
            raise ValueError("a run needs at least one distribution")
        for name in ("reward_mean", "reward_best"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, np.zeros(self.n.shape))

    @property
    def k(self) -> int:
        """Number of distributions."""
        return int(self.n.shape[0])

    @classmethod
    def empty(cls, k: int) -> RunStats:
        """Statistics of a run with ``k`` distributions and nothing reported yet."""
        return cls(n=np.zeros(k), window_mean=np.zeros(k))


@dataclass(frozen=True)
class BatchSummary:
    """What one report says about each distribution it carries, arrays of shape ``(m,)``.

    ``index`` names the distributions; ``count`` is how many advantages each got,
    ``mean_abs_advantage`` their mean absolute value (0 where none), and ``mean_reward``
    the mean reported reward (NaN where the report carried no rewards for it).
    """

    index: np.ndarray
    count: np.ndarray
    mean_abs_advantage: np.ndarray
    mean_reward: np.ndarray

    @classmethod
    def of_report(
        cls,
        advantages: Mapping[int, Sequence[float]],
        rewards: Mapping[int, Sequence[float]] | None = None,
    ) -> BatchSummary:
        """The summary of one report, given per distribution index its samples' advantages
        (signed) and rewards; distributions appear in first-seen order."""
        rewards = rewards or {}
        index = list(dict.fromkeys([*advantages, *rewards]))
        adv = [np.abs(np.asarray(advantages.get(i, ()), dtype=np.float64)) for i in index]
        rew = [rewards.get(i, ()) for i in index]
        return cls(
            index=np.array(index, dtype=np.int64),
            count=np.array([a.size for a in adv], dtype=np.float64),
            mean_abs_advantage=np.array([a.mean() if a.size else 0.0 for a in adv]),
            mean_reward=np.array([float(np.mean(r)) if len(r) else np.nan for r in rew]),
        )
