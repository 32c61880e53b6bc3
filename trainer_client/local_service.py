"""Run the curriculum service as a child process on this machine (trainer CLI, tests).

The service runs as ``python -m service`` in a subprocess, so the trainer process imports
none of it (no FastAPI, no Redis client). Without ``REDIS_URL`` in ``env`` it keeps its
state in an embedded Redis under ``data_dir`` (a temporary folder, removed on exit, when
none is given).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import httpx

from local_processes import free_port, wait_until

_INHERITED_REDIS_VARS = ("REDIS_URL", "CURRICULUM_REDIS_URL")


class LocalServiceError(RuntimeError):
    """The service process did not become ready; the message ends with its log's tail."""


class LocalService:
    """``python -m service`` on 127.0.0.1, started on enter and stopped on exit.

    ``port`` defaults to a free one. ``env`` adds environment variables for the service
    (e.g. ``REDIS_URL`` to use a running Redis, ``ADMIN_TOKEN``); ``REDIS_URL`` inherited
    from this process is dropped, so the embedded Redis is used unless ``env`` names one.
    It runs in open mode (``CURRICULUM_OPEN_MODE=true``: anyone on this machine may create
    runs) unless ``env`` or this process's environment says otherwise; an operator token
    in either wins over it.
    The service's output goes to ``service.log`` in ``data_dir``.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        *,
        ready_timeout_s: float = 30.0,
    ) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if data_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="curriculum-")
            data_dir = self._tmp.name
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.data_dir / "service.log"
        self.ready_timeout_s = ready_timeout_s
        self._env = {k: v for k, v in os.environ.items() if k not in _INHERITED_REDIS_VARS}
        self._env.update(env or {})
        # a child process on loopback for one trainer: open mode unless told otherwise
        self._env.setdefault("CURRICULUM_OPEN_MODE", "true")
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def _log_tail(self, chars: int = 3000) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return self.log_path.read_text(errors="replace")[-chars:].strip() or "(empty log)"

    def start(self) -> Self:
        """Start the process and wait until ``/readyz`` answers 200."""
        if self._process is not None:
            raise LocalServiceError(f"the service at {self.url} is already running")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [
                sys.executable, "-m", "service",
                "--host", "127.0.0.1",
                "--port", str(self.port),
                "--data-dir", str(self.data_dir / "redis"),
                "--log-level", "warning",
            ],
            env=self._env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        with httpx.Client(base_url=self.url, timeout=1.0) as http:
            try:
                wait_until(
                    lambda: self._ready(http),
                    f"the service at {self.url}",
                    self.ready_timeout_s,
                    ignore=(httpx.TransportError,),
                )
            except TimeoutError:
                self.stop()
                raise LocalServiceError(
                    f"the service at {self.url} was not ready within "
                    f"{self.ready_timeout_s:.0f} s; its log ({self.log_path}) ends with:\n"
                    f"{self._log_tail()}"
                ) from None
        return self

    def _ready(self, http: httpx.Client) -> bool:
        """Whether ``/readyz`` answers 200; :class:`LocalServiceError` if the process died."""
        assert self._process is not None
        if self._process.poll() is not None:
            code = self._process.returncode
            self._close_log()
            self._process = None
            raise LocalServiceError(
                f"the service exited with code {code} while starting; its log "
                f"({self.log_path}) ends with:\n{self._log_tail()}"
            )
        return http.get("/readyz").status_code == 200

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop the process (SIGTERM, then SIGKILL after ``timeout_s``) and wait for it."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._close_log()

    def kill(self) -> None:
        """Kill the process at once (SIGKILL), as a crash would; ``start`` may follow."""
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            process.wait()
        self._close_log()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
