"""The run page's prompt selection: per distribution its prompts, pass, skipped and
zero-variance shares and forced slots (table and charts), and the ``forced`` flag."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.conftest import create_run, post_plan
from tests.ui.conftest import open_run_page

DISTS = ["a", "__proto__"]
"""``__proto__``: the page must read the run's own values for it, not what every object
inherits."""
BATCH = 16
SELECTION = {"max_skips": 1, "adapt": 1.0, "target_zero_variance": 0.0}
"""One report of all zero-variance groups takes ``__proto__``'s ``keep`` to 0, so its
prompts are then passed over with probability ``max_skip`` (0.9) and, past one passed over
in a row, a slot is forced."""


def _rewards(name: str, prompt: int) -> list[float]:
    """``a``'s groups are mixed; ``__proto__``'s all solved (zero-variance)."""
    return [1.0, 0.0, 1.0, 0.0] if name == "a" else [1.0, 1.0, 1.0, 1.0]


def _step(http: httpx.Client, url: str, run: str, headers: dict[str, str], step: int) -> None:
    """Plan ``step`` and report a group for each of its slots."""
    reply = post_plan(http, url, run, headers, step, BATCH)
    assert reply.status_code == 200, reply.text
    plan = reply.json()
    groups = [
        {"distribution": name, "prompt": prompt, "rewards": _rewards(name, prompt)}
        for name, prompt in zip(plan["assignment"], plan["prompt_ids"], strict=True)
    ]
    advantages: dict[str, list[float]] = {}
    for group in groups:
        mean = sum(group["rewards"]) / len(group["rewards"])
        advantages.setdefault(group["distribution"], []).extend(r - mean for r in group["rewards"])
    body = {"report_id": f"r{step}", "step": step, "advantages": advantages, "groups": groups}
    reply = http.post(f"{url}/v1/runs/{run}/reports", json=body, headers=headers)
    assert reply.status_code == 200, reply.text


def _served(http: httpx.Client, url: str, run: str, headers: dict[str, str]) -> dict[str, Any]:
    """The run's ``prompts`` object, every page of it joined."""
    prompts: dict[str, Any] = {}
    offset: int | None = 0
    while offset is not None:
        page = http.get(f"{url}/v1/runs/{run}", params={"offset": offset}, headers=headers).json()
        prompts.update(page["prompts"])
        offset = page["next_offset"]
    return prompts


def _expected_cells(prompts: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The prompt cells the page must show for the API's values."""
    return {
        name: {
            "prompts": str(p["prompts"]),
            "pass": f"{p['pass']} / {p['position']}",
            "skipped": f"{100 * p['skipped']:.1f}%",
            "zero-variance": f"{100 * p['zero_variance']:.1f}%",
            "forced": str(p["forced"]),
        }
        for name, p in prompts.items()
    }


def _cells(page: Any) -> dict[str, dict[str, str]]:
    """Each row's prompt cells (by their class) and flags, by distribution (pairs from the
    page: an object keyed ``__proto__`` would not cross into Python)."""
    rows = page.locator("[data-testid=distribution-table] tbody tr").evaluate_all(
        "rows => rows.map(r => [r.dataset.distribution,"
        " [...r.querySelectorAll('td.prompt, td.flags')]"
        ".map(td => [td.classList[td.classList.length - 1], td.textContent])])"
    )
    return {name: dict(cells) for name, cells in rows}


def _titles(page: Any, chart: str) -> dict[str, str]:
    """Each line's tooltip in a prompt chart, by distribution."""
    paths = page.locator(f"[data-testid={chart}] path[data-distribution]").evaluate_all(
        "paths => paths.map(p => [p.dataset.distribution, p.querySelector('title').textContent])"
    )
    return dict(paths)


def _shown(page: Any, expected: dict[str, dict[str, str]]) -> None:
    """Wait (up to a few refreshes) until the table shows ``expected``, then check it."""
    forced = expected["__proto__"]["forced"]
    page.wait_for_function(
        "forced => document.querySelector("
        "'[data-testid=distribution-table] tr[data-distribution=\"__proto__\"] td.forced')"
        "?.textContent === forced",
        arg=forced,
        timeout=8000,
    )
    shown = {
        name: {k: v for k, v in row.items() if k != "flags"} for name, row in _cells(page).items()
    }
    assert shown == expected


def test_a_run_with_prompts_shows_its_selection_and_flags_forced_slots(
    page: Any, start_service: Callable[..., str], http: httpx.Client
) -> None:
    # one distribution a page, so the page joins prompts over two pages
    url = start_service(run_page_limit=1)
    run, headers = create_run(
        http, url, DISTS, run_id="prompted", strategy="uniform",
        prompts={"a": 6, "__proto__": 5}, prompt_selection=SELECTION,
    )  # fmt: skip
    _step(http, url, run, headers, 0)
    before = _served(http, url, run, headers)
    assert before["__proto__"]["zero_variance"] == 1.0 and before["a"]["zero_variance"] == 0.0
    assert before["__proto__"]["forced"] == 0

    open_run_page(page, url, run, headers)
    page.wait_for_selector("[data-testid=distribution-table] tbody tr td.prompt")
    for key in ("prompts", "drawn", "skipped", "zero_variance", "forced"):
        assert page.locator(f"[data-testid=distribution-table] th[data-key={key}]").is_visible()
    _shown(page, _expected_cells(before))
    assert "forced" not in _cells(page)["__proto__"]["flags"]
    assert page.locator("[data-testid=prompt-series]").is_visible()

    # the next plan passes over __proto__'s prompts and forces slots; the page follows
    _step(http, url, run, headers, 1)
    after = _served(http, url, run, headers)
    assert after["__proto__"]["forced"] > 0 and after["__proto__"]["skipped"] > 0
    assert after["a"]["forced"] == 0 and after["a"]["skipped"] == 0
    _shown(page, _expected_cells(after))
    flags = _cells(page)
    assert "forced" in flags["__proto__"]["flags"].split()
    assert "forced" not in flags["a"]["flags"].split()

    # the charts: one line per distribution ending at the API's value, drawn over refreshes
    page.wait_for_function(
        "document.querySelectorAll('[data-testid=skipped-chart] path[data-distribution]')"
        ".length === 2 && [...document.querySelectorAll('[data-testid=skipped-chart] path')]"
        ".every(p => p.getAttribute('d').includes('L'))",
        timeout=8000,
    )
    for chart, key in (("zero-variance-chart", "zero_variance"), ("skipped-chart", "skipped")):
        assert _titles(page, chart) == {
            name: f"{name}: {100 * p[key]:.1f}% now" for name, p in after.items()
        }
    # __proto__'s skipped line rose from 0 (its first point) to its share now
    ys = page.evaluate(
        "[...document.querySelector("
        "'[data-testid=skipped-chart] path[data-distribution=\"__proto__\"]').getAttribute('d')"
        ".matchAll(/[ML][\\d.]+,([\\d.]+)/g)].map(m => Number(m[1]))"
    )
    assert ys[0] > ys[-1]  # SVG y grows downwards: the last point is higher


def test_a_run_without_prompts_hides_the_prompt_columns_and_charts(
    page: Any, start_service: Callable[..., str], http: httpx.Client
) -> None:
    url = start_service()
    run, headers = create_run(http, url, DISTS, run_id="plain", strategy="uniform")
    open_run_page(page, url, run, headers)
    page.wait_for_selector("[data-testid=distribution-table] tbody tr td.prompt", state="attached")
    for key in ("prompts", "drawn", "skipped", "zero_variance", "forced"):
        assert page.locator(f"[data-testid=distribution-table] th[data-key={key}]").is_hidden()
    assert page.locator("[data-testid=distribution-table] td.prompt:visible").count() == 0
    assert page.locator("[data-testid=prompt-series]").is_hidden()
    assert page.locator("[data-testid=skipped-chart] path").count() == 0
