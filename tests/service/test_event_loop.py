"""One tenant's large call does not stall the loop that answers every other tenant."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from service.schemas import ReportRequest
from tests.conftest import ServiceProcess, create_run

LARGEST = 1_048_576
"""Numbers in the largest report measured (the default limit before 2026-12-03; now 65,536,
so that a report's parse and script are short: test_noisy_neighbour.py)."""


@pytest.fixture
def service_process(service_env: dict[str, str]) -> Iterator[str]:
    """``python -m service`` in its own process: the test's client threads do not share
    its interpreter."""
    process = ServiceProcess({**service_env, "CURRICULUM_MAX_REPORT_VALUES": str(LARGEST)})
    process.start()
    yield process.url
    process.stop()


def test_healthz_answers_while_a_largest_report_is_processed(
    http: httpx.Client, service_process: str
) -> None:
    """A report of 1,048,576 numbers (CURRICULUM_MAX_REPORT_VALUES raised to it) takes the
    service a good part of a second; its parsing and packing run in a worker thread, so
    /healthz, polled all the while, waits less than half of it (on the loop it waited most
    of it). What is left is pydantic-core's validation of the body, one call that holds the
    interpreter."""
    url = service_process
    run, headers = create_run(http, url, ["a", "b"])
    half = LARGEST // 2
    body = (
        b'{"report_id": "big", "step": 0, "advantages": {"a": ['
        + b",".join([b"0.5"] * half)
        + b'], "b": ['
        + b",".join([b"-1.5"] * half)
        + b"]}}"
    )
    heavy: dict[str, float] = {}

    def send() -> None:
        start = time.perf_counter()
        with httpx.Client(timeout=60) as client:
            reply = client.post(
                f"{url}/v1/runs/{run}/reports",
                content=body,
                headers={**headers, "content-type": "application/json"},
            )
        heavy["status"] = reply.status_code
        heavy["seconds"] = time.perf_counter() - start

    sender = threading.Thread(target=send)
    waits: list[float] = []
    with httpx.Client(timeout=60) as poller:
        sender.start()
        while sender.is_alive():
            start = time.perf_counter()
            assert poller.get(f"{url}/healthz").status_code == 200
            waits.append(time.perf_counter() - start)
            time.sleep(0.005)
    sender.join()
    assert heavy["status"] == 200
    state = http.get(f"{url}/v1/runs/{run}", headers=headers).json()
    assert state["stats"]["a"]["n"] == half == state["stats"]["b"]["n"]
    assert len(waits) >= 5, (waits, heavy)
    # What may still stall the loop is the one pydantic-core call, timed here on the same
    # body. On the Intel machine the stall was 0.11-0.14 s of a 0.48-0.54 s report (0.16-0.31
    # s of 0.24-0.49 with the parse on the loop), under half of it; on a faster CPU (AMD
    # EPYC: 0.09 s of 0.17 s) that call is itself about half the report, so the bound is the
    # larger of the two. Packing the values on the loop would add to the call's stall.
    validation = min(_seconds(lambda: ReportRequest.model_validate_json(body)) for _ in range(3))
    bound = max(heavy["seconds"] / 2, 1.5 * validation)
    assert max(waits) < bound, (max(waits), validation, heavy)


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
