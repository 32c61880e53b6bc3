"""The calls a client owes the service, kept in order while it is unreachable, optionally
mirrored to a file.

Three kinds wait here: the creation of the run (``POST /v1/runs``), the import of a snapshot
(``PUT /v1/runs/{run}/import``, when a trainer resumes from a checkpoint) and reports. They
are replayed in the order they were made. Each report keeps the ``report_id`` it was made
with, so replaying it after a crash, a timeout or a partial replay is acknowledged by the
service as a duplicate instead of being counted twice.

With a ``path``, every entry is appended to a JSONL file (one entry per line, flushed and
fsynced) before the call that made it returns, and the file is read back when a buffer is
created on it again, so what was owed survives a crash of the trainer. Lines written before
creations and imports were kept here (reports only, no ``kind``) read as reports.
"""

from __future__ import annotations

import json
import logging
import os
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger("trainer_client")


@dataclass(frozen=True)
class PendingReport:
    """One report as it goes on the wire, plus the run it belongs to."""

    run_id: str
    report_id: str
    step: int
    advantages: dict[str, list[float]]
    rewards: dict[str, list[float]] | None
    rank: int | None = None
    kind: Literal["report"] = "report"
    groups: list[dict[str, Any]] | None = None
    """Each group's ``{distribution, prompt, rewards}`` (a run that declares prompts)."""

    def body(self) -> dict[str, Any]:
        """The JSON body of ``POST /v1/runs/{run}/reports``."""
        body: dict[str, Any] = {
            "report_id": self.report_id,
            "step": self.step,
            "advantages": self.advantages,
        }
        if self.rewards is not None:
            body["rewards"] = self.rewards
        if self.rank is not None:
            body["rank"] = self.rank
        if self.groups is not None:
            body["groups"] = self.groups
        return body


@dataclass(frozen=True)
class PendingCall:
    """The run's creation (``kind="create"``, body of ``POST /v1/runs``) or a snapshot's
    import (``kind="import"``, body of ``PUT /v1/runs/{run}/import``)."""

    run_id: str
    kind: Literal["create", "import"]
    body_: dict[str, Any] = field(repr=False)

    def body(self) -> dict[str, Any]:
        """The JSON body of the call."""
        return self.body_


Pending = PendingReport | PendingCall


def _from_json(data: dict[str, Any]) -> Pending:
    kind = data.pop("kind", "report")
    if kind == "report":
        return PendingReport(**data)
    if kind in ("create", "import"):
        return PendingCall(run_id=data["run_id"], kind=kind, body_=data["body"])
    raise TypeError(f"unknown kind {kind!r}")


def _to_json(item: Pending) -> str:
    if isinstance(item, PendingReport):
        return json.dumps(asdict(item))
    return json.dumps({"run_id": item.run_id, "kind": item.kind, "body": item.body_})


class ReportBuffer:
    """A FIFO of :class:`Pending` calls for one run, at most ``max_size`` reports.

    When ``max_size`` reports are held, adding one drops the oldest report (its samples are
    then never counted by the service) and logs a warning the first time; ``dropped`` counts
    them. A creation or an import is never dropped.
    """

    def __init__(self, run_id: str, max_size: int, path: str | os.PathLike[str] | None) -> None:
        if max_size < 1:
            raise ValueError(f"max_buffer must be >= 1, got {max_size}")
        self.run_id = run_id
        self.max_size = max_size
        self.path = Path(path) if path is not None else None
        self.dropped = 0
        self._items: deque[Pending] = deque()
        self._reports = 0
        if self.path is not None and self.path.exists():
            for item in self._read(self.path):
                self._push(item)
            if self._items:
                log.info("loaded %d pending call(s) from %s", len(self._items), self.path)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Pending]:
        return iter(self._items)

    @property
    def reports(self) -> int:
        """How many of the pending calls are reports."""
        return self._reports

    def has_create(self) -> bool:
        """Whether the run's creation is pending."""
        return any(item.kind == "create" for item in self._items)

    def _read(self, path: Path) -> Iterator[Pending]:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                item = _from_json(json.loads(line))
            except (json.JSONDecodeError, TypeError, KeyError) as exc:
                # A line torn by a crash mid-write: everything before it is intact.
                log.warning("skipping unreadable line %d of %s: %s", number, path, exc)
                continue
            if item.run_id != self.run_id:
                raise ValueError(
                    f"{path} holds calls of run {item.run_id!r}, not {self.run_id!r}; "
                    "give each run its own buffer_path"
                )
            yield item

    def _push(self, item: Pending) -> bool:
        """Append ``item``; True when a report had to be dropped to make room."""
        dropped = False
        if item.kind == "report":
            if self._reports >= self.max_size:
                oldest = next(i for i in self._items if i.kind == "report")
                self._items.remove(oldest)
                self._reports -= 1
                if self.dropped == 0:
                    log.warning(
                        "report buffer full (%d reports): dropping the oldest; their samples "
                        "will not be counted by the service",
                        self.max_size,
                    )
                self.dropped += 1
                dropped = True
            self._reports += 1
        self._items.append(item)
        return dropped

    def add(self, item: Pending) -> None:
        """Append ``item`` (and write it to the file, if any, before returning)."""
        if self._push(item):
            self.persist()
            return
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(_to_json(item) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def peek(self) -> Pending | None:
        """The oldest pending call, or None when empty."""
        return self._items[0] if self._items else None

    def pop(self) -> None:
        """Forget the oldest call (it reached the service). Call :meth:`persist` after."""
        if self._items.popleft().kind == "report":
            self._reports -= 1

    def restart_from(self, snapshot_import: PendingCall, reports: list[PendingReport]) -> None:
        """Owe the service ``snapshot_import`` then ``reports`` instead of what was owed
        after the run's creation: an import replaces the run's state, so reports queued
        before it would be overwritten anyway."""
        kept = [item for item in self._items if item.kind == "create"]
        self._items = deque(kept)
        self._reports = 0
        for item in (snapshot_import, *reports):
            self._push(item)
        self.persist()

    def clear(self) -> None:
        """Forget every call, in memory and on disk."""
        self._items.clear()
        self._reports = 0
        self.persist()

    def persist(self) -> None:
        """Rewrite the file to hold exactly the calls still pending (atomically)."""
        if self.path is None:
            return
        if not self._items:
            self.path.unlink(missing_ok=True)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w") as f:
            f.writelines(_to_json(item) + "\n" for item in self._items)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
