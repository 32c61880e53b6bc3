"""A client given several replicas: a dead or failing one is skipped, and a report moved to
another replica is never counted twice."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from service.settings import Settings
from tests.conftest import ThreadedService, free_port
from trainer_client import AsyncCurriculumClient, CurriculumClient, LocalService

NAMES = ["easy", "medium", "hard"]


class Recorder(httpx.HTTPTransport):
    """Forwards to the real replicas and records ``(port, method, path)`` of each request;
    the first ``lose`` report answers from ``lose_port`` are dropped after the replica
    applied them (as when the answer is lost on the network)."""

    def __init__(self, lose_port: int = 0, lose: int = 0) -> None:
        super().__init__()
        self.lose_port, self.lose = lose_port, lose
        self.sent: list[tuple[int, str, str]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append((request.url.port or 0, request.method, request.url.path))
        response = super().handle_request(request)
        if self.lose and request.url.port == self.lose_port and "/reports" in request.url.path:
            self.lose -= 1
            response.read()
            response.close()
            raise httpx.ReadTimeout("answer lost", request=request)
        return response


@pytest.fixture
def failing_replica() -> Iterator[str]:
    """A real service whose Redis is unreachable: every run call answers 503."""
    dead_redis = f"redis://127.0.0.1:{free_port()}/0"
    service = ThreadedService(
        Settings(_env_file=None).model_copy(
            update={"redis_url": dead_redis, "redis_timeout_s": 0.5, "open_mode": True}
        )
    )
    service.start()
    yield service.url
    service.stop()


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def test_one_string_with_commas_names_several_replicas() -> None:
    with CurriculumClient(" http://a:1/ ,http://b:2", "r", "t") as client:
        assert client.base_urls == ["http://a:1", "http://b:2"]
    with CurriculumClient(["http://a:1"], "r", "t") as client:
        assert client.base_urls == ["http://a:1"]
    with pytest.raises(ValueError, match="at least one base URL"):
        CurriculumClient(" , ", "r", "t")


def test_a_dead_replica_is_skipped_and_requests_stay_with_the_live_one(
    service_url: str, dead_url: str
) -> None:
    recorder = Recorder()
    with CurriculumClient.create_or_attach(
        [dead_url, service_url], NAMES, run_id="replicas-dead", transport=recorder, retries=0
    ) as client:
        assert client.plan(0, 8).source == "service"
        assert client.report(0, {"hard": [1.0, -1.0]}).status == "applied"
        assert client.online
        ports = [port for port, _, _ in recorder.sent]
        # only the first request tried the dead replica; none went there again
        assert ports[0] == _port(dead_url) and ports.count(_port(dead_url)) == 1
        assert set(ports[1:]) == {_port(service_url)}
        assert client.run_info()["stats"]["hard"]["n"] == 2
        client.delete()


def test_a_replica_answering_503_is_skipped(service_url: str, failing_replica: str) -> None:
    recorder = Recorder()
    with CurriculumClient.create_or_attach(
        [failing_replica, service_url], NAMES, run_id="replicas-503", transport=recorder,
        retries=0,
    ) as client:  # fmt: skip
        assert client.report(0, {"easy": [0.5]}).status == "applied"
        assert client.plan(1, 4).source == "service"
        assert recorder.sent[0][0] == _port(failing_replica)
        assert {port for port, _, _ in recorder.sent[1:]} == {_port(service_url)}
        client.delete()


def test_a_report_whose_answer_was_lost_is_counted_once_on_another_replica(
    service_url: str, own_service: LocalService
) -> None:
    """Replica A applies the report but its answer is lost; the retry goes to replica B,
    which shares A's Redis: a duplicate, counted once."""
    first = own_service.url
    recorder = Recorder(lose_port=_port(first), lose=1)
    with CurriculumClient.create_or_attach(
        [first, service_url], NAMES, run_id="replicas-lost", transport=recorder, retries=0
    ) as client:
        result = client.report(0, {"medium": [1.0, 0.5, -0.5]})
        assert result.status == "duplicate" and result.version == 1
        reports = [port for port, _, path in recorder.sent if path.endswith("/reports")]
        assert reports == [_port(first), _port(service_url)]
        info = client.run_info()
        assert info["stats"]["medium"]["n"] == 3 and info["version"] == 1
        client.delete()


def test_the_async_client_moves_on_too(service_url: str, dead_url: str) -> None:
    async def scenario() -> tuple[str, str, int]:
        async with await AsyncCurriculumClient.create_or_attach(
            f"{dead_url},{service_url}", NAMES, run_id="replicas-async", retries=0
        ) as client:
            plan = await client.plan(0, 4)
            report = await client.report(0, {"easy": [1.0]})
            n = (await client.run_info())["stats"]["easy"]["n"]
            await client.delete()
            return plan.source, report.status, n

    assert asyncio.run(scenario()) == ("service", "applied", 1)


def test_every_replica_down_is_an_outage_tried_once_per_replica(dead_url: str) -> None:
    other = f"http://127.0.0.1:{free_port()}"
    recorder = Recorder()
    with CurriculumClient(
        [dead_url, other], "down", "t", distributions=NAMES, transport=recorder, retries=1,
        backoff=0.01,
    ) as client:  # fmt: skip
        assert client.plan(0, 4).source == "local"
        assert not client.online
        # two rounds (1 + retries), each trying both replicas
        assert [port for port, _, _ in recorder.sent] == [_port(dead_url), _port(other)] * 2
