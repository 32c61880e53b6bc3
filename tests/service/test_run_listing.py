"""The operator's listing of runs (``GET /v1/runs``) and what ``GET /v1/runs/{run}`` shows
of a run's activity: each rank's last report, the last step each distribution was sampled,
the exploration bonus and the starved and saturated flags."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import httpx
import pytest
from pydantic import SecretStr

OPERATOR = {"Authorization": "Bearer op-secret"}
DISTS = ["easy", "medium", "hard"]


@pytest.fixture
def operator_url(start_service: Callable[..., str]) -> str:
    """A service whose operator token is ``op-secret``."""
    return start_service(admin_token=SecretStr("op-secret"))


def _create(http: httpx.Client, url: str, run_id: str, **body: object) -> dict[str, str]:
    reply = http.post(
        f"{url}/v1/runs", json={"run_id": run_id, "distributions": DISTS, **body}, headers=OPERATOR
    )
    assert reply.status_code == 201, reply.text
    return {"Authorization": f"Bearer {reply.json()['token']}"}


def _all_pages(http: httpx.Client, url: str, limit: int) -> list[list[dict]]:
    pages, cursor = [], None
    while True:
        params: dict[str, object] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        reply = http.get(f"{url}/v1/runs", params=params, headers=OPERATOR)
        assert reply.status_code == 200, reply.text
        pages.append(reply.json()["runs"])
        cursor = reply.json()["next_cursor"]
        if cursor is None:
            return pages


def test_the_operator_pages_through_every_run_once(http: httpx.Client, operator_url: str) -> None:
    """23 runs in pages of at most 5: each listed exactly once, with its summary; a deleted
    run is not listed."""
    ids = [f"run-{i:02d}" for i in range(23)]
    for run_id in ids:
        _create(
            http, operator_url, run_id, strategy="uniform" if run_id == "run-07" else "dump-ucb"
        )
    http.post(
        f"{operator_url}/v1/runs/run-03/reports",
        json={"report_id": "r", "step": 0, "advantages": {"hard": [1.0, -1.0]}},
        headers=OPERATOR,
    )
    assert http.delete(f"{operator_url}/v1/runs/run-11", headers=OPERATOR).status_code == 200
    pages = _all_pages(http, operator_url, limit=5)
    assert all(len(page) <= 5 for page in pages)
    listed = [run["run_id"] for page in pages for run in page]
    assert sorted(listed) == sorted(set(ids) - {"run-11"})  # each once
    by_id = {run["run_id"]: run for page in pages for run in page}
    assert by_id["run-07"]["strategy"] == "uniform"
    assert by_id["run-03"]["strategy"] == "dump-ucb"
    assert by_id["run-03"]["distributions"] == 3 and by_id["run-03"]["layout"] == 2
    assert by_id["run-03"]["version"] == 1
    assert by_id["run-03"]["reported_at"] == pytest.approx(time.time(), abs=30)
    assert by_id["run-04"]["version"] == 0 and by_id["run-04"]["reported_at"] is None
    # one large page holds them all
    assert len(_all_pages(http, operator_url, limit=1000)[0]) == 22


def test_an_empty_deployment_lists_nothing(http: httpx.Client, operator_url: str) -> None:
    reply = http.get(f"{operator_url}/v1/runs", headers=OPERATOR)
    assert reply.status_code == 200
    assert reply.json()["runs"] == [] and reply.json()["next_cursor"] is None


def test_only_the_operator_lists_runs(
    http: httpx.Client, operator_url: str, start_service: Callable[..., str]
) -> None:
    run_headers = _create(http, operator_url, "mine")
    assert http.get(f"{operator_url}/v1/runs").status_code == 401
    refused = http.get(f"{operator_url}/v1/runs", headers=run_headers)
    assert refused.status_code == 403
    assert "operator token" in refused.json()["error"]["message"]
    open_url = start_service()  # no ADMIN_TOKEN: nobody lists
    refused = http.get(f"{open_url}/v1/runs", headers=run_headers)
    assert refused.status_code == 403 and "ADMIN_TOKEN" in refused.json()["error"]["message"]


@pytest.mark.parametrize(
    ("cursor", "limit"),
    [("bogus", 10), ("0:0", 10), ("0:99999999999999999999:", 10), (None, 0),
     (None, 1001), ("0:0:{x}", 10)],
)  # fmt: skip
def test_bad_cursor_or_limit_is_a_422(
    http: httpx.Client, operator_url: str, cursor: str | None, limit: int
) -> None:
    params: dict[str, object] = {"limit": limit}
    if cursor is not None:
        params["cursor"] = cursor
    reply = http.get(f"{operator_url}/v1/runs", params=params, headers=OPERATOR)
    assert reply.status_code == 422, reply.text
    assert reply.json()["error"]["code"] == "invalid_input"


def test_every_cursor_of_the_form_is_served(http: httpx.Client, operator_url: str) -> None:
    """The schema's cursor pattern is exact: a node past the last ends the listing, and any
    SCAN position (below 2**64) is one Redis accepts."""
    _create(http, operator_url, "a")
    for cursor in ("7:0:", "0:9999999999999999999:", "0:0:zz"):
        reply = http.get(f"{operator_url}/v1/runs", params={"cursor": cursor}, headers=OPERATOR)
        assert reply.status_code == 200, (cursor, reply.text)
    done = http.get(f"{operator_url}/v1/runs", params={"cursor": "7:0:"}, headers=OPERATOR)
    assert done.json()["runs"] == [] and done.json()["next_cursor"] is None
    after = http.get(f"{operator_url}/v1/runs", params={"cursor": "0:0:zz"}, headers=OPERATOR)
    assert [r["run_id"] for r in after.json()["runs"]] == []  # only ids after "zz" in batch 0


def _report(
    http: httpx.Client, url: str, run_id: str, rid: str, step: int, rank: int | None, adv: dict
) -> None:
    body: dict[str, object] = {"report_id": rid, "step": step, "advantages": adv}
    if rank is not None:
        body["rank"] = rank
    reply = http.post(f"{url}/v1/runs/{run_id}/reports", json=body, headers=OPERATOR)
    assert reply.status_code == 200, reply.text


def test_a_run_shows_each_ranks_last_report_and_each_distributions_last_step(
    http: httpx.Client, operator_url: str
) -> None:
    _create(http, operator_url, "kk", strategy={"name": "dump-ucb", "c": 0.5, "window": 20})
    before = time.time()
    _report(http, operator_url, "kk", "s0-r0", 0, 0, {"easy": [1.0, -1.0], "hard": [0.0] * 16})
    _report(http, operator_url, "kk", "s0-r1", 0, 1, {"medium": [0.5]})
    _report(http, operator_url, "kk", "s2-r0", 2, 0, {"easy": [0.25]})
    _report(http, operator_url, "kk", "s1-r1", 1, 1, {"easy": [0.25]})  # late: the last wins
    _report(http, operator_url, "kk", "s5", 5, None, {"hard": [0.0]})
    _report(http, operator_url, "kk", "s2-r0", 2, 0, {"easy": [9.0]})  # duplicate: no trace
    info = http.get(f"{operator_url}/v1/runs/kk", headers=OPERATOR).json()
    activity = info["activity"]
    assert [(r["rank"], r["step"], r["version"]) for r in activity["reporters"]] == [
        (0, 2, 3), (1, 1, 4), (None, 5, 5),
    ]  # fmt: skip
    assert all(before - 1 <= r["at"] <= time.time() for r in activity["reporters"])
    assert activity["last_step"] == {"easy": 1, "medium": 0, "hard": 5}
    stats = info["stats"]
    n = {"easy": 4, "medium": 1, "hard": 17}
    for name, s in stats.items():
        bonus = 0.5 * math.sqrt(2 * math.log(22 + 1) / (n[name] + 1))
        assert s["exploration_bonus"] == pytest.approx(bonus)
        assert s["score"] == pytest.approx(s["window_mean"] + bonus)
    # hard: 17 samples, all |A| = 0: no signal left, and the softmax all but drops it
    assert stats["hard"]["saturated"] and not stats["easy"]["saturated"]
    assert not stats["medium"]["saturated"]  # one sample is too few to tell
    assert [stats[d]["starved"] for d in DISTS] == [stats[d]["weight"] < 0.1 / 3 for d in DISTS]
    assert stats["hard"]["starved"]


def test_an_import_starts_the_activity_afresh(http: httpx.Client, operator_url: str) -> None:
    _create(http, operator_url, "kk")
    _report(http, operator_url, "kk", "a", 3, 0, {"easy": [1.0]})
    snapshot = http.get(f"{operator_url}/v1/runs/kk/export", headers=OPERATOR).json()
    assert "last_step" not in str(snapshot)
    http.put(f"{operator_url}/v1/runs/kk/import", json=snapshot, headers=OPERATOR)
    activity = http.get(f"{operator_url}/v1/runs/kk", headers=OPERATOR).json()["activity"]
    assert activity["reporters"] == [] and activity["last_step"] == {}


def test_a_page_of_200_runs_reads_them_over_few_connections(
    http: httpx.Client, start_service: Callable[..., str]
) -> None:
    """220 runs, listed 200 to a page, by a service allowed only 4 connections to Redis:
    the page's summaries are read in one pipeline, so the pool is never exhausted."""
    url = start_service(admin_token=SecretStr("op-secret"), redis_max_connections=4)
    ids = {f"run-{i:03d}" for i in range(220)}
    for run_id in sorted(ids):
        _create(http, url, run_id)
    pages = _all_pages(http, url, limit=200)
    assert [len(page) for page in pages][:1] == [200]
    assert {run["run_id"] for page in pages for run in page} == ids
    assert {run["distributions"] for page in pages for run in page} == {3}
