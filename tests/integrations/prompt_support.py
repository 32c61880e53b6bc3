"""What the integrations' prompt-selection tests share: the prompt records the service should
hold after a run's groups, by the core's own rule (no trainer imported here)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from curriculum_core.prompts import PromptState, outcome_of, updated_records

Group = tuple[str, int, list[float]]
"""A reported group: its distribution, its prompt id, its completions' rewards."""


def expected_records(names: list[str], counts: dict[str, int], groups: list[Group]) -> list[int]:
    """The prompt records (one byte a prompt, distribution after distribution in ``names``
    order) of a fresh run after ``groups``, applied in order (``solved_above`` 0)."""
    state = PromptState.initial([counts[n] for n in names])
    flats = [int(state.offsets[names.index(n)]) + p for n, p, _ in groups]
    outcomes = [outcome_of(names.index(n), p, r, 0.0) for n, p, r in groups]
    records = updated_records(dict.fromkeys(flats, 0), flats, outcomes)
    out = [0] * int(state.records.size)
    for flat, record in records.items():
        out[flat] = record
    return out


def service_records(
    names: list[str], counts: dict[str, int], state: Mapping[str, Any]
) -> list[int]:
    """The records of a snapshot's ``prompt_state``, as a list."""
    return PromptState.from_json([counts[n] for n in names], state).records.tolist()


def groups_counted(names: list[str], groups: list[Group]) -> list[int]:
    """The groups a snapshot's ``prompt_state`` should count per distribution."""
    return [sum(1 for g in groups if g[0] == n) for n in names]
