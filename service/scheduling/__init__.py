"""The scheduling math: pure functions, numpy only, no I/O.

The trainer client imports this package and nothing else from ``service``, so it must stay
free of FastAPI, Redis and pydantic (a test checks).
"""

from service.scheduling.composition import compose_batch, counts_of, plan_rng
from service.scheduling.strategies import (
    DEFAULT_STRATEGY,
    DEFAULT_WINDOW,
    MAX_WINDOW,
    STRATEGIES,
    DumpUcb,
    LocalStats,
    RunStats,
    Strategy,
    Uniform,
    scores,
    softmax,
    strategy_from_dict,
    strategy_to_dict,
    ucb_scores,
    weights,
)

__all__ = [
    "DEFAULT_STRATEGY",
    "DEFAULT_WINDOW",
    "MAX_WINDOW",
    "STRATEGIES",
    "DumpUcb",
    "LocalStats",
    "RunStats",
    "Strategy",
    "Uniform",
    "compose_batch",
    "counts_of",
    "plan_rng",
    "scores",
    "softmax",
    "strategy_from_dict",
    "strategy_to_dict",
    "ucb_scores",
    "weights",
]
