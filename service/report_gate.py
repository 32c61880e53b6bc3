"""Admission of large reports, so that one tenant's large reports cannot stall the others.

A report's script holds Redis, which is single-threaded, for the whole time it runs: about
10 us a distribution it touches plus a fraction of a microsecond a value, so hundreds of
milliseconds at the largest reports (docs/benchmarks.md, noisy neighbour). Every other
tenant's call waits behind it. Parsing such a report also takes a worker thread and the CPU
for as long. :class:`ReportGate` lets a process handle at most ``slots`` large reports at a
time, and one of each run: the others wait their turn, up to ``wait_s`` in all, a run's
second report behind its first (so that one run cannot queue ahead of every other), and
between two large scripts the other tenants' calls get theirs. Past ``wait_s`` the caller
gets 429 with ``Retry-After``; nothing was written. Small reports (a rank's share of an
ordinary step) never wait here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from service.errors import ReportsBusy


class ReportGate:
    """At most ``slots`` large reports at a time in this process, and one of each run."""

    def __init__(self, large_bytes: int, slots: int, wait_s: float) -> None:
        self.large_bytes = large_bytes
        self._wait_s = wait_s
        self._slots = anyio.Semaphore(slots)
        self._runs: dict[str, tuple[anyio.Lock, int]] = {}
        """Each run with a large report in progress or waiting: its turn, and how many hold
        or wait for it (the entry goes with the last)."""

    @asynccontextmanager
    async def admit(self, run_id: str, body_bytes: int) -> AsyncIterator[None]:
        """Hold the run's turn and a slot while the report of ``run_id`` (its body
        ``body_bytes`` long) is parsed and applied; :class:`ReportsBusy` if it waited
        ``wait_s`` for them in vain."""
        if body_bytes < self.large_bytes:
            yield
            return
        turn, users = self._runs.get(run_id, (anyio.Lock(), 0))
        self._runs[run_id] = (turn, users + 1)
        deadline = anyio.current_time() + self._wait_s
        try:
            if not await _taken(turn, deadline):
                raise self._busy("this run's earlier ones")
            try:
                if not await _taken(self._slots, deadline):
                    raise self._busy("other runs'")
                try:
                    yield
                finally:
                    self._slots.release()
            finally:
                turn.release()
        finally:
            turn, users = self._runs[run_id]
            if users == 1:
                del self._runs[run_id]
            else:
                self._runs[run_id] = (turn, users - 1)

    def _busy(self, whose: str) -> ReportsBusy:
        return ReportsBusy(
            f"large reports (over {self.large_bytes} bytes; {whose}) held the service for "
            f"{self._wait_s:g} s; retry after Retry-After seconds"
        )


async def _taken(lock: anyio.Lock | anyio.Semaphore, deadline: float) -> bool:
    """Take ``lock``, waiting until ``deadline`` at most; whether it was taken."""
    try:
        lock.acquire_nowait()
        return True
    except anyio.WouldBlock:
        pass
    with anyio.move_on_after(deadline - anyio.current_time()):
        await lock.acquire()
        return True
    return False
