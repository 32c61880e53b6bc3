"""Names and tokens the dashboard must show or read as they are: distributions named like
an object's inherited members, names with bidirectional overrides and newlines, and
operator tokens with a "+" (base64)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from pydantic import SecretStr

OPERATOR_TOKEN = "op+secret/base64=="
OPERATOR = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
INHERITED = ["toString", "constructor", "__proto__", "hasOwnProperty"]
# "evil" followed by RIGHT-TO-LEFT OVERRIDE would render as "kk-4" reversed after it; a
# newline would make one name look like two rows' worth
POSERS = {"evil\u202e4-kk": "evil\\u202E4-kk", "kk-3\nkk-5": "kk-3\\u000Akk-5"}
LITERAL = "a\\u202Eb"  # a backslash typed into a name: shown doubled, never as an escape


def _service(start_service: Callable[..., str], http: httpx.Client, names: list[str]) -> str:
    url = start_service(admin_token=SecretStr(OPERATOR_TOKEN))
    created = http.post(
        f"{url}/v1/runs", json={"run_id": "names", "distributions": names}, headers=OPERATOR
    )
    assert created.status_code == 201, created.text
    report = {"report_id": "r0", "step": 3, "advantages": {names[-1]: [0.5, -0.5]}}
    reply = http.post(f"{url}/v1/runs/names/reports", json=report, headers=OPERATOR)
    assert reply.status_code == 200, reply.text
    return url


def _cells(page: Any) -> list[list[str]]:
    return page.locator("[data-testid=distribution-table] tbody tr").evaluate_all(
        "rows => rows.map(r => [...r.cells].map(c => c.textContent))"
    )


def test_distributions_named_like_inherited_members_show_their_own_values(
    page: Any, start_service: Callable[..., str], http: httpx.Client
) -> None:
    url = _service(start_service, http, [*INHERITED, "kk-4"])
    page.goto(f"{url}/ui/runs/names#token={OPERATOR_TOKEN}")
    page.wait_for_selector("[data-testid=distribution-table] tbody tr[data-distribution]")
    rows = {row[0]: row for row in _cells(page)}
    assert set(rows) == {*INHERITED, "kk-4"}
    for name in INHERITED:
        assert rows[name][2] == "0"  # n: the run's own count
        assert rows[name][7] == "never"  # not Object.prototype's member
    assert rows["kk-4"][2] == "2" and rows["kk-4"][7] == "3"
    assert not any("function" in cell or "[object" in cell for row in rows.values() for cell in row)


def test_control_and_bidi_characters_in_names_are_shown_escaped_and_isolated(
    page: Any, start_service: Callable[..., str], http: httpx.Client
) -> None:
    url = _service(start_service, http, [*POSERS, LITERAL, "kk-4"])
    page.goto(f"{url}/ui/runs/names#token={OPERATOR_TOKEN}")
    page.wait_for_selector("[data-testid=weights-legend] bdi")
    table = page.locator("[data-testid=distribution-table] tbody bdi.name")
    shown = table.evaluate_all("els => els.map(e => e.textContent)")
    assert sorted(shown) == sorted([*POSERS.values(), "a\\\\u202Eb", "kk-4"])
    styles = table.evaluate_all("els => els.map(e => getComputedStyle(e).unicodeBidi)")
    assert set(styles) == {"isolate"}
    legend = page.locator("[data-testid=weights-legend] bdi.name")
    assert sorted(legend.evaluate_all("els => els.map(e => e.textContent)")) == sorted(shown)
    bars = page.locator("[data-testid=score-bars] g[data-distribution] > text").first
    bars.wait_for()
    labels = page.locator("[data-testid=score-bars] g[data-distribution]").evaluate_all(
        "gs => gs.map(g => g.querySelector('text').textContent)"
    )
    assert not any(c in "".join(labels) for c in "\u202e\n")


def test_a_token_with_a_plus_in_the_fragment_is_read_as_it_is(
    page: Any, start_service: Callable[..., str], http: httpx.Client
) -> None:
    """``#token=op+secret/base64==`` (as typed, not form-encoded): the "+" stays a "+"."""
    url = _service(start_service, http, ["kk-4"])
    page.goto(f"{url}/ui#token={OPERATOR_TOKEN}&view=all")
    page.wait_for_selector("[data-testid=runs-table] tr[data-run=names]")
    assert page.evaluate("sessionStorage.getItem('curriculum-token')") == OPERATOR_TOKEN
    assert page.url.endswith("/ui#view=all")  # the token left the address, the rest stayed
    # percent-encoded works too
    page.evaluate("sessionStorage.clear()")
    page.goto(f"{url}/ui/runs/names#token=op%2Bsecret%2Fbase64%3D%3D")
    page.wait_for_selector("[data-testid=distribution-table] tbody tr[data-distribution]")
    assert page.evaluate("sessionStorage.getItem('curriculum-token')") == OPERATOR_TOKEN
