"""Strategies: pure functions from a run's statistics (and state) to probabilities.

A strategy never reads the clock, global randomness, Redis or the network. Each is a frozen
dataclass of its constants with three methods:

- ``initial_state(k)``: the strategy's own state for ``k`` distributions, a float64 vector
  (empty for the stateless ones);
- ``advance(state, batch)``: the state after one report (a :class:`BatchSummary`);
- ``weights(stats, state)`` and ``scores(stats, state)``: the probabilities, and the score
  each distribution has before normalisation.

Every strategy also carries the two constants of the run's bookkeeping: ``window`` (the
absolute advantages kept per distribution) and ``reward_alpha`` (the weight of each
report's batch mean in a distribution's reward moving average, default 0.1).

The store keeps the state as the fold of ``advance`` over the reports in the order they were
applied, so it is the same whichever replica computes it. The trainer client calls the same
functions on what it has seen while the service cannot be reached.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from curriculum_core.params import check_params, param
from curriculum_core.signals import Signal
from curriculum_core.stats import (
    DEFAULT_REWARD_ALPHA,
    DEFAULT_WINDOW,
    MAX_WINDOW,
    BatchSummary,
    RunStats,
)

_EMPTY = np.zeros(0)


def softmax(x: np.ndarray, tau: float) -> np.ndarray:
    """``exp(x / tau)`` normalised to sum to 1, computed without overflow."""
    x = np.asarray(x, dtype=np.float64)
    # Shifted before the division: x / tau itself overflows for a tiny tau. What overflows
    # now is only far below the top, to -inf, whose exp is the right 0.
    with np.errstate(over="ignore"):
        z = (x - x.max()) / tau
    e = np.exp(z)
    return e / e.sum()


def mix_uniform(p: np.ndarray, floor: float) -> np.ndarray:
    """``(1 - floor) p + floor / K``: every distribution keeps at least ``floor / K``."""
    if floor == 0:
        return p
    return (1.0 - floor) * p + floor / p.shape[0]


class _Stateless:
    """Mixin for strategies that read only the statistics."""

    stateful: ClassVar[bool] = False

    def initial_state(self, k: int) -> np.ndarray:
        return _EMPTY

    @property
    def reads_rewards(self) -> bool:
        """Whether :meth:`weights` reads the reward statistics of :class:`RunStats`."""
        return False

    def advance(self, state: np.ndarray, batch: BatchSummary) -> np.ndarray:
        return state


def count_bonus(counts: np.ndarray, c: float) -> np.ndarray:
    """``c * sqrt(2 ln(N + 1) / (n_j + 1))`` for per-distribution counts ``n`` (``N`` their
    sum), shape ``(K,)``: UCB's exploration bonus."""
    n = np.asarray(counts, dtype=np.float64)
    return c * np.sqrt(2.0 * math.log(n.sum() + 1.0) / (n + 1.0))


def ucb_bonus(stats: RunStats, c: float) -> np.ndarray:
    """DUMP's exploration bonus per distribution, on the cumulative counts, shape ``(K,)``:
    what the UCB score adds to the learning signal."""
    return count_bonus(stats.n, c)


def reward_fall(stats: RunStats) -> np.ndarray:
    """How far each distribution's reward moving average is below the best it has been,
    ``best_j - reward_j``, shape ``(K,)`` (0 before any reward)."""
    assert stats.reward_best is not None and stats.reward_mean is not None
    return stats.reward_best - stats.reward_mean


def ucb_scores(stats: RunStats, c: float) -> np.ndarray:
    """DUMP's UCB score per distribution, shape ``(K,)``."""
    return stats.window_mean.astype(np.float64) + ucb_bonus(stats, c)


@dataclass(frozen=True)
class DumpUcb(_Stateless):
    """DUMP's rule (Wang et al. 2025, arXiv 2504.09710): UCB over mean absolute advantage.

    ``UCB_j = L_j + c * sqrt(2 ln(N + 1) / (n_j + 1))`` with ``L_j`` the mean of the last
    ``window`` absolute advantages of distribution ``j``, ``n_j`` its cumulative sample
    count and ``N = sum_j n_j``; the probabilities are ``softmax(UCB / tau)``. The defaults
    (``window=300``, ``c=1.0``, ``tau=0.1``) are the paper's.

    Two optional remedies for known failure modes of the signal, both off by default:

    - ``floor``: mix with uniform, ``p = (1 - floor) p + floor / K``, so no distribution is
      starved (a bucket mastered early has mean |A| = 0 and would otherwise hardly be
      sampled again, even when it is being forgotten);
    - ``regress_bonus``: add ``regress_bonus * (best_j - reward_j)`` to the score, where
      ``reward_j`` is the distribution's reward moving average and ``best_j`` the highest it
      has been: a bucket whose reward falls gets sampled again before it is lost.

    And what the windows hold, ``signal`` (:mod:`curriculum_core.signals`): the samples'
    absolute advantages (``"advantage"``, the paper's), or their rewards' distance from the
    report's mean reward of the distribution (``"reward-spread"``, for continuous rewards
    with std-normalised advantages; reports must then carry rewards).
    """

    name: Literal["dump-ucb"] = "dump-ucb"
    window: int = param(DEFAULT_WINDOW, ge=1, le=MAX_WINDOW)
    reward_alpha: float = param(DEFAULT_REWARD_ALPHA, gt=0, le=1)
    c: float = param(1.0, ge=0, le=1e6)
    tau: float = param(0.1, gt=0)
    floor: float = param(0.0, ge=0, lt=1)
    regress_bonus: float = param(0.0, ge=0, le=1e6)
    signal: Signal = "advantage"

    def __post_init__(self) -> None:
        check_params(self)

    @property
    def reads_rewards(self) -> bool:
        return self.regress_bonus > 0

    def scores(self, stats: RunStats, state: np.ndarray) -> np.ndarray:
        score = ucb_scores(stats, self.c)
        if self.regress_bonus:
            score = score + self.regress_bonus * reward_fall(stats)
        return score

    def weights(self, stats: RunStats, state: np.ndarray) -> np.ndarray:
        return mix_uniform(softmax(self.scores(stats, state), self.tau), self.floor)


@dataclass(frozen=True)
class Uniform(_Stateless):
    """Every distribution with the same probability; statistics are still kept for display."""

    name: Literal["uniform"] = "uniform"
    window: int = param(DEFAULT_WINDOW, ge=1, le=MAX_WINDOW)
    reward_alpha: float = param(DEFAULT_REWARD_ALPHA, gt=0, le=1)

    def __post_init__(self) -> None:
        check_params(self)

    def scores(self, stats: RunStats, state: np.ndarray) -> np.ndarray:
        return np.zeros(stats.k)

    def weights(self, stats: RunStats, state: np.ndarray) -> np.ndarray:
        return np.full(stats.k, 1.0 / stats.k)
