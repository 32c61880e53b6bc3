"""What each process last saw of a run's weights and prompt state, to draw the plan of a new
step without reading them first.

A new step's plan took three Redis calls: the kept plan's ``HGET`` (none), ``get_plan`` (the
weights) and ``put_plan``. With the weights this process last stored or read, it takes one:
``put_plan`` with the version they were drawn from, which stores the plan only while they are
still the run's weights and fresh; otherwise nothing is written, the reply carries the
current weights (``MOVED``) and the plan is drawn again from them, as it would have been
from ``get_plan``'s. The prompt state likewise: ``put_plan`` and ``report`` write a change
of it only while ``meta.prompt_version`` is the version it was computed from, so a state kept
at that version is the one a read would give, and a stale one costs a retry, never another
plan. After a plan's prompts are computed, the state after them is kept at once, under the
version its write will set (a random one, keys.py), so that the next plan of the run is
computed without waiting for the write; if the write is not stored, the state is dropped.
A request for a step at or below the highest this process has seen planned reads the kept
plan first, as before (the other ranks of a step).

Entries are kept by run id for one incarnation of the run, the least recently used dropped
first while their weights and prompt records pass ``max_bytes`` (0: nothing is kept, and
every new step reads the weights as before).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
import numpy as np

from curriculum_core.prompts import PromptState
from service.store.keys import PROMPT_DIST_BYTES

if TYPE_CHECKING:
    from service.run_cache import Run

ENTRY_BYTES = 256
"""What an entry counts against the budget besides its arrays."""


@dataclass
class _Seen:
    """One run's entry: the highest step this process planned or found planned, the weights
    fresh at ``weights_version`` and the prompt state at ``prompt_version``."""

    incarnation: str
    planned: int = -1
    weights_version: int = -1
    weights: np.ndarray | None = None
    prompt_version: str = ""
    prompts: PromptState | None = None

    @property
    def nbytes(self) -> int:
        size = ENTRY_BYTES
        if self.weights is not None:
            size += self.weights.nbytes
        if self.prompts is not None:
            size += self.prompts.records.nbytes + PROMPT_DIST_BYTES * self.prompts.counts.size
        return size


class RunStateCache:
    """The :class:`_Seen` entries of the runs used last, within ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._entries: OrderedDict[str, _Seen] = OrderedDict()
        self._bytes = 0

    def _entry(self, run: Run) -> _Seen | None:
        entry = self._entries.get(run.run_id)
        if entry is None or entry.incarnation != run.incarnation:
            return None
        self._entries.move_to_end(run.run_id)
        return entry

    def _update(self, run: Run, **fields: object) -> None:
        """Set ``fields`` of the run's entry (a new one for a new incarnation), then drop the
        least recently used entries while the total passes the budget."""
        if self._max_bytes <= 0:
            return
        entry = self._entry(run)
        if entry is None:
            self.drop(run.run_id)
            entry = _Seen(incarnation=run.incarnation)
            self._entries[run.run_id] = entry
        else:
            self._bytes -= entry.nbytes
        for name, value in fields.items():
            setattr(entry, name, value)
        self._bytes += entry.nbytes
        while self._bytes > self._max_bytes and self._entries:
            _, dropped = self._entries.popitem(last=False)
            self._bytes -= dropped.nbytes

    def planned(self, run: Run) -> int:
        """The highest step this process planned or found planned (-1: none)."""
        entry = self._entry(run)
        return -1 if entry is None else entry.planned

    def saw_plan(self, run: Run, step: int) -> None:
        """A plan of ``step`` is being fixed, or was found fixed."""
        if step > self.planned(run):
            self._update(run, planned=step)

    def weights(self, run: Run) -> tuple[int, np.ndarray] | None:
        """The newest weights seen of the run and the version they are fresh at."""
        entry = self._entry(run)
        if entry is None or entry.weights is None:
            return None
        return entry.weights_version, entry.weights

    def keep_weights(self, run: Run, version: int, weights: np.ndarray) -> None:
        """The run's weights at ``version``, computed from its state at that version (older
        than those kept: ignored)."""
        entry = self._entry(run)
        if entry is None or version > entry.weights_version:
            self._update(run, weights_version=version, weights=weights)

    def prompts(self, run: Run) -> tuple[str, PromptState] | None:
        """The run's prompt state seen last and its ``meta.prompt_version``."""
        entry = self._entry(run)
        if entry is None or entry.prompts is None:
            return None
        return entry.prompt_version, entry.prompts

    def keep_prompts(self, run: Run, version: str, state: PromptState) -> None:
        """The run's whole prompt state at ``meta.prompt_version`` ``version``."""
        self._update(run, prompt_version=version, prompts=state)

    def drop_prompts(self, run: Run) -> None:
        """Forget the run's prompt state (found moved)."""
        if self.prompts(run) is not None:
            self._update(run, prompt_version="", prompts=None)

    def drop(self, run_id: str) -> None:
        """Forget the run (deleted, or found recreated)."""
        entry = self._entries.pop(run_id, None)
        if entry is not None:
            self._bytes -= entry.nbytes


class Turns:
    """One holder at a time of each run's turn (the others wait theirs, in order)."""

    def __init__(self) -> None:
        self._runs: dict[str, tuple[anyio.Lock, int]] = {}
        """Each run whose turn is held or waited for: the turn, and how many hold or wait
        for it (the entry goes with the last)."""

    @asynccontextmanager
    async def turn(self, run_id: str) -> AsyncIterator[None]:
        lock, users = self._runs.get(run_id, (anyio.Lock(fast_acquire=True), 0))
        self._runs[run_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._runs[run_id]
            if users == 1:
                del self._runs[run_id]
            else:
                self._runs[run_id] = (lock, users - 1)
