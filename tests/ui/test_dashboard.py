"""The dashboard in a real headless Chromium against a real service on a loopback port."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

OPERATOR_TOKEN = "op-secret"
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
DISTS = ["kk-3", "kk-4", "kk-5", "kk-6"]


@pytest.fixture
def service(start_service: Callable[..., str], http: httpx.Client) -> tuple[str, str]:
    """A service with an operator token and run ``kk`` with two steps reported; the URL and
    the run's own token. ``GET /v1/runs/kk`` answers in pages of three distributions, so the
    run page reads two."""
    url = start_service(admin_token=SecretStr(OPERATOR_TOKEN), run_page_limit=3)
    created = http.post(
        f"{url}/v1/runs", json={"run_id": "kk", "distributions": DISTS}, headers=OPERATOR
    )
    assert created.status_code == 201
    token = created.json()["token"]
    for step in range(2):
        _report(http, url, token, step, rank=0)
    return url, token


def _report(http: httpx.Client, url: str, token: str, step: int, rank: int) -> dict[str, Any]:
    body = {
        "report_id": f"kk/{step}/{rank}",
        "step": step,
        "rank": rank,
        "advantages": {"kk-4": [0.9, -0.9, 0.1], "kk-5": [0.0, 0.0]},
        "rewards": {"kk-4": [1.0, 0.0, 1.0], "kk-5": [1.0, 1.0]},
    }
    reply = http.post(
        f"{url}/v1/runs/kk/reports", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_the_run_page_draws_one_band_per_distribution(page: Any, service: tuple[str, str]) -> None:
    url, token = service
    page.goto(f"{url}/ui/runs/kk#token={token}")
    page.wait_for_selector("[data-testid=weights-chart] [data-distribution]")
    bands = page.locator("[data-testid=weights-chart] [data-distribution]")
    assert sorted(bands.evaluate_all("els => els.map(e => e.dataset.distribution)")) == DISTS
    # every band is a drawn area, not an empty path
    assert all(len(d) > 20 for d in bands.evaluate_all("els => els.map(e => e.getAttribute('d'))"))
    assert page.locator("[data-testid=run-version]").inner_text() == "2"
    table = page.locator("[data-testid=distribution-table] tbody tr")
    assert sorted(table.evaluate_all("rows => rows.map(r => r.dataset.distribution)")) == DISTS
    kk5 = page.locator("[data-testid=distribution-table] tr[data-distribution=kk-5] td")
    assert kk5.nth(2).inner_text() == "4"  # n
    assert kk5.nth(7).inner_text() == "1"  # last step sampled
    never = page.locator("[data-testid=distribution-table] tr[data-distribution=kk-3] td")
    assert never.nth(7).inner_text() == "never"
    # the token left the address bar, and stays in this tab's session storage only
    assert "token" not in page.url
    assert page.evaluate("sessionStorage.getItem('curriculum-token')") == token


def test_a_new_report_shows_within_seconds(
    page: Any, service: tuple[str, str], http: httpx.Client
) -> None:
    url, token = service
    page.goto(f"{url}/ui/runs/kk#token={token}")
    page.wait_for_selector("[data-testid=weights-chart] [data-distribution]")
    assert page.locator("[data-testid=reporters-table] tr[data-rank='3']").count() == 0
    landed = time.monotonic()
    version = _report(http, url, token, step=7, rank=3)["version"]
    rank3 = page.locator("[data-testid=reporters-table] tr[data-rank='3']")
    rank3.wait_for(timeout=5000)
    page.wait_for_function(
        f"document.querySelector('[data-testid=run-version]').textContent === '{version}'",
        timeout=5000,
    )
    shown_after = time.monotonic() - landed
    assert shown_after < 5
    assert rank3.locator("td").nth(1).inner_text() == "7"
    # the chart now ends at step 7
    page.wait_for_function(
        "[...document.querySelectorAll('[data-testid=weights-chart] text')]"
        ".some(t => t.textContent === 'step 7')",
        timeout=5000,
    )


def test_a_wrong_token_shows_a_clear_message(page: Any, service: tuple[str, str]) -> None:
    url, token = service
    page.goto(f"{url}/ui/runs/kk#token=rct_not-the-token")
    message = page.locator("[data-testid=auth-error]")
    message.wait_for(state="visible", timeout=5000)
    assert "Wrong token" in message.inner_text() and "kk" in message.inner_text()
    assert page.locator("[data-testid=weights-chart] [data-distribution]").count() == 0
    # the right token in the field brings the run up
    page.fill("[data-testid=token-input]", token)
    page.click("[data-testid=token-form] button")
    page.wait_for_selector("[data-testid=weights-chart] [data-distribution]")
    assert message.is_hidden()


def test_the_operator_lists_runs_and_opens_one(
    page: Any, service: tuple[str, str], http: httpx.Client
) -> None:
    url, _ = service
    http.post(f"{url}/v1/runs", json={"run_id": "other", "distributions": ["a"]}, headers=OPERATOR)
    page.goto(f"{url}/ui#token={OPERATOR_TOKEN}")
    page.wait_for_selector("[data-testid=runs-table] tr[data-run=other]")
    rows = page.locator("[data-testid=runs-table] tbody tr")
    assert sorted(rows.evaluate_all("rows => rows.map(r => r.dataset.run)")) == ["kk", "other"]
    page.click("[data-testid=runs-table] a:text-is('kk')")
    page.wait_for_selector("[data-testid=weights-chart] [data-distribution]")
    assert page.locator("[data-testid=weights-chart] [data-distribution]").count() == len(DISTS)


def test_a_run_token_cannot_list_runs(page: Any, service: tuple[str, str]) -> None:
    url, token = service
    page.goto(f"{url}/ui#token={token}")
    message = page.locator("[data-testid=auth-error]")
    message.wait_for(state="visible", timeout=5000)
    assert "operator token" in message.inner_text()
