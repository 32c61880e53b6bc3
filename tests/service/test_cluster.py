"""The core of the suite against a real 3-node Redis Cluster started on loopback ports.

Passing here shows that every script's keys share one hash slot (Redis Cluster refuses a
script whose keys span slots) and that the service runs sharded by run.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RedisProcess, free_port_below, redis_binary, wait_until
from tests.service.test_bad_input import run, test_bad_input_is_refused_and_changes_nothing  # noqa: F401
from tests.service.test_concurrency import (  # noqa: F401
    test_concurrent_reports_through_two_processes_lose_nothing,
    two_services,
)
from tests.service.test_plans import (  # noqa: F401
    test_compositions_follow_the_weights,
    test_first_request_fixes_the_plan_across_replicas,
    test_old_plans_expire,
)
from tests.service.test_reports import (  # noqa: F401
    test_history_keeps_one_entry_per_step,
    test_same_report_id_counts_once,
    test_weights_match_the_math_run_in_process,
)
from tests.service.test_run_listing import (  # noqa: F401
    operator_url,
    test_a_run_shows_each_ranks_last_report_and_each_distributions_last_step,
    test_the_operator_pages_through_every_run_once,
)
from tests.service.test_runs_api import (  # noqa: F401
    test_create_returns_a_token_once,
    test_recreated_run_is_not_served_from_a_stale_cache,
)
from tests.service.test_snapshots import test_export_import_round_trip  # noqa: F401

pytestmark = pytest.mark.cluster


class Cluster:
    """Three master nodes, no replicas, slots spread by redis-cli."""

    def __init__(self, workdir: Path) -> None:
        self.nodes = [
            RedisProcess(workdir / f"node{i}", port=free_port_below(55_000),
                         extra=["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"])
            for i in range(3)
        ]  # fmt: skip

    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        for node in self.nodes:
            node.start()
        addresses = [f"127.0.0.1:{n.port}" for n in self.nodes]
        subprocess.run(
            [redis_binary("redis-cli"), "--cluster", "create", *addresses,
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        wait_until(self._ok, timeout_s=30, what="the cluster to be ready")

    def _ok(self) -> bool:
        import redis

        for node in self.nodes:
            client = redis.Redis(port=node.port)
            try:
                info = client.execute_command("CLUSTER INFO")
                state = info.get("cluster_state") if isinstance(info, dict) else None
                if state not in ("ok", b"ok"):
                    return False
            finally:
                client.close()
        return True

    def flush(self) -> None:
        for node in self.nodes:
            node.flush()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    redis_binary("redis-cli")  # skips when the cluster tooling is missing
    nodes = Cluster(tmp_path_factory.mktemp("cluster"))
    nodes.start()
    yield nodes
    nodes.stop()


@pytest.fixture
def redis_url(cluster: Cluster) -> str:
    cluster.flush()
    return cluster.nodes[0].url


@pytest.fixture
def store_settings(redis_url: str) -> dict[str, Any]:
    return {"redis_url": redis_url, "redis_cluster": True}


@pytest.fixture
def service_env(redis_url: str) -> dict[str, str]:
    return {
        "REDIS_URL": redis_url,
        "CURRICULUM_REDIS_CLUSTER": "true",
        "CURRICULUM_OPEN_MODE": "true",
    }


def test_runs_spread_over_the_nodes(cluster: Cluster) -> None:
    """Different runs hash to different slots, and all of one run's keys to one slot."""
    import redis

    from service.store.keys import run_keys

    client = redis.Redis(port=cluster.nodes[0].port)
    try:
        slots = {
            run: {client.execute_command("CLUSTER KEYSLOT", key) for key in run_keys(run)}
            for run in [f"run-{i}" for i in range(20)]
        }
    finally:
        client.close()
    assert all(len(s) == 1 for s in slots.values())
    assert len({next(iter(s)) for s in slots.values()}) > 10
