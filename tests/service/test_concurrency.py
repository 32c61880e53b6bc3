"""Atomicity: many clients reporting at once through two service processes on one Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from curriculum_core import DumpUcb, RunStats, weights
from tests.conftest import ServiceProcess

DISTS = [f"bucket-{j}" for j in range(6)]
CLIENTS = 32
REPORTS_EACH = 50


@pytest.fixture
def two_services(service_env: dict[str, str]) -> Iterator[list[str]]:
    services = [ServiceProcess(service_env) for _ in range(2)]
    try:
        for service in services:
            service.start()
        yield [s.url for s in services]
    finally:
        for service in services:
            service.stop()


def _advantages(client: int, i: int) -> dict[str, list[float]]:
    """Each distribution always reports |A| = 0.1 * (j + 1), with a varying count and sign."""
    chosen = [j for j in range(len(DISTS)) if (client + i + j) % 3 != 0]
    return {
        DISTS[j]: [(-1) ** (i + k) * 0.1 * (j + 1) for k in range(1 + (client + j) % 4)]
        for j in chosen
    }


def test_concurrent_reports_through_two_processes_lose_nothing(two_services: list[str]) -> None:
    async def main() -> tuple[dict, list[dict]]:
        async with httpx.AsyncClient(timeout=60) as http:
            created = await http.post(
                f"{two_services[0]}/v1/runs", json={"run_id": "busy", "distributions": DISTS}
            )
            headers = {"Authorization": f"Bearer {created.json()['token']}"}

            async def reporter(client: int) -> list[str]:
                statuses = []
                for i in range(REPORTS_EACH):
                    url = two_services[(client + i) % 2]
                    body = {
                        "report_id": f"c{client}-r{i}",
                        "step": i,
                        "advantages": _advantages(client, i),
                    }
                    reply = await http.post(
                        f"{url}/v1/runs/busy/reports", json=body, headers=headers
                    )
                    assert reply.status_code == 200, reply.text
                    statuses.append(reply.json()["status"])
                return statuses

            async def planner(k: int) -> dict:
                url = two_services[k % 2]
                reply = await http.post(
                    f"{url}/v1/runs/busy/plan",
                    json={"step": 1000, "batch_size": 64},
                    headers=headers,
                )
                assert reply.status_code == 200, reply.text
                return reply.json()

            results = await asyncio.gather(
                *[reporter(c) for c in range(CLIENTS)], *[planner(k) for k in range(16)]
            )
            statuses = [s for r in results[:CLIENTS] for s in r]
            assert statuses.count("applied") == CLIENTS * REPORTS_EACH
            info = (await http.get(f"{two_services[1]}/v1/runs/busy", headers=headers)).json()
            return info, list(results[CLIENTS:])

    info, plans = asyncio.run(main())
    expected_n = np.zeros(len(DISTS))
    for client in range(CLIENTS):
        for i in range(REPORTS_EACH):
            for name, values in _advantages(client, i).items():
                expected_n[DISTS.index(name)] += len(values)
    got_n = np.array([info["stats"][d]["n"] for d in DISTS])
    np.testing.assert_array_equal(got_n, expected_n)
    assert info["version"] == CLIENTS * REPORTS_EACH
    means = np.array([0.1 * (j + 1) for j in range(len(DISTS))])
    expected_w = weights(DumpUcb(), RunStats(n=expected_n, window_mean=means))
    got_w = np.array([info["weights"][d] for d in DISTS])
    np.testing.assert_allclose(got_w, expected_w, rtol=1e-5)
    assert all(p == plans[0] for p in plans), "callers of one step got different plans"
