"""What a person watching a run wants told apart: signal from exploration, and the
distributions that get (almost) nothing or have nothing left to teach.

Pure functions of the statistics and the weights, like the strategies; the service's
``GET /v1/runs/{run}`` and its dashboard show them.
"""

from __future__ import annotations

import numpy as np

from curriculum_core.discounted import DiscountedDumpUcb
from curriculum_core.guarded import DumpGuard
from curriculum_core.registry import Strategy
from curriculum_core.rehearsal import DumpRehearse
from curriculum_core.stats import RunStats
from curriculum_core.strategies import DumpUcb, ucb_bonus

STARVED_SHARE = 0.1
"""A distribution is *starved* while its weight is below this fraction of the uniform
``1 / K``: it gets under a tenth of the batch share it would get without a curriculum."""

SATURATED_SIGNAL = 0.01
"""A distribution is *saturated* when the mean absolute advantage of a window holding at
least :data:`SATURATED_MIN_SAMPLES` samples (or the whole window, if shorter) is at most
this: its groups are all right or all wrong, so its samples teach nothing (its reward says
which)."""

SATURATED_MIN_SAMPLES = 16


def exploration_bonus(
    strategy: Strategy, stats: RunStats, state: np.ndarray | None = None
) -> np.ndarray:
    """What the strategy adds to each distribution's learning signal to explore, shape
    ``(K,)``: DUMP's UCB bonus (``dump-ucb``, ``dump-guard``, ``dump-rehearse``), the
    discounted one of ``dump-ducb`` (read from the strategy's ``state``; None: before any
    report), zeros for strategies without one."""
    if isinstance(strategy, DumpUcb | DumpGuard | DumpRehearse):
        return ucb_bonus(stats, strategy.c)
    if isinstance(strategy, DiscountedDumpUcb):
        return strategy.bonus(strategy.initial_state(stats.k) if state is None else state)
    return np.zeros(stats.k)


def rehearsal_share(strategy: Strategy, k: int, state: np.ndarray | None = None) -> np.ndarray:
    """The share of the batch each distribution gets for rehearsal, because it was seen to
    be forgotten while left out (``dump-rehearse``), shape ``(K,)``; zeros for the other
    strategies and before any report (``state`` None)."""
    if isinstance(strategy, DumpRehearse) and state is not None:
        return strategy.shares(state)
    return np.zeros(k)


def starved(weights: np.ndarray) -> np.ndarray:
    """Whether each distribution's weight is below :data:`STARVED_SHARE` of ``1 / K``."""
    w = np.asarray(weights, dtype=np.float64)
    return w < STARVED_SHARE / w.shape[0]


def saturated(strategy: Strategy, stats: RunStats) -> np.ndarray:
    """Whether each distribution's window is filled enough and its mean absolute advantage
    is at most :data:`SATURATED_SIGNAL` (see there)."""
    enough = np.minimum(stats.n, strategy.window) >= min(SATURATED_MIN_SAMPLES, strategy.window)
    return enough & (stats.window_mean <= SATURATED_SIGNAL)
