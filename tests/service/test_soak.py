"""Short soaks (``benchmarks/soak.py``): 8 runs x 4 ranks reporting every step through two
real service processes on one real Redis, readers polling, and a fault caused for real.
Each ends with every run's counts equal to its ranks' ledgers (nothing lost, nothing
counted twice); the long form is ``python -m benchmarks.soak`` (docs/reliability.md)."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import pytest

from benchmarks.soak import Soak, run_soak

SHORT = Soak(duration_s=14.0, fault_at_s=5.0)


def _soak(caplog: pytest.LogCaptureFixture, **changes: Any) -> dict[str, Any]:
    caplog.set_level(logging.ERROR, logger="trainer_client")
    result = run_soak(replace(SHORT, **changes), log=lambda message: None)
    assert result["problems"] == []
    for run in result["runs"].values():  # every run made progress, and all of it counts
        assert min(run["steps"]) >= 20 and run["counted"] == run["sent"]
    assert result["reader_answers"] > 50
    return result


@pytest.mark.timeout(120)
def test_script_flush_mid_run_changes_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """SCRIPT FLUSH under load: the service loads its scripts again; no 5xx, no fallback."""
    result = _soak(caplog, fault="script-flush")
    flushed, again = (event["event"] for event in result["events"])
    assert flushed.endswith(" 0 left)") and not flushed.startswith("SCRIPT FLUSH (0 ")
    assert int(again.split()[0]) >= 2  # at least report and plan were loaded again
    assert set(result["report_statuses"]) == {"plan from service", "report applied"}
    assert result["client_http"].keys() == {"200", "201"}


@pytest.mark.timeout(120)
def test_kill_9_of_one_replica_under_load(caplog: pytest.LogCaptureFixture) -> None:
    """SIGKILL of one of the two service processes: the clients that had it first move to
    the other at once (none falls back to local scheduling); nothing lost or doubled."""
    result = _soak(caplog, fault="kill")
    assert result["events"][0]["event"].startswith("SIGKILL")
    assert result["client_http"]["transport error"] >= 1  # the kill was felt
    # a report the killed replica applied before it could answer is a duplicate on the other
    assert set(result["report_statuses"]) - {"report duplicate"} == {
        "plan from service",
        "report applied",
    }
    assert not {key for key in result["client_http"] if key.startswith("5")}


@pytest.mark.timeout(150)
def test_redis_stopped_for_10_s_under_load(caplog: pytest.LogCaptureFixture) -> None:
    """SIGSTOP of redis-server for 10 s: 503s with Retry-After, the clients buffer, the same
    service processes serve again after SIGCONT, and the replays count once each."""
    result = _soak(caplog, fault="redis-stop", duration_s=22.0, redis_stop_s=10.0)
    resumed_at = result["events"][1]["t_s"]
    assert result["client_http"]["503"] > 0  # every 5xx carried Retry-After: problems()
    assert result["report_statuses"]["report buffered"] > 0
    stopped_at = result["events"][0]["t_s"]
    assert stopped_at < result["planned_locally_from_s"][0]
    assert resumed_at < result["back_online_from_s"][0]  # every rank back online, after
    assert result["last_plan_from_service_s"] > resumed_at
