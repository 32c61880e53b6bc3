"""A refused token costs the same work whether the run exists or not: no token can time
which run ids are taken. Checked by counting the work, not by timing it."""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

import service.auth
from service.store.redis_store import RedisStore
from tests.conftest import create_run

WRONG = {"Authorization": "Bearer rct_not-this-runs-token"}


@pytest.fixture
def work(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts token hashes, digest comparisons and store lookups of a run's meta."""
    counts: Counter[str] = Counter()

    def counted(name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            counts[name] += 1
            return call(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(
        service.auth, "hashlib", SimpleNamespace(sha256=counted("hash", hashlib.sha256))
    )
    monkeypatch.setattr(
        service.auth,
        "hmac",
        SimpleNamespace(compare_digest=counted("compare", hmac.compare_digest)),
    )
    monkeypatch.setattr(RedisStore, "load_meta", counted("lookup", RedisStore.load_meta))
    return counts


def _work_of(
    http: httpx.Client, url: str, counts: Counter[str], headers: dict[str, str]
) -> tuple[int, str | None, dict[str, int]]:
    """The status and error message of a GET, and the work counted while it was served."""
    counts.clear()
    reply = http.get(url, headers=headers)
    message = reply.json()["error"]["message"] if reply.is_error else None
    return reply.status_code, message, dict(counts)


def test_a_wrong_token_costs_the_same_for_a_cached_run_and_a_missing_one(
    http: httpx.Client, start_service: Callable[..., str], work: Counter[str]
) -> None:
    base = start_service()
    run, headers = create_run(http, base, ["a"], run_id="taken")
    assert http.get(f"{base}/v1/runs/{run}", headers=headers).status_code == 200  # cached now
    taken = _work_of(http, f"{base}/v1/runs/taken", work, WRONG)
    missing = _work_of(http, f"{base}/v1/runs/free", work, WRONG)
    assert taken[0] == missing[0] == 403
    assert taken[1] is not None and missing[1] is not None
    assert taken[1] == missing[1].replace("'free'", "'taken'")
    assert taken[2] == missing[2] == {"hash": 1, "compare": 2, "lookup": 1}
    # a run's own token on a cached run: one hash, one comparison, no lookup
    assert _work_of(http, f"{base}/v1/runs/taken/history", work, headers) == (
        200,
        None,
        {"hash": 1, "compare": 1},
    )


def test_a_run_recreated_by_another_replica_takes_its_new_token_at_once(
    http: httpx.Client, start_service: Callable[..., str]
) -> None:
    """The replica that cached the old run's token looks the run up again on a mismatch."""
    first, second = start_service(), start_service()
    run, old = create_run(http, first, ["a"], run_id="again")
    assert http.get(f"{second}/v1/runs/{run}", headers=old).status_code == 200
    assert http.delete(f"{first}/v1/runs/{run}", headers=old).status_code == 200
    _, new = create_run(http, first, ["a"], run_id="again")
    assert http.get(f"{second}/v1/runs/{run}", headers=new).status_code == 200
    assert http.get(f"{second}/v1/runs/{run}", headers=old).status_code == 403
