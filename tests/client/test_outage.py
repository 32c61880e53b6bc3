"""Outages: local plans, buffered reports, replay in order, and nothing counted twice."""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from curriculum_core import DumpUcb, RunModel, compose_batch, plan_rng, weights
from trainer_client import CurriculumClient, LocalService

if TYPE_CHECKING:
    from tests.conftest import RedisProcess

NAMES = ["easy", "medium", "hard"]


def _advantages(plan_counts: dict[str, int], step: int) -> dict[str, list[float]]:
    """Deterministic signed advantages, one per planned slot, different per step."""
    rng = np.random.default_rng(step)
    return {name: rng.normal(size=k).round(3).tolist() for name, k in plan_counts.items()}


def _messages(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


def test_outage_loses_nothing_and_counts_nothing_twice(
    own_service: LocalService, caplog: pytest.LogCaptureFixture
) -> None:
    """Kill the service mid-run, keep training, restart it: the counts are exactly right."""
    caplog.set_level(logging.INFO, logger="trainer_client")
    reported: Counter[str] = Counter()
    everything: list[dict[str, list[float]]] = []
    client = CurriculumClient.create_or_attach(
        own_service.url,
        NAMES,
        run_id="outage",
        seed=11,
        retries=1,
        backoff=0.01,
        timeout=2.0,
        probe_initial_s=0.2,
        probe_max_s=0.4,
    )
    with client:

        def train_step(step: int) -> tuple[str, str]:
            plan = client.plan(step, 12)
            advantages = _advantages(plan.counts, step)
            result = client.report(step, advantages)
            reported.update({name: len(v) for name, v in advantages.items()})
            everything.append(advantages)
            return plan.source, result.status

        assert [train_step(s) for s in range(3)] == [("service", "applied")] * 3

        own_service.kill()
        # The first local plan is the service's math on everything reported so far.
        model = RunModel(NAMES)
        for i, advantages in enumerate(everything):
            model.apply(f"reference-{i}", advantages)
        p = weights(DumpUcb(), model.stats())
        expected = [NAMES[i] for i in compose_batch(p, 12, plan_rng(11, 3, 12))]
        started = time.monotonic()
        assert client.plan(3, 12).assignment == expected
        assert [train_step(s) for s in range(3, 9)] == [("local", "buffered")] * 6
        assert time.monotonic() - started < 3.0, "a down service must cost a step little"
        assert client.buffered == 6
        assert len(_messages(caplog, "unreachable")) == 1

        own_service.start()
        time.sleep(0.5)  # past the longest cool-down
        assert [train_step(s) for s in range(9, 12)] == [("service", "applied")] * 3
        assert client.buffered == 0

        info = client.run_info()
        assert {name: s["n"] for name, s in info["stats"].items()} == {
            name: reported[name] for name in NAMES
        }
        assert info["version"] == 12
        assert len(_messages(caplog, "unreachable")) == 1
        recovered = _messages(caplog, "reachable again")
        assert len(recovered) == 1 and "replayed 6 buffered report(s)" in recovered[0]
        client.delete()


def test_buffered_reports_survive_on_disk_and_are_replayed_by_a_new_client(
    service_url: str, dead_url: str, tmp_path: Path
) -> None:
    """Reports buffered to buffer_path are reloaded by the next client and replayed once."""
    buffer_path = tmp_path / "reports.jsonl"
    with CurriculumClient.create_or_attach(service_url, NAMES, run_id="on-disk") as owner:
        token = owner.token
    with CurriculumClient(
        dead_url, "on-disk", token, retries=0, buffer_path=buffer_path, distributions=NAMES
    ) as crashed:
        for step in range(3):
            assert crashed.report(step, {"hard": [1.0] * (step + 1)}).status == "buffered"
    assert len(buffer_path.read_text().splitlines()) == 3

    with CurriculumClient(service_url, "on-disk", token, buffer_path=buffer_path) as resumed:
        assert resumed.buffered == 3
        info = resumed.run_info()
        assert info["stats"]["hard"]["n"] == 1 + 2 + 3 and info["version"] == 3
        assert not buffer_path.exists()
        # The replayed reports kept their ids: reporting step 0 again is a duplicate.
        assert resumed.report(0, {"hard": [1.0]}).status == "duplicate"
        assert resumed.run_info()["stats"]["hard"]["n"] == 6
        resumed.delete()


def test_a_full_buffer_drops_the_oldest_report(dead_url: str, tmp_path: Path) -> None:
    """max_buffer bounds the buffer, in memory and on disk; the newest reports are kept."""
    buffer_path = tmp_path / "reports.jsonl"
    with CurriculumClient(
        dead_url, "tiny", "t", retries=0, buffer_path=buffer_path, max_buffer=2
    ) as client:
        for step in range(4):
            client.report(step, {"easy": [float(step)]})
        assert client.buffered == 2
    lines = buffer_path.read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [2, 3]


def test_503_is_retried_after_retry_after_then_plans_fall_back(
    own_redis: RedisProcess, tmp_path: Path
) -> None:
    """With Redis down the service answers 503 + Retry-After: the client waits, retries,
    then schedules locally; once Redis is back the service plans again."""
    with (
        LocalService(tmp_path / "svc", env={"REDIS_URL": own_redis.url}) as svc,
        CurriculumClient.create_or_attach(
            svc.url, NAMES, run_id="redis-down", retries=1, backoff=0.01, probe_initial_s=0.0
        ) as client,
    ):
        own_redis.stop()
        started = time.monotonic()
        plan = client.plan(0, 4)
        assert plan.source == "local"
        assert time.monotonic() - started >= 1.0  # the service's Retry-After: 1
        own_redis.start()
        assert client.plan(1, 4).source == "service"
        assert client.run_info()["version"] == 0


def test_a_stateful_strategy_goes_on_offline_from_its_last_state(
    own_service: LocalService,
) -> None:
    """sec's state is not reset by an outage: offline weights are the service's, and a
    buffered report moves them as the service moves them once it is replayed."""
    reports = [
        {"hard": [1.0, -1.0], "easy": [0.0, 0.0]},
        {"hard": [0.5, -0.5]},
        {"medium": [0.2, -0.2], "hard": [1.5, -1.5]},
        {"medium": [2.0, -2.0]},
    ]
    reference = RunModel(NAMES, {"name": "sec"}, seed=5)
    with CurriculumClient.create_or_attach(
        own_service.url, NAMES, run_id="sec-offline", strategy={"name": "sec"}, seed=5,
        retries=0, probe_initial_s=0.1, probe_max_s=0.2,
    ) as client:  # fmt: skip
        for step, advantages in enumerate(reports[:3]):
            assert client.report(step, advantages).status == "applied"
            reference.apply(f"sec-offline/step-{step}/rank-0", advantages)
        online = client.weights()
        assert online["hard"] > 0.5  # far from sec's uniform start
        own_service.kill()
        assert client.weights() == pytest.approx(online, abs=1e-9)
        assert client.report(3, reports[3]).status == "buffered"
        reference.apply("sec-offline/step-3/rank-0", reports[3])
        assert client.weights() == pytest.approx(reference.named_weights(), abs=1e-9)
        own_service.start()
        assert client.flush(10.0)
        assert client.run_info()["weights"] == pytest.approx(reference.named_weights(), abs=1e-9)
        client.delete()


def test_a_checkpoint_of_other_distributions_is_refused_before_anything_is_owed(
    dead_url: str, tmp_path: Path
) -> None:
    """restore() checks the snapshot against the run locally: a wrong one raises and the
    buffer file keeps what it held."""
    buffer_path = tmp_path / "owed.jsonl"
    with CurriculumClient(
        dead_url, "mismatch", "t", retries=0, buffer_path=buffer_path, distributions=NAMES
    ) as client:
        assert client.report(0, {"easy": [1.0]}).status == "buffered"
        other = RunModel(["x", "y"]).snapshot()
        with pytest.raises(ValueError, match="distributions"):
            client.restore(other)
        assert client.buffered == 1
        state = client.checkpoint()
    assert state["source"] == "local" and [p["step"] for p in state["pending"]] == [0]
    assert [json.loads(line)["step"] for line in buffer_path.read_text().splitlines()] == [0]
