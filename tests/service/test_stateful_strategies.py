"""Stateful strategies through the service: the stored state is the fold of every report."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import numpy as np
import pytest

from curriculum_core import (
    BatchSummary,
    RunModel,
    RunStats,
    advance,
    initial_state,
    rehearsal_share,
    strategy_from_dict,
    weights,
)
from tests.conftest import create_run

DISTS = ["a", "b", "c", "d"]
STRATEGIES: list[dict[str, Any]] = [
    {"name": "sec"},
    {"name": "learning-progress", "tau": 0.02},
    {"name": "exp3s", "history": 16},
    {"name": "dump-ducb", "horizon": 20.0},
    {"name": "dump-rehearse", "confidence": 2.0},
    {"name": "dump-ucb", "floor": 0.1, "regress_bonus": 2.0},
]


def _reports(seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    out = []
    for step in range(25):
        chosen = [d for d in DISTS if rng.random() < 0.7] or ["a"]
        adv = {d: rng.normal(0, 1, size=4).round(3).tolist() for d in chosen}
        rew = {d: rng.integers(0, 2, size=4).astype(float).tolist() for d in chosen}
        out.append({"report_id": f"r{step}", "step": step, "advantages": adv, "rewards": rew})
    return out


def _reference(strategy_wire: dict[str, Any], reports: list[dict[str, Any]]) -> np.ndarray:
    strategy = strategy_from_dict(strategy_wire)
    model = RunModel(DISTS, strategy_wire)
    state = initial_state(strategy, len(DISTS))
    for report in reports:
        names = list(report["advantages"])
        assert model.apply(report["report_id"], report["advantages"], report["rewards"])
        batch = BatchSummary(
            index=np.array([DISTS.index(n) for n in names]),
            count=np.array([len(report["advantages"][n]) for n in names], dtype=float),
            mean_abs_advantage=np.array([np.abs(report["advantages"][n]).mean() for n in names]),
            mean_reward=np.array([np.mean(report["rewards"][n]) for n in names]),
        )
        state = advance(strategy, state, batch)
    # the model folds the same state as this fold by hand, and weighs the same
    np.testing.assert_allclose(model.state, state, rtol=1e-12, atol=1e-15)
    expected = weights(strategy, model.stats(), state)
    np.testing.assert_allclose(model.weights(), expected, rtol=1e-12, atol=1e-15)
    return expected


def _reference_shares(strategy_wire: dict[str, Any], reports: list[dict[str, Any]]) -> np.ndarray:
    """The rehearsal share of each distribution after ``reports``, in process (0 but for
    dump-rehearse)."""
    model = RunModel(DISTS, strategy_wire)
    for report in reports:
        model.apply(report["report_id"], report["advantages"], report["rewards"])
    return rehearsal_share(model.strategy, model.k, model.state)


@pytest.mark.parametrize("strategy", STRATEGIES, ids=[s["name"] for s in STRATEGIES])
def test_service_weights_equal_the_fold_in_process(
    http: httpx.Client, service_url: str, redis_url: str, strategy: dict[str, Any]
) -> None:
    run, headers = create_run(http, service_url, DISTS, strategy=strategy)
    reports = _reports(1)
    for body in reports:
        assert (
            http.post(
                f"{service_url}/v1/runs/{run}/reports", json=body, headers=headers
            ).status_code
            == 200
        )
    info = http.get(f"{service_url}/v1/runs/{run}", headers=headers).json()
    got = np.array([info["weights"][d] for d in DISTS])
    np.testing.assert_allclose(got, _reference(strategy, reports), rtol=1e-6, atol=1e-9)
    assert not np.allclose(got, 0.25)
    shares = np.array([info["stats"][d]["rehearsal_share"] for d in DISTS])
    np.testing.assert_allclose(shares, _reference_shares(strategy, reports), rtol=1e-9, atol=0)
    # dump-rehearse: some distribution's reward fell over its gaps in these reports
    assert shares.any() == (strategy["name"] == "dump-rehearse")

    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        assert client.llen(f"rc:{{{run}}}:journal") == 0  # every entry folded and trimmed
    finally:
        client.close()


def test_a_writer_that_dies_after_the_report_is_healed(
    http: httpx.Client, service_url: str, redis_url: str
) -> None:
    """Apply reports with the store alone (as if the process died before storing weights):
    the next read folds the journal and stores the weights the reports imply."""
    from service.store.codec import encode_journal_body, pack_report
    from service.store.redis_store import open_store

    strategy = {"name": "sec"}
    run, headers = create_run(http, service_url, DISTS, strategy=strategy)
    reports = _reports(2)[:5]

    async def apply_raw() -> None:
        async with open_store(redis_url) as store:
            meta = await store.load_meta(run)
            for body in reports:
                names = list(body["advantages"])
                packed = pack_report(
                    [(DISTS.index(n), body["advantages"][n]) for n in names],
                    [(DISTS.index(n), body["rewards"][n]) for n in names],
                    300,
                )
                summary = BatchSummary(
                    index=np.array([DISTS.index(n) for n in names]),
                    count=np.full(len(names), 4.0),
                    mean_abs_advantage=np.array(
                        [np.abs(body["advantages"][n]).mean() for n in names]
                    ),
                    mean_reward=np.array([np.mean(body["rewards"][n]) for n in names]),
                )
                await store.report(
                    run, meta.incarnation, body["report_id"], window=300, packed=packed,
                    report_id_retention=100, reward_alpha=0.1,
                    journal_entry=encode_journal_body(summary), with_rewards=False,
                    step=body["step"], rank=None, at=0.0,
                )  # fmt: skip

    asyncio.run(apply_raw())
    plan = http.post(
        f"{service_url}/v1/runs/{run}/plan", json={"step": 0, "batch_size": 8}, headers=headers
    )
    assert plan.json()["version"] == 5  # drawn from the healed weights, not the stale ones
    info = http.get(f"{service_url}/v1/runs/{run}", headers=headers).json()
    got = np.array([info["weights"][d] for d in DISTS])
    np.testing.assert_allclose(got, _reference(strategy, reports), rtol=1e-6)


def test_snapshot_carries_the_strategy_state(http: httpx.Client, service_url: str) -> None:
    strategy = {"name": "exp3s", "history": 16}
    run, headers = create_run(http, service_url, DISTS, strategy=strategy)
    for body in _reports(3)[:10]:
        http.post(f"{service_url}/v1/runs/{run}/reports", json=body, headers=headers)
    snapshot = http.get(f"{service_url}/v1/runs/{run}/export", headers=headers).json()
    assert len(snapshot["strategy_state"]) == 3 * 4 + 3 + 16
    before = http.get(f"{service_url}/v1/runs/{run}", headers=headers).json()["weights"]
    fresh, fresh_headers = create_run(http, service_url, DISTS, strategy=strategy)
    assert (
        http.put(
            f"{service_url}/v1/runs/{fresh}/import", json=snapshot, headers=fresh_headers
        ).status_code
        == 200
    )
    after = http.get(f"{service_url}/v1/runs/{fresh}", headers=fresh_headers).json()["weights"]
    assert after == pytest.approx(before, rel=1e-9)
    snapshot["strategy_state"] = [0.0, 1.0]
    bad = http.put(f"{service_url}/v1/runs/{fresh}/import", json=snapshot, headers=fresh_headers)
    assert bad.status_code == 409 and "strategy_state" in bad.json()["error"]["message"]


def test_rewards_track_their_best(http: httpx.Client, service_url: str) -> None:
    run, headers = create_run(http, service_url, DISTS)
    for i, r in enumerate([1.0, 0.0, 0.0]):
        body = {"report_id": str(i), "step": i, "advantages": {"a": [0.0]}, "rewards": {"a": [r]}}
        http.post(f"{service_url}/v1/runs/{run}/reports", json=body, headers=headers)
    stats = http.get(f"{service_url}/v1/runs/{run}", headers=headers).json()["stats"]["a"]
    assert stats["reward_best"] == 1.0
    assert stats["reward_mean"] == pytest.approx(0.81)  # 1 -> 0.9 -> 0.81
    expected = weights(strategy_from_dict({"name": "dump-ucb"}), RunStats.empty(4))
    assert expected.sum() == pytest.approx(1.0)
