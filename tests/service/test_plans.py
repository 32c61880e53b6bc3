"""Plans: fixed per step for every caller, drawn from the weights, kept for a bounded time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pytest
import redis

from curriculum_core import compose_batch, plan_rng
from tests.conftest import create_run
from tests.conftest import post_plan as _plan

DISTS = ["a", "b", "c", "d"]


def test_first_request_fixes_the_plan_across_replicas(
    http: httpx.Client, start_service: Callable[..., str]
) -> None:
    """Two service instances on one Redis, a report landing between the two requests: both
    callers get the same composition, drawn from the weights before the report."""
    url_a, url_b = start_service(), start_service()
    run, headers = create_run(http, url_a, DISTS)
    first = _plan(http, url_a, run, headers, 5, 32).json()
    reply = http.post(
        f"{url_b}/v1/runs/{run}/reports",
        json={"report_id": "x", "step": 4, "advantages": {"a": [3.0] * 50}},
        headers=headers,
    )
    assert reply.json()["version"] == 1
    second = _plan(http, url_b, run, headers, 5, 32).json()
    assert second == first
    assert first["version"] == 0
    assert sum(first["counts"].values()) == 32 == len(first["assignment"])
    assert {d: first["assignment"].count(d) for d in first["counts"]} == first["counts"]
    # the next step is drawn from the newer weights
    assert _plan(http, url_b, run, headers, 6, 32).json()["version"] == 1


def test_a_kept_plan_is_never_served_to_an_earlier_run_of_the_same_id(
    http: httpx.Client, start_service: Callable[..., str]
) -> None:
    """Replica A caches run "twin"; through replica B it is deleted and created again, and
    step 0 is planned for the new run. A kept plan is one plain HGET on A, under A's stale
    cache: the old token must still not read the new run's plan."""
    url_a, url_b = start_service(), start_service()
    run, old_headers = create_run(http, url_a, DISTS, run_id="twin")
    assert _plan(http, url_a, run, old_headers, 0, 8).status_code == 200  # cached on A
    http.delete(f"{url_b}/v1/runs/{run}", headers=old_headers)
    _, new_headers = create_run(http, url_b, DISTS, run_id="twin", seed=7)
    new_plan = _plan(http, url_b, run, new_headers, 0, 8)
    assert new_plan.status_code == 200
    stale = _plan(http, url_a, run, old_headers, 0, 8)
    assert stale.status_code == 403, stale.text
    assert _plan(http, url_a, run, new_headers, 0, 8).json() == new_plan.json()


def test_plans_are_per_batch_size(http: httpx.Client, service_url: str) -> None:
    run, headers = create_run(http, service_url, DISTS)
    small = _plan(http, service_url, run, headers, 0, 4).json()
    large = _plan(http, service_url, run, headers, 0, 400).json()
    assert len(small["assignment"]) == 4 and len(large["assignment"]) == 400


def test_compositions_follow_the_weights(http: httpx.Client, service_url: str) -> None:
    """Chi-square over 150 seeded steps of 64 slots against the run's (non-uniform) weights."""
    run, headers = create_run(
        http, service_url, DISTS, seed=11, strategy={"name": "dump-ucb", "tau": 0.5}
    )
    http.post(
        f"{service_url}/v1/runs/{run}/reports",
        json={"report_id": "w", "step": 0,
              "advantages": {"a": [1.5] * 30, "b": [0.5] * 30, "c": [0.0] * 30, "d": [1.0] * 5}},
        headers=headers,
    )  # fmt: skip
    p = np.array(
        [
            http.get(f"{service_url}/v1/runs/{run}", headers=headers).json()["weights"][d]
            for d in DISTS
        ]
    )
    assert p.max() / p.min() > 3  # the check below is about non-uniform weights
    observed = np.zeros(4)
    for step in range(1, 151):
        counts = _plan(http, service_url, run, headers, step, 64).json()["counts"]
        observed += [counts.get(d, 0) for d in DISTS]
    expected = p * observed.sum()
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    assert chi2 < 16.27, (chi2, observed, expected)  # 3 d.o.f., p = 0.001


def test_old_plans_expire(http: httpx.Client, start_service: Callable[..., str]) -> None:
    url = start_service(plan_retention=3)
    run, headers = create_run(http, url, DISTS)
    kept = _plan(http, url, run, headers, 7, 8).json()
    _plan(http, url, run, headers, 10, 8)
    assert _plan(http, url, run, headers, 7, 8).json() == kept  # 10 - 3 = 7 is still kept
    _plan(http, url, run, headers, 11, 8)
    expired = _plan(http, url, run, headers, 7, 8)
    assert expired.status_code == 410
    assert "no longer kept" in expired.json()["error"]["message"]
    assert _plan(http, url, run, headers, 9, 8).status_code == 200  # never planned, in range


def _round_plan(
    http: httpx.Client, url: str, run: str, headers: dict[str, str], step: int, round: int
) -> httpx.Response:
    return http.post(
        f"{url}/v1/runs/{run}/plan",
        json={"step": step, "batch_size": 32, "round": round},
        headers=headers,
    )


def test_each_round_of_a_step_is_fixed_by_its_first_request(
    http: httpx.Client, start_service: Callable[..., str]
) -> None:
    """Round 0 is the plan a request without a round gets, drawn from the stream plans
    always had; round 1 is drawn from a stream of its own, fixed by its first request even
    when a report moves the weights before a second replica asks."""
    url_a, url_b = start_service(), start_service()
    run, headers = create_run(http, url_a, DISTS, seed=5)
    plain = _plan(http, url_a, run, headers, 3, 32).json()
    zero = _round_plan(http, url_b, run, headers, 3, 0).json()
    one = _round_plan(http, url_a, run, headers, 3, 1).json()
    # the weights are uniform until a report: today's draw, from today's stream
    uniform = np.full(len(DISTS), 1 / len(DISTS))
    today = compose_batch(uniform, 32, np.random.default_rng([5, 3, 32]))
    assert plain["assignment"] == [DISTS[i] for i in today]
    assert zero == plain and plain["round"] == 0
    refill = compose_batch(uniform, 32, plan_rng(5, 3, 32, 1))
    assert one["assignment"] == [DISTS[i] for i in refill] != plain["assignment"]
    assert one["round"] == 1 and one["step"] == 3
    reply = http.post(
        f"{url_b}/v1/runs/{run}/reports",
        json={"report_id": "x", "step": 3, "advantages": {"a": [3.0] * 50}},
        headers=headers,
    )
    assert reply.json()["version"] == 1
    assert _round_plan(http, url_b, run, headers, 3, 1).json() == one
    assert _round_plan(http, url_b, run, headers, 3, 2).json()["version"] == 1  # a new round


def test_a_round_past_the_bound_is_refused_and_stores_nothing(
    http: httpx.Client, start_service: Callable[..., str], redis_url: str
) -> None:
    url = start_service(max_rounds=3)
    run, headers = create_run(http, url, DISTS)
    refused = _round_plan(http, url, run, headers, 0, 3)
    assert refused.status_code == 422
    assert "CURRICULUM_MAX_ROUNDS" in refused.json()["error"]["message"]
    assert _round_plan(http, url, run, headers, 0, -1).status_code == 422
    assert _round_plan(http, url, run, headers, 0, 2).json()["round"] == 2
    info = http.get(f"{url}/openapi.json").json()
    assert info["components"]["schemas"]["PlanRequest"]["properties"]["round"]["maximum"] == 2
    with redis.Redis.from_url(redis_url) as r:
        fields = sorted(f.decode().split(":", 1)[1] for f in r.hkeys(f"rc:{{{run}}}:plans"))
    assert fields == ["0:32:2"]  # the refused rounds stored nothing


def test_rounds_of_an_old_step_expire_with_it(
    http: httpx.Client, start_service: Callable[..., str]
) -> None:
    url = start_service(plan_retention=3)
    run, headers = create_run(http, url, DISTS)
    _round_plan(http, url, run, headers, 7, 2)
    _plan(http, url, run, headers, 11, 8)
    expired = _round_plan(http, url, run, headers, 7, 2)
    assert expired.status_code == 410


@pytest.fixture
def redis_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The Redis calls the services of this test make from here on, by name (a script's, or
    the method's for a plain command), in order."""
    from service.store.redis_store import RedisStore

    calls: list[str] = []
    script, kept_plan, load_meta = RedisStore._script, RedisStore.kept_plan, RedisStore.load_meta

    async def counted_script(self: RedisStore, name: str, run_id: str, args: list[Any]) -> Any:
        calls.append(name)
        return await script(self, name, run_id, args)

    async def counted_kept(self: RedisStore, *args: Any, **kwargs: Any) -> Any:
        calls.append("kept_plan")
        return await kept_plan(self, *args, **kwargs)

    async def counted_meta(self: RedisStore, run_id: str) -> Any:
        calls.append("load_meta")
        return await load_meta(self, run_id)

    monkeypatch.setattr(RedisStore, "_script", counted_script)
    monkeypatch.setattr(RedisStore, "kept_plan", counted_kept)
    monkeypatch.setattr(RedisStore, "load_meta", counted_meta)
    return calls


def _core_plan(
    http: httpx.Client, url: str, run: str, headers: dict[str, str], step: int
) -> list[str]:
    """The assignment the core draws for ``step`` (batch 32, seed 0) from the run's weights."""
    info = http.get(f"{url}/v1/runs/{run}", headers=headers).json()
    weights = np.array([info["weights"][d] for d in DISTS])
    return [DISTS[i] for i in compose_batch(weights, 32, plan_rng(0, step, 32))]


@pytest.mark.parametrize("prompts", [None, {"a": 7, "b": 5, "c": 3, "d": 200}])
def test_a_new_step_is_one_redis_call_once_its_weights_were_seen(
    http: httpx.Client,
    service_url: str,
    redis_calls: list[str],
    prompts: dict[str, int] | None,
) -> None:
    """A process that stored the run's weights (its report) and prompt state (its plan)
    draws the next step's plan from them in one call, the script that stores it (which
    checks they are current); a kept plan is one HGET; the plans are the core's."""
    run, headers = create_run(http, service_url, DISTS, seed=0, prompts=prompts)
    first = _plan(http, service_url, run, headers, 0, 32).json()
    drawn = ["kept_plan", "get_plan", *(["read_prompts"] if prompts else []), "put_plan"]
    assert redis_calls[-len(drawn) :] == drawn  # the first plan this process sees: as before
    report = {"report_id": "r0", "step": 0, "advantages": {"a": [2.0] * 40, "b": [0.1] * 4}}
    if prompts:
        report["groups"] = [
            {"distribution": d, "prompt": p, "rewards": [1.0, 1.0]}
            for d, p in zip(first["assignment"], first["prompt_ids"], strict=True)
        ]
    assert (
        http.post(f"{service_url}/v1/runs/{run}/reports", json=report, headers=headers).json()[
            "version"
        ]
        == 1
    )
    redis_calls.clear()
    second = _plan(http, service_url, run, headers, 1, 32).json()
    assert redis_calls == ["put_plan"]
    assert second["version"] == 1
    assert second["assignment"] == _core_plan(http, service_url, run, headers, 1)
    assert (second.get("prompt_ids") is not None) == bool(prompts)
    redis_calls.clear()
    assert _plan(http, service_url, run, headers, 1, 32).json() == second
    assert redis_calls == ["kept_plan"]


def test_a_new_step_is_drawn_from_the_weights_another_replica_stored(
    http: httpx.Client, start_service: Callable[..., str], redis_calls: list[str]
) -> None:
    """Replica A saw the weights of version 0; B applies a report (version 1); A's next new
    step finds its weights moved in the script that would store the plan, and draws it again
    from version 1's: the plan B gives, the core's."""
    url_a, url_b = start_service(), start_service()
    run, headers = create_run(http, url_a, DISTS, seed=0)
    assert _plan(http, url_a, run, headers, 5, 32).json()["version"] == 0
    report = {"report_id": "x", "step": 5, "advantages": {"c": [3.0] * 50}}
    assert (
        http.post(f"{url_b}/v1/runs/{run}/reports", json=report, headers=headers).json()["version"]
        == 1
    )
    redis_calls.clear()
    got = _plan(http, url_a, run, headers, 6, 32).json()
    assert redis_calls == ["put_plan", "put_plan"]  # weights moved, then stored
    assert got["version"] == 1
    assert got["assignment"] == _core_plan(http, url_a, run, headers, 6)
    assert _plan(http, url_b, run, headers, 6, 32).json() == got


@pytest.mark.parametrize("prompt_ids", [None, [4, 0, 2**31, 7]])
def test_a_plan_answer_is_the_json_of_its_model(prompt_ids: list[int] | None) -> None:
    """The answer is joined from the names encoded once per run: byte for byte what the
    documented model (PlanOut) gives, whatever the names hold (quotes, backslashes, control
    characters, non-ASCII)."""
    import json

    from service.run_cache import Run
    from service.run_view import drawn_plan_answer
    from service.schemas import PlanOut
    from service.store.codec import KeptPlan
    from service.store.redis_store import RunMeta

    names = ['a"b', "c\\d", "e\nf\x01", "kk-é-日本", "</script>", "\u2028"]
    config = {
        "distributions": names,
        "strategy": {"name": "dump-ucb"},
        "seed": 3,
        "created_at": "t",
    }
    run = Run.from_meta("r-1.x", RunMeta(json.dumps(config), "inc", "hash"), 0.1)
    slots = np.array([5, 0, 3, 3])
    plan = KeptPlan(
        version=12,
        index=np.array([0, 3, 5]),
        count=np.array([1, 2, 1]),
        prompt_ids=None if prompt_ids is None else np.array(prompt_ids),
    )
    want = PlanOut(
        run_id="r-1.x",
        step=2**40,
        round=3,
        batch_size=4,
        version=12,
        counts={names[0]: 1, names[3]: 2, names[5]: 1},
        assignment=[names[i] for i in slots],
        prompt_ids=prompt_ids,
    ).model_dump_json()
    assert drawn_plan_answer(run, 2**40, 4, plan, slots, round=3) == want.encode()
