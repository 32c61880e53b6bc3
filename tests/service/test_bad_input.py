"""Bad input gets a clear 4xx JSON error and changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conftest import create_run

DISTS = ["a", "b"]


@pytest.fixture
def run(http: httpx.Client, start_service: Callable[..., str]) -> tuple[str, str, dict[str, str]]:
    url = start_service(max_body_bytes=64 * 1024, max_batch_size=1000, max_report_values=5000)
    run_id, headers = create_run(http, url, DISTS, run_id="target")
    http.post(
        f"{url}/v1/runs/{run_id}/reports",
        json={"report_id": "seed", "step": 0, "advantages": {"a": [0.5, -1.0]}},
        headers=headers,
    )
    http.post(f"{url}/v1/runs/{run_id}/plan", json={"step": 0, "batch_size": 8}, headers=headers)
    return url, run_id, headers


def _state(http: httpx.Client, url: str, run_id: str, headers: dict[str, str]) -> dict[str, Any]:
    snapshot = http.get(f"{url}/v1/runs/{run_id}/export", headers=headers).json()
    plan = http.post(
        f"{url}/v1/runs/{run_id}/plan", json={"step": 0, "batch_size": 8}, headers=headers
    ).json()
    return {"snapshot": snapshot, "plan": plan}


REPORT = "/v1/runs/target/reports"
PLAN = "/v1/runs/target/plan"

CASES: list[tuple[str, str, str, Any, int, str]] = [
    # (name, method, path, json body or raw bytes, status, words in the message)
    ("unknown run", "POST", "/v1/runs/nope/plan", {"step": 1, "batch_size": 4}, 403, "grants no run"),
    ("bad run id", "POST", "/v1/runs/bad%7Bid%7D/plan", {"step": 1, "batch_size": 4}, 422, "invalid run id"),
    ("unknown distribution", "POST", REPORT,
     {"report_id": "x", "step": 1, "advantages": {"a": [1.0], "zzz": [1.0]}}, 422, "no distribution 'zzz'"),
    ("NaN advantage", "POST", REPORT,
     b'{"report_id": "x", "step": 1, "advantages": {"a": [NaN]}}', 422, "finite"),
    ("infinite advantage", "POST", REPORT,
     b'{"report_id": "x", "step": 1, "advantages": {"a": [1e999]}}', 422, "finite"),
    ("infinite reward", "POST", REPORT,
     b'{"report_id": "x", "step": 1, "advantages": {"a": [1]}, "rewards": {"a": [-Infinity]}}', 422, "finite"),
    ("no values", "POST", REPORT, {"report_id": "x", "step": 1, "advantages": {"a": []}}, 422, "at least one"),
    ("too many values", "POST", REPORT,
     {"report_id": "x", "step": 1, "advantages": {"a": [0.1] * 5001}}, 422, "at most 5000"),
    ("negative step", "POST", REPORT, {"report_id": "x", "step": -1, "advantages": {"a": [1]}}, 422, "step"),
    ("empty report id", "POST", REPORT, {"report_id": "", "step": 1, "advantages": {"a": [1]}}, 422, "report_id"),
    ("extra field", "POST", REPORT,
     {"report_id": "x", "step": 1, "advantages": {"a": [1]}, "bogus": 1}, 422, "bogus"),
    ("string instead of number", "POST", REPORT,
     {"report_id": "x", "step": 1, "advantages": {"a": ["high"]}}, 422, "number"),
    ("malformed JSON", "POST", REPORT, b'{"report_id": "x", "step": 1,', 400, "not valid JSON"),
    ("body not an object", "POST", REPORT, b"[1, 2, 3]", 400, "JSON object"),
    ("batch size zero", "POST", PLAN, {"step": 1, "batch_size": 0}, 422, "batch_size"),
    ("batch size too large", "POST", PLAN, {"step": 1, "batch_size": 1001}, 422, "at most 1000"),
    ("oversized body", "POST", REPORT,
     {"report_id": "x", "step": 1, "advantages": {"a": [0.123456789] * 7000}}, 413, "over the limit"),
    ("empty distribution list", "POST", "/v1/runs", {"run_id": "new", "distributions": []}, 422, "at least 1"),
    ("duplicate names", "POST", "/v1/runs", {"run_id": "new", "distributions": ["a", "a"]}, 422, "unique"),
    ("empty name", "POST", "/v1/runs", {"run_id": "new", "distributions": ["a", ""]}, 422, "at least 1"),
    ("existing run, other config", "POST", "/v1/runs", {"run_id": "target", "distributions": ["a"]}, 409, "another configuration"),
    ("bad strategy param", "POST", "/v1/runs",
     {"run_id": "new", "distributions": ["a"], "strategy": {"name": "dump-ucb", "tau": -1}}, 422, "tau"),
    ("bad run id on create", "POST", "/v1/runs", {"run_id": "has space", "distributions": ["a"]}, 422, "run_id"),
    ("windows over 256 MiB", "POST", "/v1/runs",
     {"run_id": "new", "distributions": [f"d{i}" for i in range(7000)], "strategy": {"name": "uniform", "window": 10000}},
     422, "use a smaller window"),
    ("import of another run's shape", "PUT", "/v1/runs/target/import",
     {"run_id": "target", "version": 1, "config": {"distributions": ["a"], "strategy": {"name": "uniform"}, "seed": 0, "created_at": "x"},
      "distributions": {"a": {"n": 1, "window": [1.0]}}}, 409, "do not match"),
    ("import with a negative window value", "PUT", "/v1/runs/target/import",
     {"run_id": "target", "version": 1, "config": {"distributions": DISTS, "strategy": {"name": "uniform"}, "seed": 0, "created_at": "x"},
      "distributions": {"a": {"n": 1, "window": [-1.0]}, "b": {"n": 0, "window": []}}}, 422, "window.0: Input should be greater than or equal to 0"),
    ("import of a strategy state of another shape", "PUT", "/v1/runs/target/import",
     {"run_id": "target", "version": 1, "config": {"distributions": DISTS, "strategy": {"name": "dump-guard"}, "seed": 0, "created_at": "x"},
      "distributions": {"a": {"n": 0, "window": []}, "b": {"n": 0, "window": []}}, "strategy_state": [1.0]}, 409, "strategy_state has 1 numbers"),
    ("import of a history of another shape", "PUT", "/v1/runs/target/import",
     {"run_id": "target", "version": 1, "config": {"distributions": DISTS, "strategy": {"name": "dump-ucb"}, "seed": 0, "created_at": "x"},
      "distributions": {"a": {"n": 0, "window": []}, "b": {"n": 0, "window": []}},
      "history": [{"step": 0, "version": 1, "weights": [1.0], "window_mean": [0.0]}]}, 409, "history entry of step 0"),
    ("import with a string for a count", "PUT", "/v1/runs/target/import",
     {"run_id": "target", "version": 1, "config": {"distributions": DISTS, "strategy": {"name": "dump-ucb"}, "seed": 0, "created_at": "x"},
      "distributions": {"a": {"n": "1", "window": [1.0]}, "b": {"n": 0, "window": []}}}, 422, "distributions.a.n"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "method", "path", "body", "status", "words"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_input_is_refused_and_changes_nothing(
    http: httpx.Client,
    run: tuple[str, str, dict[str, str]],
    name: str,
    method: str,
    path: str,
    body: Any,
    status: int,
    words: str,
) -> None:
    url, run_id, headers = run
    before = _state(http, url, run_id, headers)
    kwargs: dict[str, Any] = {"headers": {**headers, "content-type": "application/json"}}
    if isinstance(body, bytes):
        kwargs["content"] = body
    else:
        kwargs["json"] = body
    reply = http.request(method, f"{url}{path}", **kwargs)
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert words in error["message"], error
    assert error["code"]
    assert _state(http, url, run_id, headers) == before
    assert http.get(f"{url}/v1/runs/new", headers=headers).status_code in (403, 404)


def test_chunked_oversized_body_is_refused(
    http: httpx.Client, run: tuple[str, str, dict[str, str]]
) -> None:
    """No Content-Length (a streamed body): the limit is enforced while reading."""
    url, run_id, headers = run
    before = _state(http, url, run_id, headers)
    payload = b'{"report_id": "x", "step": 1, "advantages": {"a": [' + b"0.5, " * 20000 + b"0.5]}}"

    def chunks() -> Any:
        for i in range(0, len(payload), 4096):
            yield payload[i : i + 4096]

    reply = http.post(
        f"{url}{REPORT}", content=chunks(), headers={**headers, "content-type": "application/json"}
    )
    assert reply.status_code == 413
    assert _state(http, url, run_id, headers) == before


def test_unknown_endpoint_is_a_json_404(http: httpx.Client, service_url: str) -> None:
    reply = http.get(f"{service_url}/v2/whatever")
    assert reply.status_code == 404
    assert reply.json()["error"]["code"] == "not_found"
