"""``GET /v1/runs/{run}`` answers a page of the run's distributions at a time, so the largest
run's answer stays small; the clients page through it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from tests.conftest import create_run
from trainer_client import CurriculumClient
from trainer_client.operator import OperatorClient

PER_DISTRIBUTION = ("weights", "stats")


def _report_some(http: httpx.Client, url: str, run: str, headers: dict, names: list[str]) -> None:
    """Samples on every seventh distribution, so the pages differ in what they show."""
    advantages = {name: [0.1 + (i % 5) / 10] for i, name in enumerate(names) if i % 7 == 0}
    rewards = {name: [float(len(name) % 3)] for name in advantages}
    body = {"report_id": "r0", "step": 3, "advantages": advantages, "rewards": rewards}
    reply = http.post(f"{url}/v1/runs/{run}/reports", json=body, headers=headers)
    assert reply.status_code == 200, reply.text


def _get(http: httpx.Client, url: str, run: str, headers: dict, **params: Any) -> dict:
    reply = http.get(f"{url}/v1/runs/{run}", params=params, headers=headers)
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_pages_cover_every_distribution_once_in_order(
    start_service: Callable[..., str], http: httpx.Client
) -> None:
    """Pages of 700 of a 2,500-distribution run: every distribution once, in the run's order,
    with the values of one page that holds them all; the clients join the same answer."""
    url = start_service(admin_token=SecretStr("op-token"))
    op = {"Authorization": "Bearer op-token"}
    names = [f"d{i:05d}" for i in range(2500)]
    body = {"distributions": names, "strategy": {"name": "dump-ucb"}}
    created = http.post(f"{url}/v1/runs", json=body, headers=op).json()
    run, token = created["run_id"], created["token"]
    headers = {"Authorization": f"Bearer {token}"}
    _report_some(http, url, run, headers, names)
    whole = _get(http, url, run, headers, limit=2500)
    assert (whole["offset"], whole["total"], whole["next_offset"]) == (0, 2500, None)

    seen: list[str] = []
    offset: int | None = 0
    pages = 0
    while offset is not None:
        page = _get(http, url, run, headers, offset=offset, limit=700)
        assert (page["offset"], page["total"]) == (offset, 2500)
        assert list(page["weights"]) == list(page["stats"]) == page["config"]["distributions"]
        assert len(page["stats"]) == min(700, 2500 - offset)
        for part in PER_DISTRIBUTION:
            assert page[part] == {name: whole[part][name] for name in page[part]}
        assert page["activity"]["last_step"] == {
            n: s for n, s in whole["activity"]["last_step"].items() if n in page["stats"]
        }
        seen += page["config"]["distributions"]
        offset = page["next_offset"]
        pages += 1
    assert pages == 4
    assert seen == names  # each once, in order
    assert sum(whole["weights"].values()) == pytest.approx(1.0)
    assert len(whole["activity"]["last_step"]) == len(range(0, 2500, 7))

    # default pages of 1,000: the clients' joined answer is the one-page answer
    with CurriculumClient(url, run, token) as client:
        assert client.run_info() == whole
    operator = OperatorClient(url, "op-token")
    try:
        assert operator.run(run) == whole
    finally:
        operator.close()


def test_a_small_run_answers_as_before_plus_the_page_fields(
    service_url: str, http: httpx.Client
) -> None:
    """Under the default limit, one page holds the whole run."""
    run, headers = create_run(http, service_url, ["a", "b", "c"])
    info = _get(http, service_url, run, headers)
    assert set(info) == {
        "run_id", "version", "config", "weights", "stats", "activity",
        "offset", "total", "next_offset",
    }  # fmt: skip
    assert (info["offset"], info["total"], info["next_offset"]) == (0, 3, None)
    assert info["config"]["distributions"] == ["a", "b", "c"]
    assert list(info["stats"]) == ["a", "b", "c"]


def test_the_page_limits_are_settings(
    start_service: Callable[..., str], http: httpx.Client
) -> None:
    """``CURRICULUM_RUN_PAGE_LIMIT`` is the page without a limit; a limit over
    ``CURRICULUM_RUN_PAGE_MAX_LIMIT`` is a 422 (an offset past the run, an empty last page);
    the schema says so."""
    url = start_service(run_page_limit=2, run_page_max_limit=3)
    run, headers = create_run(http, url, ["a", "b", "c", "d", "e"])
    first = _get(http, url, run, headers)
    assert (list(first["stats"]), first["next_offset"]) == (["a", "b"], 2)
    last = _get(http, url, run, headers, offset=3, limit=3)
    assert (list(last["weights"]), last["next_offset"]) == (["d", "e"], None)
    over = http.get(f"{url}/v1/runs/{run}", params={"limit": 4}, headers=headers)
    assert over.status_code == 422, over.text
    assert "(3)" in over.json()["error"]["message"]
    past = _get(http, url, run, headers, offset=9)
    assert (past["offset"], past["total"], past["next_offset"]) == (5, 5, None)
    assert past["stats"] == past["weights"] == {} and past["config"]["distributions"] == []
    for bad in ({"offset": -1}, {"limit": 0}, {"limit": "x"}):
        assert http.get(f"{url}/v1/runs/{run}", params=bad, headers=headers).status_code == 422
    schema = http.get(f"{url}/openapi.json").json()
    params = {
        p["name"]: p["schema"] for p in schema["paths"]["/v1/runs/{run_id}"]["get"]["parameters"]
    }
    assert params["limit"]["anyOf"][0] == {"type": "integer", "minimum": 1, "maximum": 3}
    assert params["limit"]["default"] == 2
    assert params["offset"]["minimum"] == 0


def test_the_largest_runs_first_page_is_bounded(service_url: str, http: httpx.Client) -> None:
    """20,000 distributions of 256-character names (the answer was 18.5 MiB): the first page
    holds 1,000 of them, in under 1.5 MiB."""
    names = [f"{i:06d}".ljust(256, "x") for i in range(20_000)]
    run, headers = create_run(http, service_url, names)
    reply = http.get(f"{service_url}/v1/runs/{run}", headers=headers)
    assert reply.status_code == 200
    assert len(reply.content) < 1.5 * 2**20, len(reply.content)
    page = reply.json()
    assert (page["total"], page["next_offset"], len(page["stats"])) == (20_000, 1000, 1000)
    assert page["config"]["distributions"] == names[:1000]
