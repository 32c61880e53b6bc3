"""Reports: counting, windows, weights, idempotency and history."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from curriculum_core import DumpUcb, RunModel, weights
from tests.conftest import create_run

DISTS = ["d0", "d1", "d2", "d3"]


def _report(
    http: httpx.Client, url: str, run: str, headers: dict[str, str], **body: object
) -> httpx.Response:
    return http.post(f"{url}/v1/runs/{run}/reports", json=body, headers=headers)


def test_weights_match_the_math_run_in_process(http: httpx.Client, service_url: str) -> None:
    """Random reports with windows that wrap several times: the service's counts, window
    means and weights equal RunModel + weights() fed the same samples."""
    window = 7
    run, headers = create_run(
        http, service_url, DISTS, strategy={"name": "dump-ucb", "window": window, "c": 0.5}
    )
    reference = RunModel(DISTS, {"name": "dump-ucb", "window": window, "c": 0.5})
    rng = np.random.default_rng(0)
    for step in range(40):
        advantages = {}
        for j, name in enumerate(DISTS):
            if rng.random() < 0.6:
                values = rng.normal(0, j + 0.5, size=int(rng.integers(1, 12))).tolist()
                advantages[name] = values
        if not advantages:
            continue
        assert reference.apply(f"s{step}", advantages)
        reply = _report(
            http, service_url, run, headers, report_id=f"s{step}", step=step, advantages=advantages
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["status"] == "applied"
    expected = weights(DumpUcb(window=window, c=0.5), reference.stats())
    info = http.get(f"{service_url}/v1/runs/{run}", headers=headers).json()
    got = np.array([info["weights"][d] for d in DISTS])
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)
    stats = reference.stats()
    for j, name in enumerate(DISTS):
        assert info["stats"][name]["n"] == stats.n[j]
        assert info["stats"][name]["window_mean"] == pytest.approx(stats.window_mean[j], rel=1e-6)
    snapshot = http.get(f"{service_url}/v1/runs/{run}/export", headers=headers).json()
    for j, name in enumerate(DISTS):
        np.testing.assert_allclose(
            snapshot["distributions"][name]["window"], reference.window(j), rtol=1e-7
        )


def test_a_report_larger_than_the_window_keeps_its_tail(
    http: httpx.Client, service_url: str
) -> None:
    run, headers = create_run(http, service_url, ["a"], strategy={"name": "uniform", "window": 3})
    _report(
        http, service_url, run, headers, report_id="1", step=0, advantages={"a": [9, 9, 1, -2, 3]}
    )
    info = http.get(f"{service_url}/v1/runs/{run}", headers=headers).json()
    assert info["stats"]["a"]["n"] == 5
    assert info["stats"]["a"]["window_mean"] == pytest.approx(2.0)


def test_same_report_id_counts_once(http: httpx.Client, service_url: str) -> None:
    run, headers = create_run(http, service_url, DISTS)
    body = {"report_id": "step-1/rank-0", "step": 1, "advantages": {"d0": [1.0, -1.0]}}
    first = _report(http, service_url, run, headers, **body)
    second = _report(http, service_url, run, headers, **body)
    assert first.json()["status"] == "applied"
    assert second.json()["status"] == "duplicate"
    assert second.json()["version"] == first.json()["version"] == 1
    assert second.json()["weights"] == first.json()["weights"]
    info = http.get(f"{service_url}/v1/runs/{run}", headers=headers).json()
    assert info["stats"]["d0"]["n"] == 2
    assert info["version"] == 1


def test_a_report_may_leave_the_weights_out_of_its_answer(
    http: httpx.Client, service_url: str
) -> None:
    """?weights=false: the answer's weights are null, and the report counts and moves the
    stored weights exactly as with them."""
    run, headers = create_run(http, service_url, DISTS)
    url = f"{service_url}/v1/runs/{run}/reports"
    body = {"report_id": "a", "step": 0, "advantages": {"d0": [2.0, -2.0], "d1": [0.1]}}
    lean = http.post(url, params={"weights": "false"}, json=body, headers=headers).json()
    assert lean == {"status": "applied", "version": 1, "weights": None}
    info = http.get(f"{service_url}/v1/runs/{run}", headers=headers).json()
    assert info["stats"]["d0"]["n"] == 2
    again = http.post(url, json=body, headers=headers).json()
    assert again["status"] == "duplicate"
    assert again["weights"] == info["weights"]
    assert again["weights"]["d0"] > again["weights"]["d2"]  # d0 moved, from the lean report
    lean_dup = http.post(url, params={"weights": "false"}, json=body, headers=headers).json()
    assert lean_dup == {"status": "duplicate", "version": 1, "weights": None}


def test_reward_spread_signal_fills_the_windows_from_the_rewards(
    http: httpx.Client, service_url: str
) -> None:
    strategy = {"name": "dump-ucb", "signal": "reward-spread"}
    run, headers = create_run(http, service_url, DISTS, strategy=strategy)
    url = f"{service_url}/v1/runs/{run}/reports"
    bare = {"report_id": "a", "step": 0, "advantages": {"d0": [1.0, -1.0]}}
    refused = http.post(url, json=bare, headers=headers)
    assert refused.status_code == 422
    assert "has none for 'd0'" in refused.json()["error"]["message"]
    assert http.get(f"{service_url}/v1/runs/{run}", headers=headers).json()["version"] == 0
    body = {**bare, "rewards": {"d0": [1.0, 0.0, 1.0, 1.0]}}  # mean 0.75
    assert http.post(url, json=body, headers=headers).json()["status"] == "applied"
    stats = http.get(f"{service_url}/v1/runs/{run}", headers=headers).json()["stats"]["d0"]
    assert stats["n"] == 4  # one value per reward
    assert stats["window_mean"] == pytest.approx((0.25 + 0.75 + 0.25 + 0.25) / 4)


def test_rewards_are_summarised(http: httpx.Client, service_url: str) -> None:
    """Batch means 0.5 then 1.0 with alpha 0.1: moving average 0.5 -> 0.9*0.5 + 0.1*1.0 = 0.55."""
    run, headers = create_run(http, service_url, DISTS)
    _report(http, service_url, run, headers, report_id="1", step=0,
            advantages={"d1": [1, -1]}, rewards={"d1": [1.0, 0.0]})  # fmt: skip
    _report(http, service_url, run, headers, report_id="2", step=1,
            advantages={"d1": [0, 0]}, rewards={"d1": [1.0, 1.0]})  # fmt: skip
    stats = http.get(f"{service_url}/v1/runs/{run}", headers=headers).json()["stats"]["d1"]
    assert stats["reward_n"] == 4
    assert stats["reward_last"] == 1.0
    assert stats["reward_mean"] == pytest.approx(0.55)


def test_history_keeps_one_entry_per_step(http: httpx.Client, service_url: str) -> None:
    run, headers = create_run(http, service_url, DISTS)
    for i, step in enumerate([0, 0, 1, 2, 2, 2]):
        _report(
            http, service_url, run, headers, report_id=f"r{i}", step=step, advantages={"d2": [0.5]}
        )
    history = http.get(f"{service_url}/v1/runs/{run}/history", headers=headers).json()
    assert history["distributions"] == DISTS
    assert [(e["step"], e["version"]) for e in history["entries"]] == [(0, 2), (1, 3), (2, 6)]
    last = history["entries"][-1]
    info = http.get(f"{service_url}/v1/runs/{run}", headers=headers).json()
    np.testing.assert_allclose(last["weights"], [info["weights"][d] for d in DISTS], rtol=1e-6)
    assert last["window_mean"][2] == pytest.approx(0.5)
    limited = http.get(f"{service_url}/v1/runs/{run}/history?limit=1", headers=headers).json()
    assert [e["step"] for e in limited["entries"]] == [2]


def test_history_is_bounded(http: httpx.Client, start_service) -> None:  # type: ignore[no-untyped-def]
    url = start_service(history_limit=3)
    run, headers = create_run(http, url, DISTS)
    for step in range(6):
        _report(http, url, run, headers, report_id=f"r{step}", step=step, advantages={"d0": [1.0]})
    history = http.get(f"{url}/v1/runs/{run}/history", headers=headers).json()
    assert [e["step"] for e in history["entries"]] == [3, 4, 5]


def test_report_ids_are_remembered_up_to_the_retention(http: httpx.Client, start_service) -> None:  # type: ignore[no-untyped-def]
    url = start_service(report_id_retention=2)
    run, headers = create_run(http, url, DISTS)
    for rid in ["a", "b", "c"]:
        _report(http, url, run, headers, report_id=rid, step=0, advantages={"d0": [1.0]})
    assert (
        _report(http, url, run, headers, report_id="c", step=0, advantages={"d0": [1.0]}).json()[
            "status"
        ]
        == "duplicate"
    )
    # "a" fell out of the window of remembered ids, so it counts again
    assert (
        _report(http, url, run, headers, report_id="a", step=0, advantages={"d0": [1.0]}).json()[
            "status"
        ]
        == "applied"
    )


def test_history_of_a_wide_run_fits_its_byte_budget(http: httpx.Client, start_service) -> None:  # type: ignore[no-untyped-def]
    """200 distributions: an entry is 16 + 8 * 200 = 1,616 bytes, so a 20,000-byte budget
    keeps 12 steps although the count limit allows 1,000."""
    url = start_service(history_max_bytes=20_000)
    names = [f"d{i}" for i in range(200)]
    run, headers = create_run(http, url, names)
    for step in range(15):
        _report(http, url, run, headers, report_id=f"r{step}", step=step, advantages={"d0": [1.0]})
    history = http.get(f"{url}/v1/runs/{run}/history", headers=headers).json()
    assert [e["step"] for e in history["entries"]] == list(range(3, 15))


@pytest.mark.parametrize("strategy", ["dump-ucb", "dump-ducb", "exp3s"])
def test_a_late_report_is_applied_like_any_other(
    http: httpx.Client, service_url: str, strategy: str
) -> None:
    """Reports that name steps far behind the newest (an async loop that trains, and so
    reports, samples many steps after the plan that generated them) move the statistics
    exactly as the same reports in step order: only the order of reports counts, never
    their steps."""
    rng = np.random.default_rng(3)
    reports = [
        {
            name: rng.normal(0, 1, size=int(rng.integers(1, 6))).tolist()
            for name in DISTS
            if rng.random() < 0.7
        }
        or {"d0": [0.5]}
        for _ in range(12)
    ]
    late_steps = [50, 51, 3, 52, 0, 53, 7, 54, 55, 1, 56, 2]  # applied in this order
    views = []
    for steps in (list(range(12)), late_steps):
        run, headers = create_run(http, service_url, DISTS, strategy=strategy)
        for i, (step, advantages) in enumerate(zip(steps, reports, strict=True)):
            body = {"report_id": f"r{i}", "step": step, "advantages": advantages}
            assert _report(http, service_url, run, headers, **body).json()["status"] == "applied"
        info = http.get(f"{service_url}/v1/runs/{run}", headers=headers).json()
        views.append((info["weights"], {d: info["stats"][d]["n"] for d in DISTS}, info["stats"]))
    assert views[0][0] == views[1][0]
    assert views[0][1] == views[1][1]
    assert [views[0][2][d]["window_mean"] for d in DISTS] == [
        views[1][2][d]["window_mean"] for d in DISTS
    ]
