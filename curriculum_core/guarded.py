"""DUMP guarded against interference: a batch that widens when a learnt skill is being lost.

DUMP's softmax at ``tau = 0.1`` gives most of the batch to the one or two buckets with the
largest mean |A|. Where the buckets do not interact that is what makes it fast. Where they
do (a small model, neighbouring tasks), training one bucket can overwrite another's skill:
the neighbour's reward falls to 0, so does its |A|, and DUMP then reads it as hopeless and
leaves it out. The signal alone cannot tell "hopeless" from "just overwritten".

The rewards can. Each distribution's reward moving average ``r_j`` and the highest it has
been, ``b_j``, are already kept for every run. A bucket whose average has fallen well below
its best is evidence that the mixture interferes. This rule keeps DUMP's score and turns
that evidence into two changes:

- the temperature rises from ``tau`` towards ``tau_guard`` with the largest such fall, so
  the whole batch stays mixed enough to hold what was learnt while the evidence lasts;
- the falling bucket's score gains ``regress_bonus * (b_j - r_j)``, so it is sampled again
  before it is lost for good.

Where no bucket falls (the stationary regimes the paper's rule was made for) the rule is
DUMP's, constants and all, and keeps its speed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from curriculum_core.params import check_params, param
from curriculum_core.signals import Signal
from curriculum_core.stats import DEFAULT_REWARD_ALPHA, DEFAULT_WINDOW, MAX_WINDOW, RunStats
from curriculum_core.strategies import _Stateless, reward_fall, softmax, ucb_scores


def regression(stats: RunStats) -> np.ndarray:
    """:func:`reward_fall`, never negative (a snapshot may carry a best below the
    average), shape ``(K,)``."""
    return np.maximum(reward_fall(stats), 0.0)


@dataclass(frozen=True)
class DumpGuard(_Stateless):
    """DUMP's rule, with a temperature that rises while a learnt skill is being lost.

    With ``L_j`` and the count bonus as in ``dump-ucb``, ``r_j`` the reward moving average
    and ``b_j`` its best, ``f_j = b_j - r_j`` the fall, its gate
    ``gate(f) = clip((f - guard_tol) / guard_width, 0, 1)`` and the guard
    ``g = gate(max_j f_j)``::

        score_j = L_j + c sqrt(2 ln(N + 1) / (n_j + 1)) + regress_bonus * gate(f_j) f_j
        p = softmax(score / (tau + g (tau_guard - tau)))

    ``guard_tol`` is the fall that the reward average's noise alone can make (a report's
    batch mean over a few groups moves it by a few hundredths); a fall of ``guard_tol +
    guard_width`` counts in full, for the temperature and for the falling bucket's bonus.
    With no fall beyond ``guard_tol`` the rule is ``dump-ucb``'s exactly. Reports must carry
    rewards for the guard to see anything; without them it is ``dump-ucb``.
    """

    name: Literal["dump-guard"] = "dump-guard"
    window: int = param(DEFAULT_WINDOW, ge=1, le=MAX_WINDOW)
    reward_alpha: float = param(DEFAULT_REWARD_ALPHA, gt=0, le=1)
    c: float = param(1.0, ge=0, le=1e6)
    tau: float = param(0.1, gt=0)
    tau_guard: float = param(0.5, gt=0)
    guard_tol: float = param(0.1, ge=0, le=1e6)
    guard_width: float = param(0.1, gt=0, le=1e6)
    regress_bonus: float = param(1.0, ge=0, le=1e6)
    signal: Signal = "advantage"

    def __post_init__(self) -> None:
        check_params(self)

    @property
    def reads_rewards(self) -> bool:
        return True

    def gate(self, fall: np.ndarray) -> np.ndarray:
        """How much of each fall counts, in [0, 1]: 0 up to ``guard_tol`` (noise), 1 from
        ``guard_tol + guard_width`` on, linear between."""
        # clipped before the division, which then cannot overflow (guard_width may be tiny)
        beyond = np.clip(fall - self.guard_tol, 0.0, self.guard_width)
        return np.minimum(beyond / self.guard_width, 1.0)

    def guard(self, stats: RunStats) -> float:
        """How far the guard is engaged, in [0, 1]: 0 leaves DUMP's temperature, 1 gives
        ``tau_guard``."""
        return float(self.gate(regression(stats).max()))

    def temperature(self, stats: RunStats) -> float:
        """The softmax temperature for these statistics."""
        g = self.guard(stats)
        # a weighted mean of two positive numbers, never 0 (tau + g (tau_guard - tau) can
        # cancel to 0 in floating point when the two are far apart)
        return (1.0 - g) * self.tau + g * self.tau_guard

    def scores(self, stats: RunStats, state: np.ndarray) -> np.ndarray:
        fall = regression(stats)
        return ucb_scores(stats, self.c) + self.regress_bonus * self.gate(fall) * fall

    def weights(self, stats: RunStats, state: np.ndarray) -> np.ndarray:
        return softmax(self.scores(stats, state), self.temperature(stats))
