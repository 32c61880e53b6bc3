"""What the Lua scripts answer: their status codes and each script's reply, by name.

Every script answers a list whose first element is a :class:`Status`; ``lua/_common.lua``
defines the same names with the same values (a test compares them). Each script's reply is
read into the named tuple below that lists its elements in the order the script returns
them (its header says the same), so no caller indexes a reply by position. The replies that
carry a strategy's inputs name them alike: ``version``, ``stats``, ``rewards``, ``state``,
``state_version``, ``journal``.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, NamedTuple


class Status(IntEnum):
    """The first element of every script's reply (``lua/_common.lua``: ``local NAME = n``)."""

    OK = 0
    """Done: created, applied, stored, read."""
    EXISTS = 1
    """What the call would write is there already: the run (create), the report id
    (report), the step's plan (get_plan, put_plan), newer weights (set_weights)."""
    EXPIRED = 2
    """The step is older than the run's kept plans (get_plan, put_plan)."""
    FULL = 3
    """The plans of the step and newer ones fill the plans' byte budget (put_plan)."""
    CONFLICT = 4
    """The prompt state changed since the caller read it (put_plan, report): nothing was
    written; read and compute again."""
    MOVED = 5
    """The weights changed since the caller read them (put_plan): nothing was written; the
    reply carries the current ones."""
    RUN_MISSING = -1
    """No run has this id."""
    RUN_RECREATED = -2
    """The run was deleted and created again since the caller read its config."""
    OTHER_LAYOUT = -3
    """The run is stored in another storage layout (keys.py ``STORE_LAYOUT``)."""
    INVALID = -4
    """An argument is not what the script takes (import); nothing is changed. The reply's
    second element says which."""


class CreateReply(NamedTuple):
    """``lua/create.lua``'s reply."""

    status: Status
    existing_config: bytes | None = None  # EXISTS: the run's config JSON


class ReportReply(NamedTuple):
    """``lua/report.lua``'s reply."""

    status: Status  # OK: applied; EXISTS: the report id was applied before
    version: int
    stats: bytes
    rewards: bytes
    state: bytes
    state_version: int
    journal: list[bytes]
    weights_version: int | None = None  # EXISTS only
    weights: bytes | None = None  # EXISTS only


class ReadStateReply(NamedTuple):
    """``lua/read_state.lua``'s reply."""

    status: Status
    version: int
    weights_version: int
    weights: bytes
    stats: bytes
    rewards: bytes
    state: bytes
    state_version: int
    journal: list[bytes]
    ranks: list[bytes] | None = None  # with activity: each rank's last report, as HGETALL
    last_step: bytes | None = None  # with activity: each distribution's last sampled step


class GetPlanReply(NamedTuple):
    """``lua/get_plan.lua``'s reply."""

    status: Status  # OK: to be drawn; EXISTS: fixed; EXPIRED: too old
    # EXISTS: the kept plan; EXPIRED: the highest planned step; OK: the run's version
    value: Any = None
    weights_version: int | None = None  # OK only
    weights: bytes | None = None  # OK only


class PutPlanReply(NamedTuple):
    """``lua/put_plan.lua``'s reply."""

    status: Status  # OK: stored; EXISTS: fixed first by another caller; EXPIRED: too old;
    # FULL: no room in the plans' byte budget; MOVED: other weights; CONFLICT: prompts moved
    value: Any = None  # OK, EXISTS: the plan that holds; EXPIRED: the highest step; FULL:
    # the bytes the kept plans count; MOVED: the run's version
    weights_version: int | None = None  # MOVED only
    weights: bytes | None = None  # MOVED only


class ExportReply(NamedTuple):
    """``lua/export.lua``'s reply."""

    status: Status
    version: int
    stats: bytes
    rewards: bytes
    windows: bytes
    report_ids: list[Any]  # flat member, score, member, score, ... oldest first
    history: list[bytes]
    state: bytes
    state_version: int
    journal: list[bytes]
    prompts: bytes = b""  # the prompt records ('' without prompts)
    prompt_dists: bytes = b""


class ReadPromptsReply(NamedTuple):
    """``lua/read_prompts.lua``'s reply."""

    status: Status
    prompt_version: bytes  # meta.prompt_version, as stored
    prompt_dists: bytes
    records: bytes  # every record, or those asked for, in order


class ImportReply(NamedTuple):
    """``lua/import.lua``'s reply."""

    status: Status
    version: int


class HistoryReply(NamedTuple):
    """``lua/history.lua``'s reply."""

    status: Status
    entries: list[bytes]


def status_of(reply: list[Any]) -> Status:
    """The status a reply starts with."""
    return Status(int(reply[0]))
