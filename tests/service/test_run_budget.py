"""A run's memory budget: no sequence of calls with its token makes Redis keep more of it
than ``CURRICULUM_RUN_MEMORY_BUDGET_BYTES``."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import redis

from curriculum_core import STRATEGIES, initial_state, strategy_from_dict
from service.budget import run_footprint
from service.run_cache import config_json
from service.settings import Settings
from service.store.keys import plan_field, run_keys
from tests.conftest import create_run
from tests.conftest import post_plan as _plan

LONG = 256
"""The longest distribution name the API takes."""


def _names(k: int) -> list[str]:
    return [f"{i:06d}".ljust(LONG, "x") for i in range(k)]


def _run_bytes(client: redis.Redis, run_id: str) -> int:
    """What Redis reports it spends on every key of the run (``MEMORY USAGE``, all of it)."""
    return sum(client.memory_usage(key, samples=0) or 0 for key in run_keys(run_id))


def test_many_batch_sizes_of_one_step_stay_under_the_budget(
    http: httpx.Client, start_service: Callable[..., str], redis_url: str
) -> None:
    """Plans of one step for batch sizes near 65,536, on a run of long names (a plan used to
    keep every slot's name: 17 MiB each): Redis keeps the run under its budget, and the plan
    that would pass it is a 413 that names the setting and stores nothing."""
    budget = 32 * 2**20
    url = start_service(run_memory_budget_bytes=budget, plans_max_bytes=64 * 1024)
    client = redis.Redis.from_url(redis_url)
    run, headers = create_run(http, url, _names(2000))
    refused = None
    for batch in range(65_536, 65_536 - 12, -1):
        reply = _plan(http, url, run, headers, 0, batch)
        if reply.status_code != 200:
            refused = reply
            break
        assert len(reply.json()["assignment"]) == batch
    assert _run_bytes(client, run) < budget
    assert refused is not None, "twelve plans of 2,000 counts passed a 64 KiB budget"
    assert refused.status_code == 413, refused.text
    error = refused.json()["error"]
    assert error["code"] == "run_budget_exceeded"
    assert "CURRICULUM_PLANS_MAX_BYTES" in error["message"]
    assert "CURRICULUM_RUN_MEMORY_BUDGET_BYTES" in error["message"]
    kept = client.hlen(run_keys(run)[5])
    assert 2 <= kept < 12
    # the refused plan stored nothing, and the kept ones are still served
    assert _plan(http, url, run, headers, 0, batch).status_code == 413
    assert client.hlen(run_keys(run)[5]) == kept
    assert _plan(http, url, run, headers, 0, 65_536).status_code == 200


def test_the_oldest_steps_give_way_and_are_never_drawn_again(
    http: httpx.Client, start_service: Callable[..., str], redis_url: str
) -> None:
    """Plans of 2,000 counts, 64 KiB for plans: each new step drops the oldest ones, and a
    dropped step answers 410 (redrawing it could give the ranks two different batches)."""
    url = start_service(plans_max_bytes=64 * 1024)
    client = redis.Redis.from_url(redis_url)
    run, headers = create_run(http, url, _names(2000))
    first = [_plan(http, url, run, headers, step, 20_000) for step in range(8)]
    assert all(r.status_code == 200 for r in first)
    plans_bytes = sum(
        client.hstrlen(run_keys(run)[5], field) for field in client.hkeys(run_keys(run)[5])
    )
    assert plans_bytes < 64 * 1024
    gone = _plan(http, url, run, headers, 0, 20_000)
    assert gone.status_code == 410, gone.text
    assert "CURRICULUM_PLANS_MAX_BYTES" in gone.json()["error"]["message"]
    assert _plan(http, url, run, headers, 7, 20_000).json() == first[7].json()


def test_a_run_whose_bounds_pass_the_budget_is_refused_before_any_write(
    http: httpx.Client, service_url: str, redis_url: str
) -> None:
    """20,000 distributions with windows of 1,000 would keep 80 MB of windows alone: 413,
    the setting named, no key written."""
    client = redis.Redis.from_url(redis_url)
    reply = http.post(
        f"{service_url}/v1/runs",
        json={
            "run_id": "big",
            "distributions": [f"d{i}" for i in range(20_000)],
            "strategy": {"name": "dump-ucb", "window": 1000},
        },
    )
    assert reply.status_code == 413, reply.text[:300]
    error = reply.json()["error"]
    assert error["code"] == "run_budget_exceeded"
    assert "CURRICULUM_RUN_MEMORY_BUDGET_BYTES" in error["message"]
    assert error["details"]["parts"]["windows"] > 80_000_000
    assert client.dbsize() == 0


def test_the_largest_run_the_defaults_allow_fits_the_default_budget(
    http: httpx.Client, service_url: str, redis_url: str
) -> None:
    """The most distributions, the longest names and the default window fit the default
    budget with every strategy; created for real, Redis keeps less than the bound of its
    fixed parts."""
    settings = Settings(_env_file=None)
    names = _names(settings.max_distributions)
    for name in STRATEGIES:
        strategy = strategy_from_dict({"name": name})
        state = initial_state(strategy, len(names))
        config = config_json(names, strategy, 0, "2026-12-03T00:00:00+00:00")
        footprint = run_footprint(
            settings,
            k=len(names),
            window=strategy.window,
            config_bytes=len(config.encode()),
            state_bytes=8 * state.size,
            stateful=strategy.stateful,
        )
        assert footprint.total <= settings.run_memory_budget_bytes, (name, footprint.parts)
    run, _ = create_run(http, service_url, names, run_id="largest")
    fixed = run_footprint(
        settings,
        k=len(names),
        window=300,
        config_bytes=len(json.dumps(names)) + 200,
        state_bytes=0,
        stateful=False,
    ).parts
    client = redis.Redis.from_url(redis_url)
    bound = fixed["windows"] + fixed["statistics"] + fixed["config and weights"]
    assert 24_000_000 < _run_bytes(client, run) <= bound


def test_a_rank_past_the_limit_is_refused_and_changes_nothing(
    http: httpx.Client, start_service: Callable[..., str]
) -> None:
    """Each rank's last report is kept: a rank at CURRICULUM_MAX_RANKS or above is a 422."""
    url = start_service(max_ranks=4)
    run, headers = create_run(http, url, ["a", "b"])
    body = {"report_id": "r", "step": 0, "advantages": {"a": [1.0]}}
    refused = http.post(f"{url}/v1/runs/{run}/reports", json={**body, "rank": 4}, headers=headers)
    assert refused.status_code == 422, refused.text
    assert "CURRICULUM_MAX_RANKS" in refused.json()["error"]["message"]
    assert http.get(f"{url}/v1/runs/{run}", headers=headers).json()["version"] == 0
    applied = http.post(f"{url}/v1/runs/{run}/reports", json={**body, "rank": 3}, headers=headers)
    assert applied.json()["status"] == "applied"
    schema = http.get(f"{url}/openapi.json").json()["components"]["schemas"]
    rank = schema["ReportRequest"]["properties"]["rank"]["anyOf"][0]
    assert (rank["minimum"], rank["maximum"]) == (0, 3)


def test_a_plan_kept_as_json_by_an_earlier_version_is_served_as_it_is(
    http: httpx.Client, service_url: str, redis_url: str
) -> None:
    """Plans used to be kept as their answer's JSON: one left in Redis is still its step's
    answer, byte for byte."""
    run, headers = create_run(http, service_url, ["a", "b"])
    client = redis.Redis.from_url(redis_url)
    incarnation = client.hget(run_keys(run)[0], "incarnation").decode()
    old = json.dumps(
        {
            "run_id": run,
            "step": 3,
            "batch_size": 2,
            "version": 0,
            "counts": {"b": 2},
            "assignment": ["b", "b"],
        }
    ).encode()
    client.hset(run_keys(run)[5], plan_field(incarnation, 3, 2), old)
    assert _plan(http, service_url, run, headers, 3, 2).content == old
