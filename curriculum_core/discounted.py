"""DUMP's signal under a discounted UCB: a curriculum for learners that forget.

DUMP (:class:`curriculum_core.strategies.DumpUcb`) treats each distribution as a stationary
arm: its window keeps the last absolute advantages however old they are, and its bonus
shrinks with the cumulative count. A bucket mastered early shows ``|A| = 0`` and is hardly
sampled again, so when it is forgotten nothing shows it. Discounted UCB (Garivier and
Moulines 2011, "On upper-confidence bound policies for switching bandit problems", ALT)
lets old evidence fade instead: counts and sums decay with time, so an idle arm's count
falls, its bonus grows back and it is probed again; and the mean is of recent samples, so
one probe that finds the bucket forgotten lifts its score at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from curriculum_core.params import check_params, param
from curriculum_core.stats import (
    DEFAULT_REWARD_ALPHA,
    DEFAULT_WINDOW,
    MAX_WINDOW,
    BatchSummary,
    RunStats,
)
from curriculum_core.strategies import count_bonus, mix_uniform, softmax

MAX_HORIZON = 10_000_000


@dataclass(frozen=True)
class DiscountedDumpUcb:
    """DUMP's mean absolute advantage, scheduled by discounted UCB.

    Time is counted in samples: a report of ``m`` samples (all distributions together)
    first multiplies every discounted count ``N_j`` and sum ``S_j`` by ``exp(-m /
    horizon)``, then adds its own: ``N_j += count_j``, ``S_j += count_j * mean|A|_j``. So
    the decay does not depend on how a step's batch is split between ranks' reports, and
    the discounted total ``N = sum_j N_j`` tends to ``horizon``. Score and probabilities:

        ``UCB_j = S_j / N_j + c * sqrt(2 ln(N + 1) / (N_j + 1))``,  ``p = softmax(UCB / tau)``

    (``S_j / N_j`` is 0 while ``N_j = 0``), mixed with uniform by ``floor``. ``c`` and
    ``tau`` are DUMP's; ``horizon`` is the memory in samples. The run's window is kept for
    display but not read. State: ``N`` then ``S``, shape ``(2K,)``.
    """

    name: Literal["dump-ducb"] = "dump-ducb"
    window: int = param(DEFAULT_WINDOW, ge=1, le=MAX_WINDOW)
    reward_alpha: float = param(DEFAULT_REWARD_ALPHA, gt=0, le=1)
    c: float = param(1.0, ge=0, le=1e6)
    tau: float = param(0.1, gt=0)
    horizon: float = param(4096.0, ge=1, le=MAX_HORIZON)
    floor: float = param(0.0, ge=0, lt=1)

    stateful: ClassVar[bool] = True
    reads_rewards: ClassVar[bool] = False

    def __post_init__(self) -> None:
        check_params(self)

    def initial_state(self, k: int) -> np.ndarray:
        return np.zeros(2 * k)

    def advance(self, state: np.ndarray, batch: BatchSummary) -> np.ndarray:
        k = state.shape[0] // 2
        decay = math.exp(-float(batch.count.sum()) / self.horizon)
        out = state * decay
        np.add.at(out, batch.index, batch.count)
        np.add.at(out, k + batch.index, batch.count * batch.mean_abs_advantage)
        return out

    def bonus(self, state: np.ndarray) -> np.ndarray:
        """The exploration bonus ``c * sqrt(2 ln(N + 1) / (N_j + 1))``, shape ``(K,)``."""
        return count_bonus(state[: state.shape[0] // 2], self.c)

    def scores(self, stats: RunStats, state: np.ndarray) -> np.ndarray:
        counts, sums = np.split(state, 2)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(counts > 0, sums / np.where(counts > 0, counts, 1.0), 0.0)
        return mean + self.bonus(state)

    def weights(self, stats: RunStats, state: np.ndarray) -> np.ndarray:
        return mix_uniform(softmax(self.scores(stats, state), self.tau), self.floor)
