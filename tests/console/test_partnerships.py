"""The operator's page lists suggested partnerships (exchange/affinity): the district of
tests/exchange/test_affinity.py, whose suggestions are computed by hand there, in the figures
JSON and in the page's table (Chromium)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest_asyncio

from coalition_kernel.db import make_engine
from exchange.migrate import upgrade
from tests.console.browser import screenshot
from tests.console.support import OPERATOR_PASSWORD, make_console, serve
from tests.console.test_console_http import Browser
from tests.exchange.test_affinity import district


@pytest_asyncio.fixture
async def console_url(new_database, clock) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    engine = make_engine(new_database("exchange"))
    upgrade(engine)
    with engine.begin() as conn:
        district(conn, clock.now)
    try:
        async for url in serve(make_console({}, exchange=engine, clock=clock)):
            yield url
    finally:
        engine.dispose()


def suggestion(offering: str, audience: str, score_bp: int, members: int) -> dict[str, object]:
    return {
        "kind": "related_product_offer",
        "offering_id": offering,
        "audience_id": audience,
        "score_bp": score_bp,
        "members": members,
    }


async def test_the_district_figures_carry_the_suggested_partnerships(console_url):
    ops = Browser(console_url)
    login = {"role": "operator", "name": "ops-lin", "password": OPERATOR_PASSWORD}
    status, _, headers = await asyncio.to_thread(ops.call, "/login", login)
    assert (status, headers["location"]) == (303, "/district")
    status, body, _ = await asyncio.to_thread(ops.call, "/api/district/figures")
    assert status == 200
    assert json.loads(body)["partnerships"] == [
        suggestion("noodles", "tea", 18333, 6),
        suggestion("tea", "salon", 16000, 5),
        suggestion("salon", "noodles", 15000, 5),
    ]


async def test_the_district_page_shows_the_partnerships_table(browser, console_url):
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{console_url}/?lang=en")
    await page.fill("#operator-name", "ops-lin")
    await page.fill("#operator-password", OPERATOR_PASSWORD)
    await page.click("#operator-submit")
    await page.wait_for_url(f"{console_url}/district")
    row = '#partnerships tr[data-pair="noodles:tea"]'
    await page.wait_for_selector(row)
    cells = await page.eval_on_selector_all(f"{row} td", "tds => tds.map(td => td.textContent)")
    assert cells == ["Related-product offer", "noodles", "tea", "1.83×", "6"]
    assert await page.locator("#partnerships tbody tr").count() == 3
    await screenshot(page, "operator-district-partnerships")
    await page.context.close()
