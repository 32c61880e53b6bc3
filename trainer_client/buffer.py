"""Reports kept while the service is unreachable, in order, optionally mirrored to a file.

Each report keeps the ``report_id`` it was made with, so replaying it after a crash, a
timeout or a partial replay is acknowledged by the service as a duplicate instead of being
counted twice. With a ``path``, every report is appended to a JSONL file (one report per
line, flushed and fsynced) before it is acknowledged to the trainer, and the file is read
back when a buffer is created on it again, so buffered reports survive a trainer crash.
"""

from __future__ import annotations

import json
import logging
import os
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

log = logging.getLogger("trainer_client")


@dataclass(frozen=True)
class PendingReport:
    """One report as it goes on the wire, plus the run it belongs to."""

    run_id: str
    report_id: str
    step: int
    advantages: dict[str, list[float]]
    rewards: dict[str, list[float]] | None

    def body(self) -> dict[str, object]:
        """The JSON body of ``POST /v1/runs/{run}/reports``."""
        body: dict[str, object] = {
            "report_id": self.report_id,
            "step": self.step,
            "advantages": self.advantages,
        }
        if self.rewards is not None:
            body["rewards"] = self.rewards
        return body


class ReportBuffer:
    """A bounded FIFO of :class:`PendingReport` for one run.

    When ``max_size`` reports are held, adding one drops the oldest (its samples are then
    never counted by the service) and logs a warning the first time; ``dropped`` counts them.
    """

    def __init__(self, run_id: str, max_size: int, path: str | os.PathLike[str] | None) -> None:
        if max_size < 1:
            raise ValueError(f"max_buffer must be >= 1, got {max_size}")
        self.run_id = run_id
        self.max_size = max_size
        self.path = Path(path) if path is not None else None
        self.dropped = 0
        self._items: deque[PendingReport] = deque()
        if self.path is not None and self.path.exists():
            for item in self._read(self.path):
                self._push(item)
            if self._items:
                log.info("loaded %d buffered report(s) from %s", len(self._items), self.path)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[PendingReport]:
        return iter(self._items)

    def _read(self, path: Path) -> Iterator[PendingReport]:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                item = PendingReport(**json.loads(line))
            except (json.JSONDecodeError, TypeError) as exc:
                # A line torn by a crash mid-write: everything before it is intact.
                log.warning("skipping unreadable line %d of %s: %s", number, path, exc)
                continue
            if item.run_id != self.run_id:
                raise ValueError(
                    f"{path} holds reports of run {item.run_id!r}, not {self.run_id!r}; "
                    "give each run its own buffer_path"
                )
            yield item

    def _push(self, item: PendingReport) -> None:
        if len(self._items) >= self.max_size:
            self._items.popleft()
            if self.dropped == 0:
                log.warning(
                    "report buffer full (%d reports): dropping the oldest; their samples will "
                    "not be counted by the service",
                    self.max_size,
                )
            self.dropped += 1
        self._items.append(item)

    def add(self, item: PendingReport) -> None:
        """Append ``item`` (and write it to the file, if any, before returning)."""
        overflowing = len(self._items) >= self.max_size
        self._push(item)
        if self.path is None:
            return
        if overflowing:
            self.persist()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as f:
            f.write(json.dumps(asdict(item)) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def peek(self) -> PendingReport | None:
        """The oldest report, or None when empty."""
        return self._items[0] if self._items else None

    def pop(self) -> None:
        """Forget the oldest report (it reached the service). Call :meth:`persist` after."""
        self._items.popleft()

    def clear(self) -> None:
        """Forget every report, in memory and on disk."""
        self._items.clear()
        self.persist()

    def persist(self) -> None:
        """Rewrite the file to hold exactly the reports still buffered (atomically)."""
        if self.path is None:
            return
        if not self._items:
            self.path.unlink(missing_ok=True)
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w") as f:
            f.writelines(json.dumps(asdict(item)) + "\n" for item in self._items)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
