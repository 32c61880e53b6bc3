"""What ``curriculum doctor`` asks of Redis through the service: its version and mode, how
long a round trip takes, its clock, whether the scripts are loaded (loading the missing
ones), and which storage layouts the runs are kept in."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio.cluster import RedisCluster

from service.store.keys import run_keys
from service.store.listing import scan_runs
from service.store.scripts import SCRIPT_NAMES, script_source

LAYOUT_SCAN_LIMIT = 100_000
"""Runs whose layout ``doctor`` reads at most; past that it says the count is partial."""


@dataclass(frozen=True)
class StoreDiagnosis:
    """Redis as the service sees it."""

    redis_version: str
    cluster: bool
    round_trip_s: float
    redis_time: float
    scripts_missing: list[str]
    scripts_loaded_now: list[str]
    layouts: dict[int, int] = field(default_factory=dict)
    other_layout_runs: list[str] = field(default_factory=list)
    layouts_complete: bool = True


def _server_version(info: dict[str, Any]) -> str:
    if "redis_version" in info:
        return str(info["redis_version"])
    first = next(iter(info.values()), {})  # one answer per node
    return str(first.get("redis_version", "?")) if isinstance(first, dict) else "?"


async def _layouts(client: Any, expected: int) -> tuple[Counter[int], list[str], bool]:
    counts: Counter[int] = Counter()
    others: list[str] = []
    cursor: str | None = None
    seen = 0
    while True:
        page = await scan_runs(client, cursor, 1000)
        found = await asyncio.gather(
            *(client.hget(run_keys(run_id)[0], "layout") for run_id in page.run_ids)
        )
        for run_id, stored in zip(page.run_ids, found, strict=True):
            layout = int(stored or 1)  # layout 1 did not record itself
            counts[layout] += 1
            if layout != expected and len(others) < 20:
                others.append(run_id)
        seen += len(page.run_ids)
        cursor = page.next_cursor
        if cursor is None:
            return counts, others, True
        if seen >= LAYOUT_SCAN_LIMIT:
            return counts, others, False


async def diagnose(client: Any, expected_layout: int) -> StoreDiagnosis:
    """Ask Redis (every primary of a Cluster where it matters); loads missing scripts."""
    start = time.perf_counter()
    await client.ping()
    round_trip = time.perf_counter() - start
    seconds, micros = await client.time()
    sources = {name: script_source(name) for name in SCRIPT_NAMES}
    shas = [client.register_script(src).sha for src in sources.values()]
    exists = await client.script_exists(*shas)
    missing = [name for name, ok in zip(SCRIPT_NAMES, exists, strict=True) if not ok]
    for name in missing:
        await client.script_load(sources[name])
    exists = await client.script_exists(*shas)
    still = [name for name, ok in zip(SCRIPT_NAMES, exists, strict=True) if not ok]
    counts, others, complete = await _layouts(client, expected_layout)
    return StoreDiagnosis(
        redis_version=_server_version(await client.info("server")),
        cluster=isinstance(client, RedisCluster),
        round_trip_s=round_trip,
        redis_time=seconds + micros / 1e6,
        scripts_missing=still,
        scripts_loaded_now=[name for name in missing if name not in still],
        layouts=dict(counts),
        other_layout_runs=others,
        layouts_complete=complete,
    )
