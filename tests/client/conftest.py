"""Fixtures of the client tests: a throwaway redis-server and a real service process on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from local_processes import free_port
from tests.conftest import RedisProcess
from trainer_client.local_service import LocalService


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a redis-server shared by the whole session."""
    server = RedisProcess(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server.url
    server.stop()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    """A redis-server of this test alone, keeping its data when stopped and started again."""
    server = RedisProcess(tmp_path / "redis", extra=["--appendonly", "yes"])
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def service_url(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a service process (``python -m service``) keeping its state in ``redis_url``."""
    with LocalService(tmp_path_factory.mktemp("service"), env={"REDIS_URL": redis_url}) as svc:
        yield svc.url


@pytest.fixture
def own_service(redis_url: str, tmp_path: Path) -> Iterator[LocalService]:
    """A service process of this test alone (on the shared Redis), free to be killed."""
    svc = LocalService(tmp_path / "service", env={"REDIS_URL": redis_url})
    with svc:
        yield svc


@pytest.fixture
def dead_url() -> str:
    """A loopback URL on which nothing listens."""
    return f"http://127.0.0.1:{free_port()}"
