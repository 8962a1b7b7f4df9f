"""Debian's Chromium (/usr/bin/chromium, from apt) driven by Playwright: no browser is ever
downloaded. Without chromium the browser tests skip, unless COALITION_REQUIRE_BROWSER=1 (CI)
makes that a failure. Screenshots go to artifacts/screenshots (printed at the end of the run)."""

from __future__ import annotations

import os
import pathlib
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

CHROMIUM = os.environ.get("COALITION_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = pathlib.Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
TAKEN: list[pathlib.Path] = []


def require_browser() -> None:
    if not os.path.exists(CHROMIUM):
        if os.environ.get("COALITION_REQUIRE_BROWSER") == "1":
            pytest.fail(
                f"chromium is required (COALITION_REQUIRE_BROWSER=1) but {CHROMIUM} is absent"
            )
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)")


@pytest_asyncio.fixture(scope="module")
async def browser() -> AsyncIterator[object]:
    require_browser()
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=FLAGS
        )
        try:
            yield launched
        finally:
            await launched.close()


async def screenshot(page, name: str) -> pathlib.Path:  # type: ignore[no-untyped-def]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    TAKEN.append(path)
    return path
