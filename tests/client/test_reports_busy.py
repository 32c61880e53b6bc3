"""A 429 (the service's large-report slots taken, service/report_gate.py) is retried after
its Retry-After, like a 503; the flow is driven here without a network (sans-I/O)."""

from __future__ import annotations

import httpx

from trainer_client.buffer import ReportBuffer
from trainer_client.protocol import ClientProtocol, Send, Wait

URL = "http://service.invalid"


def _protocol() -> ClientProtocol:
    return ClientProtocol(
        [URL],
        "r",
        "token",
        rank=0,
        retries=2,
        backoff=0.0,
        buffer=ReportBuffer("r", 10, None),
        distributions=None,
        strategy=None,
        seed=0,
        refresh_every=1,
        probe_initial_s=1.0,
        probe_max_s=30.0,
    )


def test_a_429_is_retried_after_its_retry_after() -> None:
    """The first answer is 429 with Retry-After: 2; the flow waits 2 s, sends the same
    request again and returns the second answer's JSON."""
    flow = ClientProtocol.request(_protocol(), "POST", "/v1/runs/r/reports", body={"x": 1})
    first = next(flow)
    assert isinstance(first, Send) and first.path == "/v1/runs/r/reports"
    request = httpx.Request("POST", f"{URL}/v1/runs/r/reports")
    busy = httpx.Response(
        429,
        headers={"Retry-After": "2"},
        json={"error": {"code": "reports_busy", "message": "busy", "details": None}},
        request=request,
    )
    assert flow.send(busy) == Wait(2.0)
    again = flow.send(None)
    assert again == first
    ok = httpx.Response(200, json={"status": "applied"}, request=request)
    try:
        flow.send(ok)
    except StopIteration as done:
        assert done.value == {"status": "applied"}
    else:
        raise AssertionError("the flow did not end with the second answer")
