"""A real headless Chromium (Debian's ``chromium``, driven by Playwright) for the dashboard."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def chromium_path() -> str | None:
    """The system Chromium: ``$CHROMIUM`` or the first on PATH (scripts/test installs it)."""
    if os.environ.get("CHROMIUM"):
        return os.environ["CHROMIUM"]
    return next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the session."""
    path = chromium_path()
    if path is None:
        pytest.skip("no chromium on PATH (scripts/test installs Debian's)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        # --no-sandbox: the test machines run as root, where Chromium's sandbox cannot start
        browser = playwright.chromium.launch(
            executable_path=path, headless=True, args=["--no-sandbox"]
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh tab (its own session storage) whose console errors fail the test."""
    context = browser.new_context(viewport={"width": 1200, "height": 1400})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    yield tab
    context.close()
    expected = [e for e in errors if "401" not in e and "403" not in e]
    assert not expected, f"the page logged errors: {expected}"


def open_run_page(page: Any, url: str, run_id: str, headers: dict[str, str]) -> None:
    """Open run ``run_id``'s page with the token that ``headers`` carry (in the fragment)."""
    token = headers["Authorization"].removeprefix("Bearer ")
    page.goto(f"{url}/ui/runs/{run_id}#token={token}")
