"""An import is all or nothing: a snapshot the run cannot take is a 4xx, and not one byte of
the run's keys changes (Redis does not roll a Lua script back, so every check runs before
the first write)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import numpy as np
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.errors import InvalidInput
from service.store.keys import run_keys
from service.store.redis_store import RedisStore
from tests.conftest import create_run

DISTS = ["a", "b", "c"]
Path = tuple[str | int, ...]


def _dump(client: redis.Redis, run_id: str) -> dict[str, bytes | None]:
    """``DUMP`` of every key of the run: its named keys and any other key under its tag."""
    keys = set(run_keys(run_id))
    keys |= {k.decode() for k in client.scan_iter(match=f"rc:{{{run_id}}}:*", count=1000)}
    return {key: client.dump(key) for key in sorted(keys)}


def _report(http: httpx.Client, url: str, run: str, headers: dict[str, str], rid: str) -> str:
    body = {"report_id": rid, "step": 0, "advantages": {"a": [0.5, -1.0], "b": [0.25]}}
    reply = http.post(
        f"{url}/v1/runs/{run}/reports",
        json={**body, "rewards": body["advantages"]},
        headers=headers,
    )
    assert reply.status_code == 200, reply.text
    status: str = reply.json()["status"]
    return status


@pytest.fixture(params=["dump-ucb", "dump-ducb"])
def reported_run(
    request: pytest.FixtureRequest,
    http: httpx.Client,
    start_service: Callable[..., str],
    redis_url: str,
) -> Iterator[tuple[str, str, dict[str, str], dict[str, Any], redis.Redis]]:
    """A run (stateless, or with a strategy state) that had reports and planned a step, its
    export, and a Redis client."""
    url = start_service()
    run, headers = create_run(http, url, DISTS, strategy={"name": request.param, "window": 4})
    for i in range(4):
        assert _report(http, url, run, headers, f"r{i}") == "applied"
    plan = http.post(
        f"{url}/v1/runs/{run}/plan", json={"step": 4, "batch_size": 8}, headers=headers
    )
    assert plan.status_code == 200
    snapshot = http.get(f"{url}/v1/runs/{run}/export", headers=headers).json()
    assert len(snapshot["report_ids"]) == 4 and len(snapshot["history"]) >= 1
    client = redis.Redis.from_url(redis_url)
    yield url, run, headers, snapshot, client
    client.close()


# -- corrupting a snapshot field by field ------------------------------------------------

NESTED = {"a": {"b": [1, {"c": None}]}}
NOT_A_NUMBER: list[Any] = [
    "1",
    "NaN",
    "nan",
    "Infinity",
    "-inf",
    "1e400",
    True,
    None,
    [],
    [1],
    {},
    NESTED,
    10**400,
    -(10**400),
    -1e301,
]
NOT_AN_INTEGER: list[Any] = [0.5, 2**53 + 1, -1]
NOT_A_STRING: list[Any] = [1, 1.5, True, None, [], ["a"], {}, NESTED]
BAD_REPORT_IDS = ["", "has space", "x" * 201, "tab\tx", "caf\u00e9", "nul\u0000", "\u2603"]
NOT_A_LIST: list[Any] = ["[]", 0, None, True, {}, NESTED]
NOT_AN_OBJECT: list[Any] = ["{}", 0, None, True, [], [NESTED]]


def _paths(value: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Every place inside ``value`` (the root left out) with what it holds."""
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        yield (*path, key), item
        if isinstance(item, dict | list):
            yield from _paths(item, (*path, key))


def _bad_values(path: Path, value: Any) -> list[Any]:
    """Values that no snapshot may hold at ``path``, where a valid one holds ``value``."""
    if isinstance(value, bool):
        return NOT_A_NUMBER
    if isinstance(value, int | float):
        return NOT_A_NUMBER + (NOT_AN_INTEGER if isinstance(value, int) else [])
    if isinstance(value, str):
        is_report_id = len(path) == 3 and path[0] == "report_ids" and path[2] == 0
        return NOT_A_STRING + (BAD_REPORT_IDS if is_report_id else [])
    if isinstance(value, list):
        wrong_lengths: list[Any] = []
        if path[0] == "report_ids" and len(path) == 2:  # an (id, version) pair
            wrong_lengths = [value[:1], [*value, 1], []]
        if path[0] == "history" and path[-1] in ("weights", "window_mean"):
            wrong_lengths = [value[:-1], [*value, 0.0]]
        if path == ("strategy_state",):
            wrong_lengths = [[*value, 0.0]]
        return NOT_A_LIST + wrong_lengths
    return [*NOT_AN_OBJECT, {**value, "bogus": NESTED}]


def _replaced(snapshot: dict[str, Any], path: Path, new: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(snapshot))
    place = out
    for key in path[:-1]:
        place = place[key]
    place[path[-1]] = new
    return out


@st.composite
def corrupted(draw: st.DrawFn, snapshot: dict[str, Any]) -> tuple[Path, Any, dict[str, Any]]:
    path, value = draw(st.sampled_from(list(_paths(snapshot))))
    new = draw(st.sampled_from(_bad_values(path, value)))
    return path, new, _replaced(snapshot, path, new)


def _put(http: httpx.Client, url: str, run: str, headers: dict[str, str], body: Any) -> Any:
    # json.dumps writes 10**400 as the integer it is (and a float beyond range never arises)
    return http.put(
        f"{url}/v1/runs/{run}/import",
        content=json.dumps(body),
        headers={**headers, "content-type": "application/json"},
    )


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_a_corrupted_snapshot_is_refused_and_changes_no_byte(
    data: st.DataObject,
    http: httpx.Client,
    reported_run: tuple[str, str, dict[str, str], dict[str, Any], redis.Redis],
) -> None:
    url, run, headers, snapshot, client = reported_run
    path, new, bad = data.draw(corrupted(snapshot), label="corruption")
    before = _dump(client, run)
    reply = _put(http, url, run, headers, bad)
    assert 400 <= reply.status_code < 500, (path, repr(new)[:80], reply.status_code, reply.text)
    assert reply.json()["error"]["code"] in {"invalid_input", "conflict"}, reply.text
    assert _dump(client, run) == before, (path, repr(new)[:80])


def test_after_a_refused_import_an_applied_report_is_still_a_duplicate(
    http: httpx.Client,
    reported_run: tuple[str, str, dict[str, str], dict[str, Any], redis.Redis],
) -> None:
    url, run, headers, snapshot, _ = reported_run
    too_big = _replaced(snapshot, ("report_ids", 0, 1), 10**400)
    reply = _put(http, url, run, headers, too_big)
    assert reply.status_code == 422, reply.text
    assert "report_ids.0.1" in reply.json()["error"]["message"]
    not_a_string = _replaced(snapshot, ("report_ids", 1, 0), {"id": "r1"})
    assert _put(http, url, run, headers, not_a_string).status_code == 422
    assert _report(http, url, run, headers, "r0") == "duplicate"
    assert _report(http, url, run, headers, "r3") == "duplicate"
    after = http.get(f"{url}/v1/runs/{run}", headers=headers).json()
    assert after["version"] == 4 and after["stats"]["a"]["n"] == 8


@pytest.mark.parametrize("report_id", ["", "has space", "x" * 201, "caf\u00e9", "x" * 200, "~!"])
def test_a_snapshot_takes_the_report_ids_a_report_takes(
    http: httpx.Client, service_url: str, report_id: str
) -> None:
    """One rule for a report's id and a snapshot's remembered ids."""
    run, headers = create_run(http, service_url, DISTS)
    report = http.post(
        f"{service_url}/v1/runs/{run}/reports",
        headers=headers,
        json={"report_id": report_id, "step": 0, "advantages": {"a": [1.0]}},
    )
    snapshot = http.get(f"{service_url}/v1/runs/{run}/export", headers=headers).json()
    imported = _put(http, service_url, run, headers, {**snapshot, "report_ids": [[report_id, 1]]})
    assert report.status_code == imported.status_code, (report.text, imported.text)
    assert report.status_code in (200, 422)
    assert (report.status_code == 200) == (
        0 < len(report_id) <= 200 and report_id.isascii() and " " not in report_id
    )


def test_the_import_script_checks_every_argument_before_its_first_write(
    http: httpx.Client, service_url: str, redis_url: str
) -> None:
    """What the service would never send, sent straight to the script: refused, nothing
    changed; the same call with the fault removed is applied."""
    run, headers = create_run(http, service_url, DISTS, strategy={"name": "dump-ucb", "window": 4})
    _report(http, service_url, run, headers, "r0")
    k = len(DISTS)
    valid: dict[str, Any] = {
        "n": np.zeros(k),
        "window_mean": np.zeros(k),
        "rewards": np.zeros((k, 4)),
        "weights": np.full(k, 1 / k),
        "window": 4,
        "windows": {},
        "report_ids": [("r0", 1)],
        "history": [b"\0" * (16 + 8 * k)],
        "state": np.zeros(0),
    }
    faults: list[dict[str, Any]] = [
        {"report_ids": [("r0", 10**400)]},
        {"report_ids": [("r0", 1), ("r1", -1)]},
        {"report_ids": [("r0", 1.5)]},
        {"report_ids": [("r0", "nan")]},
        {"report_ids": [("r0", "inf")]},
        {"history": [b"\0" * 8]},
        {"weights": np.full(k + 1, 1 / k)},
        {"n": np.zeros(k - 1), "window_mean": np.zeros(k - 1)},
        {"rewards": np.zeros((k, 3))},
    ]
    client = redis.Redis.from_url(redis_url)
    try:
        before = _dump(client, run)

        async def attempts() -> int:
            store = RedisStore.from_url(redis_url)
            try:
                meta = await store.load_meta(run)
                for fault in faults:
                    with pytest.raises(InvalidInput, match="the snapshot"):
                        await store.import_(run, meta.incarnation, **{**valid, **fault})
                    assert _dump(client, run) == before, fault
                return await store.import_(run, meta.incarnation, **valid)
            finally:
                await store.close()

        assert asyncio.run(attempts()) == 2
        assert _dump(client, run) != before
    finally:
        client.close()
