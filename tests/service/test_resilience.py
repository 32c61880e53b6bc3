"""Redis outages and restarts: 503 while down, recovery without a restart, nothing lost."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from service.settings import Settings
from tests.conftest import RedisProcess, ServiceProcess, ThreadedService, create_run

DISTS = ["a", "b", "c"]


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    server = RedisProcess(
        tmp_path / "redis", extra=["--appendonly", "yes", "--appendfsync", "always"]
    )
    server.start()
    yield server
    server.stop()


def test_redis_down_is_503_and_the_service_recovers(
    http: httpx.Client, own_redis: RedisProcess
) -> None:
    service = ThreadedService(
        Settings(_env_file=None).model_copy(
            update={"redis_url": own_redis.url, "redis_timeout_s": 1.0, "open_mode": True}
        )
    )
    service.start()
    try:
        url = service.url
        run, headers = create_run(http, url, DISTS)
        http.post(
            f"{url}/v1/runs/{run}/reports",
            json={"report_id": "1", "step": 0, "advantages": {"a": [1.0]}},
            headers=headers,
        )

        own_redis.stop()
        report = http.post(
            f"{url}/v1/runs/{run}/reports",
            json={"report_id": "2", "step": 1, "advantages": {"a": [1.0]}},
            headers=headers,
        )
        assert report.status_code == 503
        assert report.headers["Retry-After"] == "1"
        assert report.json()["error"]["code"] == "store_unavailable"
        assert (
            http.post(
                f"{url}/v1/runs/{run}/plan", json={"step": 1, "batch_size": 4}, headers=headers
            ).status_code
            == 503
        )
        assert http.get(f"{url}/readyz").status_code == 503
        assert http.get(f"{url}/healthz").status_code == 200

        own_redis.start()  # same port, same append-only file
        assert http.get(f"{url}/readyz").status_code == 200
        info = http.get(f"{url}/v1/runs/{run}", headers=headers).json()
        assert (
            info["stats"]["a"]["n"] == 1 and info["version"] == 1
        )  # the failed report left nothing
        retried = http.post(
            f"{url}/v1/runs/{run}/reports",
            json={"report_id": "2", "step": 1, "advantages": {"a": [1.0]}},
            headers=headers,
        )
        assert retried.json()["status"] == "applied"
        assert http.get(f"{url}/v1/runs/{run}", headers=headers).json()["stats"]["a"]["n"] == 2
        assert "curriculum_store_unavailable_total 3.0" in http.get(f"{url}/metrics").text
    finally:
        service.stop()


def test_embedded_redis_keeps_every_run_across_restarts(http: httpx.Client, tmp_path: Path) -> None:
    """`python -m service` with no REDIS_URL: stop it and start it on the same data folder."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CURRICULUM_REDIS_URL")}
    env["CURRICULUM_OPEN_MODE"] = "true"
    data = tmp_path / "data"
    service = ServiceProcess(env, ["--data-dir", str(data)])
    service.env = env
    service.start()
    try:
        run, headers = create_run(http, service.url, DISTS, run_id="persist")
        for i in range(5):
            http.post(
                f"{service.url}/v1/runs/{run}/reports",
                json={"report_id": str(i), "step": i, "advantages": {"a": [0.5] * 3, "c": [1.0]}},
                headers=headers,
            )
        plan = http.post(
            f"{service.url}/v1/runs/{run}/plan", json={"step": 9, "batch_size": 16}, headers=headers
        ).json()
        before = http.get(f"{service.url}/v1/runs/{run}", headers=headers).json()
    finally:
        service.stop()
    assert (data / "appendonly.aof").exists() or (data / "appendonlydir").exists()

    restarted = ServiceProcess(env, ["--data-dir", str(data)])
    restarted.env = env
    restarted.start()
    try:
        after = http.get(f"{restarted.url}/v1/runs/{run}", headers=headers).json()
        assert after == before
        assert after["stats"]["a"]["n"] == 15 and after["version"] == 5
        again = http.post(
            f"{restarted.url}/v1/runs/{run}/plan",
            json={"step": 9, "batch_size": 16},
            headers=headers,
        ).json()
        assert again == plan
    finally:
        restarted.stop()


def test_second_service_on_one_data_folder_is_refused(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "CURRICULUM_REDIS_URL")}
    env["CURRICULUM_OPEN_MODE"] = "true"
    data = tmp_path / "data"
    first = ServiceProcess(env, ["--data-dir", str(data)])
    first.env = env
    first.start()
    try:
        second = subprocess.run(
            [sys.executable, "-m", "service", "--port", "1", "--data-dir", str(data)],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert second.returncode == 2
        assert "in use by a running redis-server" in second.stderr
    finally:
        first.stop()


@pytest.mark.timeout(90)
def test_appendfsync_always_keeps_every_acknowledged_report_through_kill_9_of_redis() -> None:
    """8 writers report under load; redis-server gets SIGKILL and starts again from its
    append-only file: every report the service acknowledged is in the run's export."""
    from benchmarks.aof_loss import Trial, run_trial

    result = run_trial(Trial("always", load_s=2.0))
    assert result["acknowledged"] > 100
    assert result["lost"] == 0
    assert result["version_after_restart"] == result["in_file"] >= result["acknowledged"]


def test_the_power_cut_window_counts_reports_sent_after_the_last_fsync() -> None:
    """Worked example of what benchmarks/aof_loss.py reports: fsyncs at t = 1 and 3."""
    from benchmarks.aof_loss import unsynced_window

    # (sent, answered): two reports before the first fsync, three between, one after
    acked = [(0.1, 0.2), (0.5, 1.5), (1.2, 1.3), (1.4, 2.0), (2.5, 2.9), (3.2, 3.3)]
    window = unsynced_window(acked, [1.0, 3.0])
    # at risk at each answer: 0.2 -> 1 (no fsync yet), 1.3 -> 1 (sent at 1.2), 1.5 -> 1
    # (the one sent at 0.5 may have been written before the fsync at 1.0 began: the bound
    # is a lower one), 2.0 -> 2, 2.9 -> 3 (sent at 1.2, 1.4, 2.5), 3.3 -> 1 (sent at 3.2)
    assert window == {"max_reports": 3, "median_reports": 1.0, "max_gap_s": 2.0, "fsyncs": 2}


def test_an_exhausted_redis_pool_is_a_503_store_busy_not_unreachable(
    http: httpx.Client, own_redis: RedisProcess, start_service: Callable[..., str]
) -> None:
    """One connection to Redis, held by a request while Redis is stopped (SIGSTOP): a
    second request gets 503 store_busy at once, and the first completes once Redis runs."""
    url = start_service(redis_url=own_redis.url, redis_max_connections=1)
    run, headers = create_run(http, url, DISTS)
    with ThreadPoolExecutor(1) as pool:
        os.kill(own_redis.pid, signal.SIGSTOP)
        try:
            held = pool.submit(http.get, f"{url}/v1/runs/{run}", headers=headers)
            time.sleep(0.5)  # the first request now waits on the one connection
            busy = http.get(f"{url}/v1/runs/{run}", headers=headers)
        finally:
            os.kill(own_redis.pid, signal.SIGCONT)
        assert held.result(timeout=10).status_code == 200
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "1"
    error = busy.json()["error"]
    assert error["code"] == "store_busy"
    assert "all 1 connections" in error["message"] and "unreachable" not in error["message"]
