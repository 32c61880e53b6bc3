"""Export and import: a run's learnt state saved beside a checkpoint and restored on resume."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import create_run

DISTS = ["a", "b", "c"]


def _report(
    http: httpx.Client,
    url: str,
    run: str,
    headers: dict[str, str],
    rid: str,
    step: int,
    values: dict[str, list[float]],
) -> dict:
    reply = http.post(
        f"{url}/v1/runs/{run}/reports",
        json={"report_id": rid, "step": step, "advantages": values, "rewards": values},
        headers=headers,
    )
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_export_import_round_trip(http: httpx.Client, service_url: str) -> None:
    """Resume from a checkpoint taken after step 1: steps 2-3 are undone, and when the trainer
    re-does them, their reports (same ids) count again; step 0-1 reports stay duplicates."""
    url = service_url
    run, headers = create_run(http, url, DISTS, strategy={"name": "dump-ucb", "window": 4})
    _report(http, url, run, headers, "s0", 0, {"a": [1.0, -1.0, 0.5]})
    _report(http, url, run, headers, "s1", 1, {"b": [0.2] * 6, "a": [2.0]})
    checkpoint = http.get(f"{url}/v1/runs/{run}/export", headers=headers).json()
    at_checkpoint = http.get(f"{url}/v1/runs/{run}", headers=headers).json()
    assert checkpoint["distributions"]["a"]["window"] == [1.0, 1.0, 0.5, 2.0]
    b = checkpoint["distributions"]["b"]
    assert (b["n"], b["window"], b["reward_n"]) == (6, [0.2] * 4, 6)
    assert b["reward_last"] == pytest.approx(0.2)
    assert [rid for rid, _ in checkpoint["report_ids"]] == ["s0", "s1"]
    assert [e["step"] for e in checkpoint["history"]] == [0, 1]
    slim = http.get(f"{url}/v1/runs/{run}/export?history=false", headers=headers).json()
    assert slim["history"] == [] and slim["distributions"] == checkpoint["distributions"]

    _report(http, url, run, headers, "s2", 2, {"c": [3.0]})
    _report(http, url, run, headers, "s3", 3, {"c": [3.0]})
    plan_before = http.post(
        f"{url}/v1/runs/{run}/plan", json={"step": 4, "batch_size": 8}, headers=headers
    ).json()
    assert http.get(f"{url}/v1/runs/{run}", headers=headers).json()["version"] == 4

    imported = http.put(f"{url}/v1/runs/{run}/import", json=checkpoint, headers=headers)
    assert imported.status_code == 200, imported.text
    assert imported.json()["version"] == 5  # moves on, never back
    restored = http.get(f"{url}/v1/runs/{run}", headers=headers).json()
    assert restored["stats"] == at_checkpoint["stats"]
    assert restored["weights"] == at_checkpoint["weights"]

    assert _report(http, url, run, headers, "s1", 1, {"b": [0.2]})["status"] == "duplicate"
    assert _report(http, url, run, headers, "s2", 2, {"c": [3.0]})["status"] == "applied"
    assert http.get(f"{url}/v1/runs/{run}", headers=headers).json()["stats"]["c"]["n"] == 1
    # plans were dropped: step 4 is drawn again, from the restored weights
    plan_after = http.post(
        f"{url}/v1/runs/{run}/plan", json={"step": 4, "batch_size": 8}, headers=headers
    ).json()
    assert plan_after["version"] == 6 != plan_before["version"]
    again = http.get(f"{url}/v1/runs/{run}/export", headers=headers).json()
    assert again["distributions"]["a"] == checkpoint["distributions"]["a"]


def test_import_into_a_fresh_run_with_the_same_distributions(
    http: httpx.Client, service_url: str
) -> None:
    run, headers = create_run(http, service_url, DISTS)
    _report(http, service_url, run, headers, "x", 0, {"a": [0.3, 0.3]})
    snapshot = http.get(f"{service_url}/v1/runs/{run}/export", headers=headers).json()
    fresh, fresh_headers = create_run(http, service_url, DISTS)
    reply = http.put(f"{service_url}/v1/runs/{fresh}/import", json=snapshot, headers=fresh_headers)
    assert reply.status_code == 200
    source = http.get(f"{service_url}/v1/runs/{run}", headers=headers).json()
    target = http.get(f"{service_url}/v1/runs/{fresh}", headers=fresh_headers).json()
    assert target["stats"] == source["stats"]
    # the snapshot does not carry a token: the fresh run keeps its own
    assert http.get(f"{service_url}/v1/runs/{fresh}", headers=headers).status_code == 403
