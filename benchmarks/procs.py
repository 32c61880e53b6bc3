"""Throwaway processes for the benchmarks: uvicorn apps on loopback (the redis-server is
:class:`local_processes.RedisServer`)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

from local_processes import free_port, wait_until

ROOT = Path(__file__).resolve().parents[1]


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
            env={"REDIS_URL": redis_url, "CURRICULUM_OPEN_MODE": "true"},
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
            ignore=(OSError, httpx.TransportError),
        )
