"""A replica (or a proxy before it) that answers 200 with a body that is not a JSON object
is a failed replica, never a result: the client moves on, and falls back when none is left.
A kept plan once reached trainers as raw bytes this way, and crashed their runs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from trainer_client import CurriculumClient

NAMES = ["easy", "medium", "hard"]


class _Garbling(BaseHTTPRequestHandler):
    """Answers every request 200 with bytes that are not JSON, or with a JSON list."""

    body = b"{\x00\x06\x00\x01\x02"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(params=[b"{\x00\x06\x00\x01\x02", b"[1, 2]"], ids=["bytes", "list"])
def garbling_url(request: pytest.FixtureRequest) -> Iterator[str]:
    handler = type("Handler", (_Garbling,), {"body": request.param})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_garbled_answer_moves_on_to_the_next_replica(
    garbling_url: str, service_url: str, request: pytest.FixtureRequest
) -> None:
    run_id = f"garbled-first-{request.node.callspec.id}"
    with CurriculumClient.create_or_attach(
        [garbling_url, service_url], NAMES, run_id=run_id, retries=0
    ) as client:
        plan = client.plan(0, 8)
        assert plan.source == "service" and len(plan.assignment) == 8
        assert client.report(0, {"hard": [1.0, -1.0]}).status == "applied"
        assert client.online


def test_only_garbled_answers_are_an_outage_not_a_crash(garbling_url: str) -> None:
    with CurriculumClient.create_or_attach(
        garbling_url, NAMES, run_id="garbled-only", retries=0, seed=3
    ) as client:
        plan = client.plan(5, 8)
        assert plan.source == "local" and len(plan.assignment) == 8
        assert client.report(5, {"hard": [1.0, -1.0]}).status == "buffered"
        assert not client.online
