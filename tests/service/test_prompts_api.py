"""Prompt selection over HTTP: runs that declare prompts, and runs that do not (unchanged).

The agreement of the service's prompts with the core's is
``test_core_agrees_with_service.py``; here: what a run without prompts answers, what is
refused before any write, concurrent first plans, the settings and the memory budget.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import redis

from service.budget import run_footprint
from service.settings import Settings
from service.store.codec import decode_plan
from tests.conftest import create_run, post_plan

NAMES = ["a", "b"]


def _run_with_prompts(
    http: httpx.Client, url: str, prompts: dict[str, int] | None = None, **body: Any
) -> tuple[str, dict[str, str]]:
    return create_run(
        http, url, NAMES, run_id=f"p-{uuid.uuid4().hex[:12]}", prompts=prompts or {"a": 5, "b": 3},
        **body,
    )  # fmt: skip


def test_a_run_without_prompts_answers_as_before(http: httpx.Client, service_url: str) -> None:
    run, headers = create_run(http, service_url, NAMES, strategy="uniform")
    plan = post_plan(http, service_url, run, headers, 0, 4).json()
    assert set(plan) == {"run_id", "step", "round", "batch_size", "version", "counts", "assignment"}
    info = http.get(f"{service_url}/v1/runs/{run}", headers=headers).json()
    assert "prompts" not in info and "prompts" not in info["config"]
    assert "prompt_selection" not in info["config"]
    export = http.get(f"{service_url}/v1/runs/{run}/export", headers=headers).json()
    assert "prompt_state" not in export
    refused = http.post(
        f"{service_url}/v1/runs/{run}/reports",
        json={
            "report_id": "r0",
            "step": 0,
            "advantages": {"a": [1.0]},
            "groups": [{"distribution": "a", "prompt": 0, "rewards": [1.0]}],
        },
        headers=headers,
    )
    assert refused.status_code == 422, refused.text
    assert "declares none" in refused.json()["error"]["message"]
    after = http.get(f"{service_url}/v1/runs/{run}", headers=headers).json()
    assert after["version"] == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"prompts": {"a": 5}}, "missing ['b']"),
        ({"prompts": {"a": 5, "b": 3, "c": 1}}, "unknown ['c']"),
        ({"prompts": {"a": 0, "b": 3}}, "greater than or equal to 1"),
        ({"prompt_selection": {"mode": "skip"}}, "prompt_selection needs prompts"),
        ({"prompts": {"a": 5, "b": 3}, "prompt_selection": {"max_skip": 1.0}}, "less than 1"),
        ({"prompts": {"a": 5, "b": 3}, "prompt_selection": {"other": 1}}, "Extra inputs"),
        ({"prompts": {"a": 60, "b": 41}}, "at most 100 prompts"),
    ],
)
def test_bad_prompts_are_refused_at_creation(
    http: httpx.Client, start_service: Callable[..., str], body: dict[str, Any], message: str
) -> None:
    url = start_service(max_prompts=100)
    run_id = f"bad-{uuid.uuid4().hex[:12]}"
    reply = http.post(f"{url}/v1/runs", json={"run_id": run_id, "distributions": NAMES, **body})
    assert reply.status_code == 422, reply.text
    assert message in reply.text
    assert http.get(f"{url}/v1/runs/{run_id}").status_code in (401, 403)
    ok = http.post(f"{url}/v1/runs", json={"distributions": NAMES, "prompts": {"a": 60, "b": 40}})
    assert ok.status_code == 201, ok.text


@pytest.mark.parametrize(
    ("group", "message"),
    [
        ({"distribution": "c", "prompt": 0, "rewards": [1.0]}, "no distribution 'c'"),
        ({"distribution": "b", "prompt": 3, "rewards": [1.0]}, "must be below 3"),
        ({"distribution": "a", "prompt": -1, "rewards": [1.0]}, "greater than or equal to 0"),
        ({"distribution": "a", "prompt": 0, "rewards": []}, "at least 1 item"),
        ({"distribution": "a", "prompt": 0, "rewards": [1e39]}, "less than or equal to"),
    ],
)
def test_bad_groups_are_refused_and_change_nothing(
    http: httpx.Client, service_url: str, group: dict[str, Any], message: str
) -> None:
    run, headers = _run_with_prompts(http, service_url)
    before = http.get(f"{service_url}/v1/runs/{run}/export", headers=headers).json()
    good = {"distribution": "a", "prompt": 4, "rewards": [1.0, 1.0]}
    body = {"report_id": "r0", "step": 0, "advantages": {"a": [0.0]}, "groups": [good, group]}
    reply = http.post(f"{service_url}/v1/runs/{run}/reports", json=body, headers=headers)
    assert reply.status_code == 422, reply.text
    assert message in reply.text
    after = http.get(f"{service_url}/v1/runs/{run}/export", headers=headers).json()
    assert after == before
    body["groups"] = [good]
    applied = http.post(f"{service_url}/v1/runs/{run}/reports", json=body, headers=headers)
    assert applied.status_code == 200 and applied.json()["status"] == "applied"
    moved = http.get(f"{service_url}/v1/runs/{run}/export", headers=headers).json()
    assert moved["prompt_state"]["records"] != before["prompt_state"]["records"]
    assert moved["prompt_state"]["groups"] == [1, 0]


def test_too_many_groups_are_refused(http: httpx.Client, start_service: Callable[..., str]) -> None:
    url = start_service(max_report_groups=2)
    run, headers = _run_with_prompts(http, url)
    group = {"distribution": "a", "prompt": 0, "rewards": [1.0]}
    body = {"report_id": "r0", "step": 0, "advantages": {"a": [0.0]}, "groups": [group] * 3}
    reply = http.post(f"{url}/v1/runs/{run}/reports", json=body, headers=headers)
    assert reply.status_code == 422 and "at most 2 groups" in reply.text
    body["groups"] = [group] * 2
    assert http.post(f"{url}/v1/runs/{run}/reports", json=body, headers=headers).status_code == 200


def test_concurrent_first_plans_agree_and_draw_once(http: httpx.Client, service_url: str) -> None:
    """Eight ranks ask for the same new step at once: one plan, its prompts drawn once."""
    run, headers = _run_with_prompts(http, service_url, {"a": 1000, "b": 1000})

    def ask(_: int) -> dict[str, Any]:
        with httpx.Client(timeout=30) as client:
            reply = post_plan(client, service_url, run, headers, 0, 64)
            assert reply.status_code == 200, reply.text
            return dict(reply.json())

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, range(8)))
    assert all(a == answers[0] for a in answers)
    ids, assignment = answers[0]["prompt_ids"], answers[0]["assignment"]
    assert len(ids) == 64
    for name in NAMES:
        mine = [p for p, d in zip(ids, assignment, strict=True) if d == name]
        assert len(set(mine)) == len(mine)  # one pass: no prompt twice
    info = http.get(f"{service_url}/v1/runs/{run}", headers=headers).json()
    positions = {name: info["prompts"][name]["position"] for name in NAMES}
    assert positions == answers[0]["counts"] | {
        n: 0 for n in NAMES if n not in answers[0]["counts"]
    }


def test_concurrent_new_steps_draw_each_prompt_once(
    http: httpx.Client, start_service: Callable[..., str]
) -> None:
    """Eighty new steps asked at once, of two replicas, eight at a time: each plan draws from
    the prompt state the one fixed before it left (a replica draws its next plan from the
    state after its last one before that one is stored), so in coverage mode the steps
    together draw every distribution's first prompts of its pass, each once."""
    from curriculum_core.prompts import prompts_at

    urls = [start_service(), start_service()]
    counts = {"a": 400, "b": 300}
    run, headers = _run_with_prompts(
        http, urls[0], counts, seed=5, prompt_selection={"mode": "coverage"}
    )

    def ask(step: int) -> dict[str, Any]:
        with httpx.Client(timeout=30) as client:
            reply = post_plan(client, urls[step % 2], run, headers, step, 8)
            assert reply.status_code == 200, reply.text
            return dict(reply.json())

    with ThreadPoolExecutor(8) as pool:
        plans = list(pool.map(ask, range(80)))
    for j, name in enumerate(NAMES):
        drawn = [
            p
            for plan in plans
            for p, d in zip(plan["prompt_ids"], plan["assignment"], strict=True)
            if d == name
        ]
        assert sorted(drawn) == sorted(prompts_at(5, j, counts[name], 0, len(drawn)).tolist())
        shown = http.get(f"{urls[0]}/v1/runs/{run}", headers=headers).json()["prompts"][name]
        assert shown["pass"] * counts[name] + shown["position"] == len(drawn)


def test_a_kept_plan_carries_its_prompts_compactly(
    http: httpx.Client, service_url: str, redis_url: str
) -> None:
    """Kept as counts and 4 bytes a slot; a later request is answered from it alone."""
    run, headers = _run_with_prompts(http, service_url, {"a": 10, "b": 10})
    plan = post_plan(http, service_url, run, headers, 3, 16).json()
    client = redis.Redis.from_url(redis_url)
    kept = client.hvals(f"rc:{{{run}}}:plans")
    assert [len(v) for v in kept] == [13 + 8 * len(plan["counts"]) + 4 * 16]
    decoded = decode_plan(kept[0])
    assert decoded.prompt_ids is not None
    assert decoded.prompt_ids.tolist() == plan["prompt_ids"]
    assert post_plan(http, service_url, run, headers, 3, 16).json() == plan
    client.close()


def test_a_million_prompts_stay_within_8_mib() -> None:
    settings = Settings(_env_file=None)
    base = dict(k=2, window=300, config_bytes=500, state_bytes=0, stateful=False)
    without = run_footprint(settings, **base)
    with_prompts = run_footprint(settings, **base, prompts=1_048_576)
    assert "prompt state" not in without.parts or without.parts["prompt state"] == 0
    assert 1_048_576 < with_prompts.parts["prompt state"] <= 8 * 2**20
    assert with_prompts.total - without.total == with_prompts.parts["prompt state"]
