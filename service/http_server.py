"""The HTTP server the service runs under: uvicorn with its httptools parser, guarded
against clients that hold connections or memory.

uvicorn alone reads request headers without a size limit (httptools has none), waits for
the rest of a half-sent request forever (its keep-alive timer starts only after a
response), and accepts connections until the process runs out of file descriptors. The
protocol here adds, per connection:

- a cap on the bytes of a request's line and headers: past it the client gets 431 and the
  connection is closed, so no header is buffered beyond the cap (plus one read);
- a deadline for a request's headers, from the moment the connection is made or the
  request's first byte arrives (a slowloris client is closed when it runs out), and one for
  its body, from the end of the headers;
- a cap on open connections: past it a new connection gets 503 and is closed at once,
  before it holds a descriptor any longer.

Idle keep-alive connections are closed by uvicorn's own ``timeout_keep_alive``.
:func:`server_config` builds the one uvicorn configuration that ``python -m service`` and
the tests run.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, ClassVar

import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from service.settings import Settings

log = logging.getLogger("service.http")


@dataclass(frozen=True)
class ConnectionLimits:
    """What one connection may hold: see the module doc. Seconds and bytes."""

    max_connections: int
    max_header_bytes: int
    header_timeout_s: float
    body_timeout_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        return cls(
            max_connections=settings.max_connections,
            max_header_bytes=settings.max_header_bytes,
            header_timeout_s=settings.header_timeout_s,
            body_timeout_s=settings.body_timeout_s,
        )


class _HeadersTooLarge(Exception):
    """Raised from a parser callback to stop parsing; answered with 431."""


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits of :class:`ConnectionLimits`.

    Subclasses made by :func:`guarded_protocol` set ``limits``."""

    limits: ClassVar[ConnectionLimits]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._reading_headers = False
        self._header_bytes = 0
        self._refusal: tuple[int, str] | None = None

    # -- the connection ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            log.warning(
                "refused a connection: %d are open (CURRICULUM_MAX_CONNECTIONS)",
                self.limits.max_connections,
            )
            self._refuse(503, "too many open connections; retry shortly")
            return
        self._arm(self.limits.header_timeout_s, "the request's headers")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._reading_headers and not self.transport.is_closing():
            # every byte read while a request's headers are incomplete is a header byte
            # (a read that completes them is checked exactly in on_headers_complete)
            self._header_bytes += len(data)
            if self._header_bytes > self.limits.max_header_bytes:
                self._refuse(431, self._too_large())

    def send_400_response(self, msg: str) -> None:
        if self._refusal is not None:
            self._refuse(*self._refusal)
        else:
            super().send_400_response(msg)

    # -- parser callbacks ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._reading_headers = True
        self._header_bytes = 0
        if self._deadline is None:  # a later request on a kept-alive connection
            self._arm(self.limits.header_timeout_s, "the request's headers")

    def on_headers_complete(self) -> None:
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.limits.max_header_bytes:
            self._refusal = (431, self._too_large())
            raise _HeadersTooLarge
        self._reading_headers = False
        self._disarm()
        self._arm(self.limits.body_timeout_s, "the request's body")
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    # -- helpers -------------------------------------------------------------------------

    def _too_large(self) -> str:
        return (
            f"request headers over {self.limits.max_header_bytes} bytes "
            "(CURRICULUM_MAX_HEADER_BYTES)"
        )

    def _arm(self, seconds: float, what: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._timed_out, seconds, what)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self, seconds: float, what: str) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            log.info("closed a connection from %s: %s took over %g s", self.client, what, seconds)
            self.transport.close()

    def _refuse(self, status: int, message: str) -> None:
        """Answer ``status`` with ``message`` and close the connection."""
        body = message.encode("ascii")
        self.transport.write(
            b"".join(
                [
                    STATUS_LINE[status],
                    b"content-type: text/plain; charset=utf-8\r\n",
                    b"content-length: %d\r\n" % len(body),
                    b"connection: close\r\n\r\n",
                    body,
                ]
            )
        )
        self._disarm()
        self.transport.close()


def guarded_protocol(limits: ConnectionLimits) -> type[GuardedHttpProtocol]:
    """The protocol class uvicorn instantiates per connection, with ``limits``."""
    return type("GuardedHttpProtocol", (GuardedHttpProtocol,), {"limits": limits})


def server_config(app: Any, settings: Settings) -> uvicorn.Config:
    """The uvicorn configuration the service runs with: its address, its log level, and
    the limits of :class:`ConnectionLimits` and ``keep_alive_timeout_s``."""
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        http=guarded_protocol(ConnectionLimits.from_settings(settings)),
        timeout_keep_alive=settings.keep_alive_timeout_s,  # type: ignore[arg-type]
        timeout_graceful_shutdown=10,
    )
