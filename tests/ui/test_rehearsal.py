"""The run page's rehearsal column: a distribution forgotten while left out shows its share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from curriculum_core import RunModel, rehearsal_share
from tests.conftest import create_run
from tests.ui.conftest import open_run_page

DISTS = ["a", "b", "c"]
STRATEGY = {"name": "dump-rehearse", "confidence": 20.0}
"""A high ``confidence`` keeps the share under its cap (``1/K``), so the page must show the
value the service computed, not a constant."""
GAP_REPORTS = 3
"""Reports in a row that leave ``b`` out, before each of its returns."""


def forgetting_reports() -> list[tuple[str, dict[str, list[float]], dict[str, list[float]]]]:
    """Reports (id, advantages, rewards) in which ``b`` is left out for ``GAP_REPORTS``
    reports, twice, and each time comes back with a lower mean reward (1.0, then 0.5, then
    0.25); ``a`` and ``c`` are in every report, with the same rewards throughout."""
    b_rewards = [[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]]
    gap = [["a", "c"]] * GAP_REPORTS
    reports = []
    for visit, b_reward in enumerate(b_rewards):
        for names in (gap if visit else []) + [DISTS]:
            advantages = {name: [0.5, -0.5, 0.5, -0.5] for name in names}
            rewards = {name: [1.0, 0.0, 1.0, 0.0] for name in names}
            if "b" in names:
                rewards["b"] = b_reward
            reports.append((f"r{len(reports)}", advantages, rewards))
    return reports


def expected_shares() -> list[float]:
    """The rehearsal shares the core computes after :func:`forgetting_reports`."""
    model = RunModel(DISTS, STRATEGY)
    for report_id, advantages, rewards in forgetting_reports():
        model.apply(report_id, advantages, rewards)
    return rehearsal_share(model.strategy, model.k, model.state).tolist()


def rehearsal_cells(page: Any) -> dict[str, str]:
    """Each row's rehearsal cell, by distribution."""
    return page.locator("[data-testid=distribution-table] tbody tr").evaluate_all(
        "rows => Object.fromEntries(rows.map(r => [r.dataset.distribution,"
        " r.querySelector('td.rehearsal').textContent]))"
    )


def test_a_forgotten_distribution_shows_its_rehearsal_share(
    page: Any, start_service: Callable[..., str], http: httpx.Client
) -> None:
    shares = dict(zip(DISTS, expected_shares(), strict=True))
    # b fell twice while left out, so the rule rehearses it, below the cap of 1/K
    assert 0 < shares["b"] < 1 / len(DISTS) and shares["a"] == shares["c"] == 0
    url = start_service()
    run_id, headers = create_run(http, url, DISTS, run_id="rehearse", strategy=STRATEGY)
    for step, (report_id, advantages, rewards) in enumerate(forgetting_reports()):
        body = {"report_id": report_id, "step": step, "advantages": advantages, "rewards": rewards}
        reply = http.post(f"{url}/v1/runs/{run_id}/reports", json=body, headers=headers)
        assert reply.status_code == 200, reply.text
    served = http.get(f"{url}/v1/runs/{run_id}", headers=headers).json()["stats"]
    assert served["b"]["rehearsal_share"] == pytest.approx(shares["b"])

    open_run_page(page, url, run_id, headers)
    page.wait_for_selector("[data-testid=distribution-table] tbody tr td.rehearsal")
    assert page.locator(
        "[data-testid=distribution-table] th[data-key=rehearsal_share]"
    ).is_visible()
    assert rehearsal_cells(page) == {"a": "-", "b": f"{100 * shares['b']:.1f}%", "c": "-"}


def test_other_strategies_hide_the_rehearsal_column(
    page: Any, start_service: Callable[..., str], http: httpx.Client
) -> None:
    url = start_service()
    run_id, headers = create_run(http, url, DISTS, run_id="plain", strategy="dump-ucb")
    open_run_page(page, url, run_id, headers)
    page.wait_for_selector(
        "[data-testid=distribution-table] tbody tr td.rehearsal", state="attached"
    )
    assert page.locator("[data-testid=distribution-table] th[data-key=rehearsal_share]").is_hidden()
    assert page.locator("[data-testid=distribution-table] td.rehearsal:visible").count() == 0
