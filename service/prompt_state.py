"""Prompt selection in the service: ``curriculum_core.prompts`` run on what the store read.

A run that declares prompts (``prompts: {dist: n}``) keeps one byte per prompt and a record
per distribution in Redis (keys.py: ``prompts``, ``prompt_dists``). The service reads them,
computes the change a plan or a report makes with the core's own functions
(:func:`~curriculum_core.prompts.plan_prompts`, :func:`~curriculum_core.prompts.updated_records`
and :func:`~curriculum_core.prompts.observe_outcomes`, the two halves of
:func:`~curriculum_core.prompts.apply_outcomes`), and the script that stores the plan or
applies the report writes it only while ``meta.prompt_version`` is the version it read
(compare-and-set): otherwise nothing is written and the service reads and computes again.
No rule of prompt selection is written twice.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from curriculum_core.prompts import (
    GroupOutcome,
    PromptState,
    diagnostics,
    flat_ids,
    observe_outcomes,
    outcome_of,
    plan_prompts,
    prompt_rng,
    updated_records,
)
from service.errors import InvalidInput
from service.schemas import GroupIn, PromptDiagnosticsOut, Snapshot
from service.store.codec import KeptPlan, pack_prompt_dists, prompt_state_of
from service.store.redis_store import PromptRead, PromptWrite

if TYPE_CHECKING:
    from service.run_cache import Run

MAX_ATTEMPTS = 16
"""Reads and computes of one plan or report before the service gives up (503) because other
writers moved the prompt state each time."""


def new_prompt_version() -> str:
    """A ``meta.prompt_version`` for the state after a write (keys.py): a random integer,
    so that a version names one state, even one a process computed before its write was
    stored."""
    return str(secrets.randbits(62))


def check_prompts(
    names: Sequence[str],
    prompts: dict[str, int] | None,
    with_selection: bool,
    max_prompts: int,
) -> int:
    """Prompts declared in all (0: none); :class:`InvalidInput` unless every distribution is
    named and the sum is at most ``max_prompts``."""
    if prompts is None:
        if with_selection:
            raise InvalidInput("prompt_selection needs prompts (every distribution's count)")
        return 0
    missing = sorted(set(names) - set(prompts))
    unknown = sorted(set(prompts) - set(names))
    if missing or unknown:
        raise InvalidInput(
            f"prompts must give every distribution's prompt count and name no other; missing "
            f"{missing[:10]}, unknown {unknown[:10]}"
        )
    total = sum(prompts.values())
    if total > max_prompts:
        raise InvalidInput(
            f"a run may declare at most {max_prompts} prompts in all (CURRICULUM_MAX_PROMPTS), "
            f"got {total}"
        )
    return total


def group_outcomes(run: Run, groups: Sequence[GroupIn], max_groups: int) -> list[GroupOutcome]:
    """A report's groups as the core's outcomes, checked against the run (before any write):
    :class:`InvalidInput` for groups in a run without prompts, too many groups, an unknown
    distribution or a prompt id out of range."""
    if not groups:
        return []
    if run.prompt_counts is None or run.selection is None:
        raise InvalidInput("groups name prompts, and this run declares none")
    if len(groups) > max_groups:
        raise InvalidInput(
            f"a report may name at most {max_groups} groups (CURRICULUM_MAX_REPORT_GROUPS), "
            f"got {len(groups)}"
        )
    out = []
    for i, group in enumerate(groups):
        j = run.index_of(group.distribution)
        n = run.prompt_counts[j]
        if group.prompt >= n:
            raise InvalidInput(
                f"groups[{i}].prompt must be below {n}, the prompt count of "
                f"{group.distribution!r}; got {group.prompt}"
            )
        out.append(outcome_of(j, group.prompt, group.rewards, run.selection.solved_above))
    return out


def report_write(run: Run, outcomes: Sequence[GroupOutcome], read: PromptRead) -> PromptWrite:
    """What a report's groups change, from the records of their prompts (``read``: read for
    :func:`outcome_flat_ids`, in that order)."""
    assert run.prompt_counts is not None
    state = prompt_state_of(run.prompt_counts, read.dists)
    current = dict(zip(flat_ids(state, outcomes), read.records, strict=True))
    return _report_change(run, state, read.version, outcomes, current)[0]


def report_write_from(
    run: Run, outcomes: Sequence[GroupOutcome], version: str, state: PromptState
) -> tuple[PromptWrite, PromptState]:
    """What a report's groups change, from the whole prompt state ``state`` at
    ``meta.prompt_version`` ``version``, and the whole state after it (records copied)."""
    current = {f: int(state.records[f]) for f in flat_ids(state, outcomes)}
    write, moved, records = _report_change(run, state, version, outcomes, current)
    after = state.records.copy()
    after[list(records)] = list(records.values())
    return write, replace(moved, records=after)


def _report_change(
    run: Run,
    state: PromptState,
    version: str,
    outcomes: Sequence[GroupOutcome],
    current: dict[int, int],
) -> tuple[PromptWrite, PromptState, dict[int, int]]:
    """The write of a report's groups from the records ``current`` of their prompts (by
    flat id) and ``state``'s per-distribution fields; the state after it (records aside)
    and the new records by flat id."""
    assert run.selection is not None
    records = updated_records(current, flat_ids(state, outcomes), outcomes)
    moved = observe_outcomes(state, run.selection, outcomes)
    write = PromptWrite(
        version=version,
        dists=pack_prompt_dists(moved),
        next_version=new_prompt_version(),
        flat_ids=np.asarray(list(records), dtype="<u4").tobytes(),
        records=bytes(records.values()),
    )
    return write, moved, records


def outcome_flat_ids(run: Run, outcomes: Sequence[GroupOutcome]) -> np.ndarray:
    """The flat ids (keys.py: ``prompts``) of the outcomes' prompts, in order."""
    assert run.prompt_counts is not None
    return np.asarray(flat_ids(prompt_state_of(run.prompt_counts, b""), outcomes))


def read_prompt_state(run: Run, read: PromptRead) -> PromptState:
    """The whole prompt state of a read of every record."""
    assert run.prompt_counts is not None
    return prompt_state_of(run.prompt_counts, read.dists, read.records)


def plan_write(
    run: Run,
    step: int,
    batch_size: int,
    picks: np.ndarray,
    plan: KeptPlan,
    version: str,
    state: PromptState,
    round: int = 0,
) -> tuple[KeptPlan, PromptWrite, PromptState]:
    """The plan of generation round ``round`` with its prompts, for the distributions
    ``picks`` drawn for each slot, from the whole prompt state ``state`` at
    ``meta.prompt_version`` ``version``; the write of the prompt state after it, and that
    state."""
    assert run.selection is not None
    ids, after = plan_prompts(
        state, run.selection, picks, run.seed, prompt_rng(run.seed, step, batch_size, round)
    )
    write = PromptWrite(
        version=version, dists=pack_prompt_dists(after), next_version=new_prompt_version()
    )
    return replace(plan, prompt_ids=ids), write, after


def prompt_diagnostics(
    run: Run, read: PromptRead, page: slice | None = None
) -> dict[str, PromptDiagnosticsOut]:
    """``GET /v1/runs/{run}``'s ``prompts``: the core's diagnostics per distribution of the
    page (every distribution when ``page`` is None)."""
    assert run.prompt_counts is not None
    state = prompt_state_of(run.prompt_counts, read.dists)
    shown = set(run.distributions[page or slice(None)])
    return {
        name: PromptDiagnosticsOut(**values)
        for name, values in diagnostics(state, run.distributions).items()
        if name in shown
    }


def exported_prompt_state(run: Run, records: bytes, dists: bytes) -> dict[str, object] | None:
    """A snapshot's ``prompt_state`` (the core's format), None without prompts."""
    if run.prompt_counts is None:
        return None
    return prompt_state_of(run.prompt_counts, dists, records).to_json()


def imported_prompt_state(run: Run, snapshot: Snapshot) -> tuple[bytes, bytes]:
    """The records and ``prompt_dists`` an import writes (``b""`` each without prompts): the
    snapshot's when it declares the run's prompt counts, else a fresh state (as
    ``RunModel.load_state``). :class:`InvalidInput` for a state that does not fit."""
    if run.prompt_counts is None:
        return b"", b""
    counts = run.prompt_counts
    fresh = PromptState.initial(counts)
    saved = snapshot.prompt_state
    same = snapshot.config.prompts == dict(zip(run.distributions, counts, strict=True))
    if saved is None or not same:
        return fresh.records.tobytes(), pack_prompt_dists(fresh)
    try:
        state = PromptState.from_json(counts, saved)
    except (ValueError, TypeError, KeyError) as exc:
        raise InvalidInput(f"the snapshot's prompt_state does not fit the run: {exc}") from None
    shares = np.concatenate([state.keep, state.skipped, state.zero_variance])
    tallies = np.concatenate([state.drawn, state.considered, state.groups, state.forced])
    if not (np.all(np.isfinite(shares)) and shares.min() >= 0 and shares.max() <= 1):
        raise InvalidInput("the snapshot's prompt_state: keep and shares must be within [0, 1]")
    if tallies.min() < 0 or tallies.max() >= 2**62:
        raise InvalidInput("the snapshot's prompt_state: counts must be from 0 to 2^62")
    return state.records.tobytes(), pack_prompt_dists(state)
