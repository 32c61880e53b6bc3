"""The reward moving-average weight is a per-run strategy parameter; runs stored before it
was one keep the deployment's old setting."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest
import redis

from tests.conftest import create_run


def _report(http: httpx.Client, url: str, run: str, headers: dict, i: int, r: float) -> None:
    body = {"report_id": f"r{i}", "step": i, "advantages": {"a": [0.5]}, "rewards": {"a": [r]}}
    reply = http.post(f"{url}/v1/runs/{run}/reports", json=body, headers=headers)
    assert reply.status_code == 200, reply.text


def test_reward_alpha_is_the_runs_own(
    start_service: Callable[..., str], http: httpx.Client
) -> None:
    """Two runs on one deployment average their rewards with their own weights."""
    url = start_service()
    slow, slow_headers = create_run(http, url, ["a", "b"], strategy={"name": "dump-ucb"})
    fast, fast_headers = create_run(
        http, url, ["a", "b"], strategy={"name": "dump-ucb", "reward_alpha": 0.5}
    )
    for run, headers in ((slow, slow_headers), (fast, fast_headers)):
        _report(http, url, run, headers, 0, 1.0)
        _report(http, url, run, headers, 1, 0.0)
    means = {
        run: http.get(f"{url}/v1/runs/{run}", headers=h).json()["stats"]["a"]["reward_mean"]
        for run, h in ((slow, slow_headers), (fast, fast_headers))
    }
    assert means == {slow: pytest.approx(0.9), fast: pytest.approx(0.5)}
    refused = http.post(
        f"{url}/v1/runs",
        json={"distributions": ["a"], "strategy": {"name": "sec", "reward_alpha": 0}},
    )
    assert refused.status_code == 422 and "reward_alpha" in refused.text


def test_a_run_stored_without_reward_alpha_keeps_the_old_setting(
    start_service: Callable[..., str], http: httpx.Client, redis_url: str
) -> None:
    """A run whose stored config predates the parameter is read with
    CURRICULUM_REWARD_EMA_ALPHA, the value it was created under, and attaching to it with
    that value is no conflict."""
    url = start_service(reward_ema_alpha=0.5)
    run, headers = create_run(
        http, url, ["a", "b"], run_id="legacy", strategy={"name": "dump-ucb", "reward_alpha": 0.5}
    )
    store = redis.Redis.from_url(redis_url)
    key = "rc:{legacy}:meta"
    config = json.loads(store.hget(key, "config"))
    del config["strategy"]["reward_alpha"]
    store.hset(key, "config", json.dumps(config))
    store.close()
    fresh = start_service(reward_ema_alpha=0.5)  # no cached config
    info = http.get(f"{fresh}/v1/runs/{run}", headers=headers).json()
    assert info["config"]["strategy"]["reward_alpha"] == 0.5
    _report(http, fresh, run, headers, 0, 1.0)
    _report(http, fresh, run, headers, 1, 0.0)
    stats = http.get(f"{fresh}/v1/runs/{run}", headers=headers).json()["stats"]["a"]
    assert stats["reward_mean"] == pytest.approx(0.5)
    again = http.post(
        f"{fresh}/v1/runs",
        json={"run_id": "legacy", "distributions": ["a", "b"],
              "strategy": {"name": "dump-ucb", "reward_alpha": 0.5}},
    )  # fmt: skip
    assert again.status_code == 200 and again.json()["created"] is False
