"""Listing runs without an index: ``SCAN`` over every run's ``meta`` key, page by page.

A page's cursor names the node (a Cluster's primaries in name order; one node otherwise),
that node's ``SCAN`` cursor, and the last run id already returned from the batch that
cursor yields. ``SCAN`` returns a batch whole, so a page that ends inside a batch scans the
same batch again next time and skips the ids up to that one (a batch is sorted by id). As
``SCAN`` promises: a run that exists throughout the listing is listed; one created or
deleted meanwhile may or may not be; a run may be listed twice only if Redis resized its
table in between.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from redis.asyncio.cluster import RedisCluster

from service.store.keys import META_PATTERN, RUN_KEY_NAMES, run_id_of_meta_key

CURSOR_PATTERN = r"^[0-9]{1,4}:[0-9]{1,19}:([A-Za-z0-9][A-Za-z0-9._-]{0,127})?$"
"""``{node}:{scan cursor}:{last run id returned from that batch, or nothing}``. Every cursor
of this form is served (19 digits stay below 2**64, the largest ``SCAN`` cursor; a node past
the last one, as after a Cluster lost primaries, ends the listing)."""

_CURSOR_RE = re.compile(CURSOR_PATTERN)

MAX_SCANS_PER_PAGE = 64
"""``SCAN`` calls one page may make; a sparse keyspace then gives a short page (with a
cursor to go on), never a long request."""


class BadCursor(ValueError):
    """A cursor not of the listing's form."""


@dataclass(frozen=True)
class Cursor:
    node: int
    scan: int
    after: str | None

    @classmethod
    def parse(cls, text: str | None) -> Cursor:
        if text is None:
            return cls(0, 0, None)
        if not _CURSOR_RE.match(text):
            raise BadCursor(text)
        node, scan, after = text.split(":")
        return cls(int(node), int(scan), after or None)

    def __str__(self) -> str:
        return f"{self.node}:{self.scan}:{self.after or ''}"


@dataclass(frozen=True)
class RunPage:
    """Run ids of one page, and the cursor of the next (``None``: the listing is done)."""

    run_ids: list[str]
    next_cursor: str | None


def _nodes(client: Any) -> list[Any]:
    if isinstance(client, RedisCluster):
        return sorted(client.get_primaries(), key=lambda node: node.name)
    return [None]


async def _scan(client: Any, node: Any, cursor: int, count: int) -> tuple[int, list[Any]]:
    if node is None:
        found: tuple[int, list[Any]] = await client.scan(
            cursor, match=META_PATTERN, count=count, _type="hash"
        )
        return found
    # the cluster client answers {node name: cursor}, keys for a command sent to one node
    args = ("SCAN", cursor, "MATCH", META_PATTERN, "COUNT", count, "TYPE", "hash")
    cursors, keys = await client.execute_command(*args, target_nodes=node)
    return int(next(iter(cursors.values()))), keys


def _ids(keys: list[Any]) -> list[str]:
    names = (k.decode("utf-8", "replace") if isinstance(k, bytes) else str(k) for k in keys)
    return sorted({run_id for run_id in map(run_id_of_meta_key, names) if run_id is not None})


async def scan_runs(client: Any, cursor: str | None, limit: int) -> RunPage:
    """At most ``limit`` run ids from ``cursor`` on (see the module doc)."""
    at = Cursor.parse(cursor)
    nodes = _nodes(client)
    if at.node >= len(nodes):
        return RunPage([], None)
    count = max(100, limit * len(RUN_KEY_NAMES))
    out: list[str] = []
    for _ in range(MAX_SCANS_PER_PAGE):
        following, keys = await _scan(client, nodes[at.node], at.scan, count)
        ids = [i for i in _ids(keys) if at.after is None or i > at.after]
        taken = ids[: limit - len(out)]
        out += taken
        if len(taken) < len(ids):  # the page ends inside this batch
            return RunPage(out, str(Cursor(at.node, at.scan, taken[-1])))
        if following != 0:
            at = Cursor(at.node, following, None)
        elif at.node + 1 < len(nodes):
            at = Cursor(at.node + 1, 0, None)
        else:
            return RunPage(out, None)
        if len(out) == limit:
            break
    return RunPage(out, str(at))
