"""The scheduling core: the strategies' math and an in-memory run, numpy only, no I/O.

The service runs it on what it reads from Redis; the trainer client runs the same code while
the service cannot be reached, and the bundled trainer runs it in-process. It imports
nothing but numpy (a test checks), so a trainer machine needs neither FastAPI nor Redis.
"""

from curriculum_core.bandits import Exp3S, LearningProgress, Sec
from curriculum_core.composition import (
    assignment_of_counts,
    compose_batch,
    counts_of,
    plan_rng,
)
from curriculum_core.diagnostics import exploration_bonus, rehearsal_share, saturated, starved
from curriculum_core.discounted import DiscountedDumpUcb
from curriculum_core.guarded import DumpGuard
from curriculum_core.prompts import PromptSelection, PromptState
from curriculum_core.registry import (
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
from curriculum_core.rehearsal import DumpRehearse
from curriculum_core.run_model import (
    DEFAULT_PLAN_RETENTION,
    DEFAULT_REPORT_ID_RETENTION,
    SNAPSHOT_FORMAT,
    Group,
    Plan,
    ReportError,
    RunModel,
    parse_strategy,
)
from curriculum_core.signals import SIGNALS, MissingRewards, window_values
from curriculum_core.stats import (
    DEFAULT_REWARD_ALPHA,
    DEFAULT_WINDOW,
    MAX_REPORT_VALUE,
    MAX_WINDOW,
    BatchSummary,
    RunStats,
    reportable,
)
from curriculum_core.strategies import (
    DumpUcb,
    Uniform,
    mix_uniform,
    softmax,
    ucb_bonus,
    ucb_scores,
)

__all__ = [
    "DEFAULT_PLAN_RETENTION",
    "DEFAULT_REPORT_ID_RETENTION",
    "DEFAULT_REWARD_ALPHA",
    "DEFAULT_STRATEGY",
    "DEFAULT_WINDOW",
    "MAX_REPORT_VALUE",
    "MAX_WINDOW",
    "SIGNALS",
    "SNAPSHOT_FORMAT",
    "STRATEGIES",
    "BatchSummary",
    "DiscountedDumpUcb",
    "DumpGuard",
    "DumpRehearse",
    "DumpUcb",
    "Exp3S",
    "Group",
    "LearningProgress",
    "MissingRewards",
    "Plan",
    "PromptSelection",
    "PromptState",
    "ReportError",
    "RunModel",
    "RunStats",
    "Sec",
    "Strategy",
    "Uniform",
    "advance",
    "assignment_of_counts",
    "compose_batch",
    "counts_of",
    "exploration_bonus",
    "initial_state",
    "mix_uniform",
    "parse_strategy",
    "plan_rng",
    "rehearsal_share",
    "reportable",
    "saturated",
    "scores",
    "signal_of",
    "softmax",
    "starved",
    "strategy_from_dict",
    "strategy_to_dict",
    "ucb_bonus",
    "ucb_scores",
    "weights",
    "window_values",
]
