"""What one HTTP connection may hold: header bytes, time to send a request, idle time, and
how many connections are open. Each test talks to a real server on loopback through a raw
socket, with short limits set through the settings."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import httpx

from tests.conftest import ServiceProcess

REQUEST_HEAD = b"GET /healthz HTTP/1.1\r\nHost: test\r\n"


@contextmanager
def _connect(url: str) -> Iterator[socket.socket]:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    try:
        yield sock
    finally:
        sock.close()


def _read_until_closed(sock: socket.socket, timeout_s: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and the seconds that
    took; ``AssertionError`` if it is still open after ``timeout_s``."""
    start = time.monotonic()
    sock.settimeout(timeout_s)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        raise AssertionError(f"the connection was still open after {timeout_s} s") from None
    return received, time.monotonic() - start


def _send_until_refused(sock: socket.socket, data: bytes, chunk: int = 65536) -> int:
    """Send ``data`` in chunks until the server stops taking it; the bytes sent."""
    sent = 0
    sock.settimeout(5)
    try:
        while sent < len(data):
            sock.sendall(data[sent : sent + chunk])
            sent += chunk
    except (BrokenPipeError, ConnectionResetError, TimeoutError):
        pass
    return sent


def test_headers_over_the_cap_get_431_and_the_connection_is_closed(
    start_service: Callable[..., str],
) -> None:
    """A header just over the cap, sent whole, is answered 431; a 64 MiB one is cut off
    long before its end (the server reads no further than the cap)."""
    url = start_service(max_header_bytes=4096)
    with _connect(url) as sock:
        sock.sendall(REQUEST_HEAD + b"X-Big: " + b"a" * 5000 + b"\r\n\r\n")
        reply, _ = _read_until_closed(sock, 5)
    assert reply.startswith(b"HTTP/1.1 431 ")
    assert reply.endswith(b"request headers over 4096 bytes (CURRICULUM_MAX_HEADER_BYTES)")

    huge = REQUEST_HEAD + b"X-Big: " + b"a" * (64 * 2**20)
    with _connect(url) as sock:
        sent = _send_until_refused(sock, huge)
        reply, _ = _read_until_closed(sock, 5)
    assert sent < 32 * 2**20  # the server closed the connection: the rest was never taken
    assert reply == b"" or reply.startswith(b"HTTP/1.1 431 ")
    # headers within the cap pass
    with httpx.Client() as http:
        assert http.get(f"{url}/healthz", headers={"X-Ok": "a" * 3000}).status_code == 200


def test_a_request_sent_byte_by_byte_is_closed_at_the_header_deadline(
    start_service: Callable[..., str],
) -> None:
    """Slowloris: a byte every 0.2 s keeps the connection busy but never completes the
    headers; the deadline counts from the connection, so it is closed after about 1 s."""
    url = start_service(header_timeout_s=1.0)
    with _connect(url) as sock:
        start = time.monotonic()
        sock.sendall(REQUEST_HEAD)
        try:
            for _ in range(25):  # 5 s of trickling, far past the deadline
                sock.sendall(b"X")
                time.sleep(0.2)
        except (BrokenPipeError, ConnectionResetError):
            pass
        reply, _ = _read_until_closed(sock, 5)
        elapsed = time.monotonic() - start
    assert reply == b""  # closed without an answer
    assert 0.9 < elapsed < 2.5


def test_a_connection_that_sends_nothing_is_closed_at_the_header_deadline(
    start_service: Callable[..., str],
) -> None:
    url = start_service(header_timeout_s=1.0)
    with _connect(url) as sock:
        reply, took = _read_until_closed(sock, 5)
    assert reply == b"" and 0.9 < took < 2.5


def test_a_half_sent_body_is_closed_at_the_body_deadline(
    start_service: Callable[..., str],
) -> None:
    """Headers that promise 100 bytes, then 10: the connection is closed after the body
    deadline (1 s), not held open for the other 90."""
    url = start_service(body_timeout_s=1.0)
    with _connect(url) as sock:
        sock.sendall(
            b"POST /v1/runs HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n" + b'{"run_id":'
        )
        reply, took = _read_until_closed(sock, 5)
    assert b" 201 " not in reply and 0.9 < took < 2.5


def test_an_idle_kept_alive_connection_is_closed_after_the_keep_alive_timeout(
    start_service: Callable[..., str],
) -> None:
    url = start_service(keep_alive_timeout_s=0.5)
    with _connect(url) as sock:
        sock.sendall(REQUEST_HEAD + b"\r\n")
        reply, took = _read_until_closed(sock, 5)
    assert reply.startswith(b"HTTP/1.1 200 ") and took < 1.5


def test_connections_past_the_cap_get_503_and_idle_ones_are_freed(
    start_service: Callable[..., str],
) -> None:
    """With room for 3 connections, 3 idle ones fill it: a fourth gets 503 and is closed at
    once. When the idle ones reach the header deadline they are closed, and the service
    answers again."""
    url = start_service(max_connections=3, header_timeout_s=1.5)
    with _connect(url) as a, _connect(url) as b, _connect(url) as c:
        time.sleep(0.2)  # the server has taken all three
        with _connect(url) as refused:
            reply, took = _read_until_closed(refused, 5)
        assert reply.startswith(b"HTTP/1.1 503 ") and took < 1.0
        assert reply.endswith(b"too many open connections; retry shortly")
        for idle in (a, b, c):
            assert _read_until_closed(idle, 5)[0] == b""
    with httpx.Client() as http:
        assert http.get(f"{url}/healthz").status_code == 200


def test_python_m_service_runs_the_guarded_server(service_env: dict[str, str]) -> None:
    """The limits hold in the server ``python -m service`` runs, set by environment."""
    service = ServiceProcess({**service_env, "CURRICULUM_MAX_HEADER_BYTES": "2048"})
    service.start()
    try:
        with _connect(service.url) as sock:
            sock.sendall(REQUEST_HEAD + b"X-Big: " + b"a" * 3000 + b"\r\n\r\n")
            reply, _ = _read_until_closed(sock, 5)
        assert reply.startswith(b"HTTP/1.1 431 ")
    finally:
        service.stop()
