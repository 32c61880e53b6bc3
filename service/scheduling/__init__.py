"""The scheduling math: pure functions, numpy only, no I/O.

The trainer client imports this package and nothing else from ``service``, so it must stay
free of FastAPI, Redis and pydantic (a test checks).
"""

from service.scheduling.bandits import Exp3S, LearningProgress, Sec
from service.scheduling.composition import compose_batch, counts_of, plan_rng
from service.scheduling.registry import (
    DEFAULT_STRATEGY,
    STRATEGIES,
    Strategy,
    advance,
    initial_state,
    scores,
    signal_of,
    strategy_from_dict,
    strategy_to_dict,
    weights,
)
from service.scheduling.signals import SIGNALS, MissingRewards, window_values
from service.scheduling.stats import (
    DEFAULT_REWARD_ALPHA,
    DEFAULT_WINDOW,
    MAX_WINDOW,
    BatchSummary,
    LocalStats,
    RunStats,
)
from service.scheduling.strategies import DumpUcb, Uniform, mix_uniform, softmax, ucb_scores

__all__ = [
    "DEFAULT_REWARD_ALPHA",
    "DEFAULT_STRATEGY",
    "DEFAULT_WINDOW",
    "MAX_WINDOW",
    "SIGNALS",
    "STRATEGIES",
    "BatchSummary",
    "DumpUcb",
    "Exp3S",
    "LearningProgress",
    "LocalStats",
    "MissingRewards",
    "RunStats",
    "Sec",
    "Strategy",
    "Uniform",
    "advance",
    "compose_batch",
    "counts_of",
    "initial_state",
    "mix_uniform",
    "plan_rng",
    "scores",
    "signal_of",
    "softmax",
    "strategy_from_dict",
    "strategy_to_dict",
    "ucb_scores",
    "weights",
    "window_values",
]
