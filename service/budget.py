"""What one run may keep in Redis: each part bounded, and the bounds checked at creation.

Every part of a run's state has a bound that no call can pass: the windows, statistics and
config are fixed by the run's size; the history, report ids, rank activity and kept plans are
trimmed or refused at their limits (settings). :func:`run_footprint` adds those bounds up,
with Redis's own overheads, and a run whose sum passes ``run_memory_budget_bytes`` is refused
before anything is written, so no sequence of calls with its token can pass the budget.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.errors import RunBudgetExceeded
from service.settings import Settings
from service.store.keys import (
    HISTORY_HEADER_BYTES,
    JOURNAL_HEADER_BYTES,
    PROMPT_DIST_BYTES,
    REWARD_FIELDS,
    STATS_RECORD_BYTES,
)

MAX_REPORT_ID_BYTES = 200
"""The longest report id the API accepts (schemas.ReportRequest)."""

ENTRY_OVERHEAD_BYTES = 128
"""What Redis spends on one element of a hash, list or sorted set beyond its bytes (its
allocations, dict entry and skip-list node), rounded up."""

KEY_OVERHEAD_BYTES = 256
"""What Redis spends on one key beyond its value."""

_GREEDY_LIMIT = 1024 * 1024


def element_bytes(n: int) -> int:
    """An upper bound of what one element of ``n`` bytes of a hash, list or sorted set takes:
    its bytes rounded up by the allocator (at most a quarter) and the element's overhead."""
    return n + n // 4 + ENTRY_OVERHEAD_BYTES


def string_bytes(n: int) -> int:
    """An upper bound of what Redis allocates for a string value of ``n`` bytes: a string
    grown in place (``SETRANGE``, ``APPEND``) gets twice its length below 1 MiB and 1 MiB
    more above, and the allocator rounds a block up by at most a quarter."""
    reserved = 2 * n if n < _GREEDY_LIMIT else n + _GREEDY_LIMIT
    return reserved + reserved // 4 + KEY_OVERHEAD_BYTES


def history_capacity(settings: Settings, k: int) -> int:
    """History entries kept for a run of ``k`` distributions: ``history_limit``, fewer where
    the entries would pass ``history_max_bytes`` (never under 10)."""
    entry_bytes = HISTORY_HEADER_BYTES + 8 * k
    return max(10, min(settings.history_limit, settings.history_max_bytes // entry_bytes))


@dataclass(frozen=True)
class Footprint:
    """The most each part of a run can take in Redis, in bytes."""

    parts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.parts.values())


def run_footprint(
    settings: Settings,
    *,
    k: int,
    window: int,
    config_bytes: int,
    state_bytes: int,
    stateful: bool,
    prompts: int = 0,
) -> Footprint:
    """The bound of every part of a run of ``k`` distributions with windows of ``window``,
    a config of ``config_bytes`` (JSON) and a strategy state of ``state_bytes``; a
    ``stateful`` strategy's journal holds a report's summary or two between folds;
    ``prompts`` declared (all distributions together) keep a byte each and a record per
    distribution (keys.py)."""
    history_entry = HISTORY_HEADER_BYTES + 8 * k
    journal_entry = JOURNAL_HEADER_BYTES + 28 * k
    return Footprint(
        {
            "windows": string_bytes(4 * window * k),
            "statistics": string_bytes(STATS_RECORD_BYTES * k)
            + string_bytes(8 * REWARD_FIELDS * k)
            + string_bytes(8 * k),  # last sampled step
            "config and weights": string_bytes(config_bytes) + string_bytes(8 * k) + 4096,
            "strategy state": string_bytes(state_bytes)
            + (2 * string_bytes(journal_entry) if stateful else 0),
            "history": history_capacity(settings, k) * element_bytes(history_entry),
            "report ids": settings.report_id_retention * element_bytes(MAX_REPORT_ID_BYTES),
            "rank activity": settings.max_ranks * element_bytes(32),
            "kept plans": settings.plans_max_bytes + settings.plans_max_bytes // 4,
            "prompt state": string_bytes(prompts) + string_bytes(PROMPT_DIST_BYTES * k)
            if prompts
            else 0,
        }
    )


def check_run_budget(settings: Settings, footprint: Footprint) -> None:
    """Refuse (413) a run whose parts could pass ``run_memory_budget_bytes`` together."""
    budget = settings.run_memory_budget_bytes
    if footprint.total <= budget:
        return
    largest = sorted(footprint.parts.items(), key=lambda item: -item[1])[:3]
    shown = ", ".join(f"{name} {size / 2**20:.1f} MiB" for name, size in largest)
    raise RunBudgetExceeded(
        f"this run could keep {footprint.total / 2**20:.1f} MiB in Redis (largest: {shown}), "
        f"over the budget of {budget / 2**20:.1f} MiB a run "
        "(CURRICULUM_RUN_MEMORY_BUDGET_BYTES): use fewer distributions or a smaller window, "
        "or ask the operator to raise the budget",
        details={"budget_bytes": budget, "parts": footprint.parts},
    )
