"""A bounded async HTTP load driver: closed loop at fixed concurrency, or open loop at a fixed
request rate. Every loop stops by itself (request count and time limit).

Requests go through :class:`RawHttp`, a minimal HTTP/1.1 keep-alive client on asyncio
streams: httpx costs about 1 ms of CPU per request, which on a 2-core machine shared with the
service would be measured as the service's latency (the bare endpoint answers 588/s through
httpx and 1,900/s through wrk at concurrency 1). The real ``httpx`` client is measured
separately, as the trainer uses it (``service_load.client_overhead``).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

RequestMaker = Callable[[int], tuple[str, bytes]]
"""``i -> (path, JSON body)`` for the ``i``-th request of a measurement."""


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by nearest rank; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class LoadResult:
    """Latencies (ms) of the successful requests of one measurement, and what went wrong."""

    latencies_ms: list[float] = field(default_factory=list)
    from_schedule_ms: list[float] = field(default_factory=list)
    errors: int = 0
    dropped: int = 0
    wall_s: float = 0.0

    def summary(self) -> dict[str, float | int]:
        """Count, errors, throughput and latency percentiles, rounded for the tables."""
        lat = self.latencies_ms
        return {
            "requests": len(lat),
            "errors": self.errors,
            "dropped": self.dropped,
            "rps": round(len(lat) / self.wall_s, 1) if self.wall_s > 0 else 0.0,
            "p50_ms": round(percentile(lat, 50), 3),
            "p99_ms": round(percentile(lat, 99), 3),
            "max_ms": round(max(lat), 3) if lat else math.nan,
            **(
                {"sched_p99_ms": round(percentile(self.from_schedule_ms, 99), 3)}
                if self.from_schedule_ms
                else {}
            ),
        }


class RawHttp:
    """Keep-alive HTTP/1.1 connections to one loopback server; ``post`` returns the status.

    Understands exactly what uvicorn sends back: a status line, headers with
    ``content-length``, and a body of that length.
    """

    def __init__(self, base_url: str, token: str | None, connections: int) -> None:
        host, _, port = base_url.removeprefix("http://").partition(":")
        self._host, self._port = host, int(port)
        auth = f"authorization: Bearer {token}\r\n" if token else ""
        self._headers = f"host: {host}\r\ncontent-type: application/json\r\n{auth}".encode()
        self._size = connections
        self._idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.Queue()
        )
        self._all: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> RawHttp:
        for _ in range(self._size):
            reader, writer = await asyncio.open_connection(self._host, self._port)
            self._all.append(writer)
            self._idle.put_nowait((reader, writer))
        return self

    async def __aexit__(self, *exc: object) -> None:
        for writer in self._all:
            writer.close()

    async def post(self, path: str, body: bytes) -> int:
        """Send one POST on an idle connection; the response's status code."""
        reader, writer = await self._idle.get()
        try:
            writer.write(
                b"POST %s HTTP/1.1\r\n%scontent-length: %d\r\n\r\n%s"
                % (path.encode(), self._headers, len(body), body)
            )
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            writer.close()
            reader, writer = await asyncio.open_connection(self._host, self._port)
            self._all.append(writer)
            status = 0
        self._idle.put_nowait((reader, writer))
        return status


def client(base_url: str, token: str | None, connections: int) -> RawHttp:
    """A driver connection pool of ``connections`` keep-alive connections."""
    return RawHttp(base_url, token, connections)


async def _send(http: RawHttp, make: RequestMaker, i: int) -> bool:
    path, body = make(i)
    return await http.post(path, body) == 200


async def closed_loop(
    http: RawHttp,
    make: RequestMaker,
    *,
    concurrency: int,
    requests: int,
    max_s: float,
    first: int = 0,
) -> LoadResult:
    """``concurrency`` workers send back-to-back until ``requests`` are sent or ``max_s`` passed.

    Request numbers start at ``first`` (so that a warm-up and the measurement can use
    disjoint steps or report ids).
    """
    result = LoadResult()
    next_index = first
    end_index = first + requests
    start = time.perf_counter()
    deadline = start + max_s

    async def worker() -> None:
        nonlocal next_index
        while next_index < end_index and time.perf_counter() < deadline:
            i = next_index
            next_index += 1
            t0 = time.perf_counter()
            ok = await _send(http, make, i)
            if ok:
                result.latencies_ms.append((time.perf_counter() - t0) * 1000)
            else:
                result.errors += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.wall_s = time.perf_counter() - start
    return result


async def open_loop(
    http: RawHttp,
    make: RequestMaker,
    *,
    rate: float,
    duration_s: float,
    max_in_flight: int,
    first: int = 0,
) -> LoadResult:
    """Requests started on a fixed schedule (``rate`` per second for ``duration_s``).

    ``latencies_ms`` count from when each request was sent; ``from_schedule_ms`` from when it
    was due, so that a stalled server is not hidden by late sends (no coordinated omission;
    it also includes the event loop's timer lateness, under a millisecond when the driver
    is idle). A request due while ``max_in_flight`` are outstanding is not sent and counted
    as ``dropped``.
    """
    result = LoadResult()
    total = int(rate * duration_s)
    in_flight = 0
    tasks: list[asyncio.Task[Any]] = []

    async def one(i: int, scheduled: float) -> None:
        nonlocal in_flight
        sent = time.perf_counter()
        try:
            ok = await _send(http, make, i)
        finally:
            in_flight -= 1
        done = time.perf_counter()
        if ok:
            result.latencies_ms.append((done - sent) * 1000)
            result.from_schedule_ms.append((done - scheduled) * 1000)
        else:
            result.errors += 1

    start = time.perf_counter()
    for n in range(total):
        scheduled = start + n / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        if in_flight >= max_in_flight:
            result.dropped += 1
            continue
        in_flight += 1
        tasks.append(asyncio.create_task(one(first + n, scheduled)))
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=60.0)
    result.wall_s = time.perf_counter() - start
    return result
