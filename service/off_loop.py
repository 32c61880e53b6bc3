"""CPU-heavy work of a request, moved off the event loop that answers every other request.

Parsing a large report, packing its values and rendering a large answer hold the CPU for up
to a second; on the loop, that second stalls every tenant's calls (``/healthz`` included).
:class:`OffLoop` runs such work in worker threads, at most ``worker_threads`` at a time, so
the loop stays free for the other requests. Small work runs inline: below
:data:`OFF_LOOP_MIN_SIZE` the hop to a thread costs more than the work.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import anyio.to_thread

P = ParamSpec("P")
T = TypeVar("T")

OFF_LOOP_MIN_SIZE = 4096
"""Work on fewer items (values, slots, distributions) than this runs on the loop (tens of
microseconds at most)."""


class OffLoop:
    """Runs work in at most ``threads`` worker threads at a time (the others wait their
    turn, off the loop)."""

    def __init__(self, threads: int) -> None:
        self._limiter = anyio.CapacityLimiter(threads)

    async def run(self, size: int, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn(*args, **kwargs)``: in a worker thread when it handles ``size`` items or more,
        else inline."""
        if size < OFF_LOOP_MIN_SIZE:
            return fn(*args, **kwargs)
        call = functools.partial(fn, *args, **kwargs)
        return await anyio.to_thread.run_sync(call, limiter=self._limiter)
