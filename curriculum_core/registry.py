"""Every strategy by name, their wire form, and the calls the store and client make."""

from __future__ import annotations

from dataclasses import fields

import numpy as np

from curriculum_core.bandits import Exp3S, LearningProgress, Sec
from curriculum_core.discounted import DiscountedDumpUcb
from curriculum_core.guarded import DumpGuard
from curriculum_core.rehearsal import DumpRehearse
from curriculum_core.stats import BatchSummary, RunStats
from curriculum_core.strategies import DumpUcb, Uniform

Strategy = (
    DumpUcb
    | DumpGuard
    | DiscountedDumpUcb
    | DumpRehearse
    | Uniform
    | Sec
    | LearningProgress
    | Exp3S
)
"""Every strategy's parameter type; ``name`` tells them apart on the wire."""

STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (
        DumpUcb,
        DumpGuard,
        DiscountedDumpUcb,
        DumpRehearse,
        Uniform,
        Sec,
        LearningProgress,
        Exp3S,
    )
}
DEFAULT_STRATEGY = "dump-guard"


def strategy_from_dict(data: dict[str, object]) -> Strategy:
    """Build a strategy from its wire form, ``{"name": ..., **params}``.

    Raises ``ValueError`` with a message naming the problem for a missing or unknown name,
    an unknown parameter or a value out of range.
    """
    params = dict(data)
    if "name" not in params:
        raise ValueError(f"a strategy object needs its 'name', one of {list(STRATEGIES)}")
    name = params.pop("name")
    cls = STRATEGIES.get(str(name))
    if cls is None:
        raise ValueError(f"unknown strategy {name!r}; choose one of {sorted(STRATEGIES)}")
    allowed = {f.name for f in fields(cls) if f.name != "name"}
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {unknown} for strategy {name!r}; it takes {sorted(allowed)}"
        )
    return cls(**params)  # type: ignore[arg-type]


def strategy_to_dict(strategy: Strategy) -> dict[str, object]:
    """The wire form of a strategy, every parameter spelled out."""
    return {f.name: getattr(strategy, f.name) for f in fields(strategy)}


def initial_state(strategy: Strategy, k: int) -> np.ndarray:
    """The strategy's state before any report (empty for stateless strategies)."""
    return strategy.initial_state(k)


def advance(strategy: Strategy, state: np.ndarray, batch: BatchSummary) -> np.ndarray:
    """The strategy's state after one report."""
    return strategy.advance(state, batch)


def weights(strategy: Strategy, stats: RunStats, state: np.ndarray | None = None) -> np.ndarray:
    """Sampling probabilities over the run's distributions, shape ``(K,)``, summing to 1."""
    return strategy.weights(stats, strategy.initial_state(stats.k) if state is None else state)


def scores(strategy: Strategy, stats: RunStats, state: np.ndarray | None = None) -> np.ndarray:
    """The score each distribution gets before normalisation (what ``GET /runs`` shows)."""
    return strategy.scores(stats, strategy.initial_state(stats.k) if state is None else state)


def signal_of(strategy: Strategy) -> str:
    """What the strategy's windows hold (:mod:`curriculum_core.signals`)."""
    return getattr(strategy, "signal", "advantage")
