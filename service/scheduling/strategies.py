"""Strategies: pure functions from a run's per-distribution statistics to probabilities.

A strategy never reads the clock, global randomness, Redis or the network. The store
reads the numbers, calls :func:`weights`, and writes the vector back; the trainer client
calls the very same function on what it has seen when the service cannot be reached.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

DEFAULT_WINDOW = 300
"""Sliding window of absolute advantages kept per distribution (DUMP's ``W``)."""

MAX_WINDOW = 10_000


@dataclass(frozen=True)
class RunStats:
    """The per-distribution numbers a strategy may look at, each an array of shape ``(K,)``.

    ``n`` is the cumulative count of samples reported for each distribution (not capped by
    the window); ``window_mean`` is the mean absolute advantage over the window (0 while the
    window is empty).
    """

    n: np.ndarray
    window_mean: np.ndarray

    def __post_init__(self) -> None:
        if self.n.shape != self.window_mean.shape or self.n.ndim != 1:
            raise ValueError(
                f"n and window_mean must be 1-D and of one length, got {self.n.shape} "
                f"and {self.window_mean.shape}"
            )
        if self.n.size == 0:
            raise ValueError("a run needs at least one distribution")

    @classmethod
    def empty(cls, k: int) -> RunStats:
        """Statistics of a run with ``k`` distributions and nothing reported yet."""
        return cls(n=np.zeros(k), window_mean=np.zeros(k))


def _check_window(window: int) -> None:
    if not 1 <= window <= MAX_WINDOW:
        raise ValueError(f"window must be between 1 and {MAX_WINDOW}, got {window}")


@dataclass(frozen=True)
class DumpUcb:
    """DUMP's rule (Wang et al. 2025, arXiv 2504.09710): UCB over mean absolute advantage.

    ``UCB_j = L_j + c * sqrt(2 ln(N + 1) / (n_j + 1))`` with ``L_j`` the mean of the last
    ``window`` absolute advantages of distribution ``j``, ``n_j`` its cumulative sample
    count and ``N = sum_j n_j``; the probabilities are ``softmax(UCB / tau)``. The defaults
    (``window=300``, ``c=1.0``, ``tau=0.1``) are the paper's.
    """

    name: Literal["dump-ucb"] = "dump-ucb"
    window: int = DEFAULT_WINDOW
    c: float = 1.0
    tau: float = 0.1

    def __post_init__(self) -> None:
        _check_window(self.window)
        if not (math.isfinite(self.c) and self.c >= 0):
            raise ValueError(f"c must be a finite number >= 0, got {self.c}")
        if not (math.isfinite(self.tau) and self.tau > 0):
            raise ValueError(f"tau must be a finite number > 0, got {self.tau}")


@dataclass(frozen=True)
class Uniform:
    """Every distribution with the same probability; statistics are still kept for display."""

    name: Literal["uniform"] = "uniform"
    window: int = DEFAULT_WINDOW

    def __post_init__(self) -> None:
        _check_window(self.window)


Strategy = DumpUcb | Uniform
"""Every strategy's parameter type; ``name`` tells them apart on the wire."""

STRATEGIES: dict[str, type[DumpUcb] | type[Uniform]] = {"dump-ucb": DumpUcb, "uniform": Uniform}
DEFAULT_STRATEGY = "dump-ucb"


def strategy_from_dict(data: dict[str, object]) -> Strategy:
    """Build a strategy from its wire form, ``{"name": ..., **params}``.

    Raises ``ValueError`` with a message naming the problem for an unknown name, an
    unknown parameter or a value out of range.
    """
    params = dict(data)
    name = params.pop("name", DEFAULT_STRATEGY)
    cls = STRATEGIES.get(str(name))
    if cls is None:
        raise ValueError(f"unknown strategy {name!r}; choose one of {sorted(STRATEGIES)}")
    allowed = {f for f in cls.__dataclass_fields__ if f != "name"}
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {unknown} for strategy {name!r}; it takes {sorted(allowed)}"
        )
    return cls(**params)  # type: ignore[arg-type]


def strategy_to_dict(strategy: Strategy) -> dict[str, object]:
    """The wire form of a strategy, every parameter spelled out."""
    return {f: getattr(strategy, f) for f in strategy.__dataclass_fields__}


def softmax(x: np.ndarray, tau: float) -> np.ndarray:
    """``exp(x / tau)`` normalised to sum to 1, computed without overflow."""
    z = np.asarray(x, dtype=np.float64) / tau
    z = z - z.max()
    e = np.exp(z)
    return e / e.sum()


def ucb_scores(stats: RunStats, c: float) -> np.ndarray:
    """DUMP's UCB score per distribution, shape ``(K,)``."""
    n = stats.n.astype(np.float64)
    total = n.sum()
    bonus = c * np.sqrt(2.0 * math.log(total + 1.0) / (n + 1.0))
    return stats.window_mean.astype(np.float64) + bonus


def scores(strategy: Strategy, stats: RunStats) -> np.ndarray:
    """The score each distribution gets before normalisation (what ``GET /runs`` shows)."""
    if isinstance(strategy, DumpUcb):
        return ucb_scores(stats, strategy.c)
    return np.zeros(stats.n.shape[0])


def weights(strategy: Strategy, stats: RunStats) -> np.ndarray:
    """Sampling probabilities over the run's distributions, shape ``(K,)``, summing to 1."""
    if isinstance(strategy, DumpUcb):
        return softmax(ucb_scores(stats, strategy.c), strategy.tau)
    k = stats.n.shape[0]
    return np.full(k, 1.0 / k)


@dataclass
class LocalStats:
    """A run's statistics kept in memory: the same bookkeeping the store does in Redis.

    The trainer client uses it to schedule on its own while the service is unreachable, and
    tests use it as the reference the service must agree with. Windows hold float32 values,
    as the store does.
    """

    k: int
    window: int = DEFAULT_WINDOW
    n: np.ndarray = field(init=False)
    _windows: list[list[float]] = field(init=False)

    def __post_init__(self) -> None:
        _check_window(self.window)
        self.n = np.zeros(self.k)
        self._windows = [[] for _ in range(self.k)]

    def add(self, index: int, advantages: list[float] | np.ndarray) -> None:
        """Add one distribution's reported advantages (signed; their absolute value is kept)."""
        values = np.abs(np.asarray(advantages, dtype=np.float64)).astype(np.float32)
        self.n[index] += values.size
        win = self._windows[index]
        win.extend(float(v) for v in values)
        del win[: max(0, len(win) - self.window)]

    def stats(self) -> RunStats:
        """The current statistics as a :class:`RunStats`."""
        means = np.array([float(np.mean(w)) if w else 0.0 for w in self._windows])
        return RunStats(n=self.n.copy(), window_mean=means)

    def window_values(self, index: int) -> list[float]:
        """The window of distribution ``index``, oldest first."""
        return list(self._windows[index])
