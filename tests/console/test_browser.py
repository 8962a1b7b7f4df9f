"""The console in a real browser (Debian's Chromium through Playwright): a merchant and the
operator log in, the page's figures match the API after a known workload, a figure changes
after an earn without reloading, the operator approves a settlement batch from the page, and a
merchant cannot see another shop's page or data, and the shop's mall sales and segments show."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest_asyncio
from temporalio.worker import Worker

from console.app import ECHARTS
from exchange.schema import settlement_batches
from merchant_node.ledger.commands import Earn, Enroll, Redeem
from tests.conftest import issue_key, open_test_ledger
from tests.console.browser import screenshot
from tests.console.support import OPERATOR_PASSWORD, Served, make_console, serve
from tests.console.test_console_http import marketing_workload
from tests.exchange.conftest import start_coalition
from tests.workflows.conftest import WORKFLOWS
from tests.workflows.test_settlement_run import trade, until_state
from workflows.settlement.activities import SettlementActivities
from workflows.settlement.shared import SettlementInput
from workflows.settlement.workflows import SettlementWorkflow, settlement_workflow_id

SHOP_FIGURES = (
    "today.issued",
    "today.redeemed",
    "today.earns",
    "today.redemptions",
    "today.enrolled",
    "today.active_members",
    "totals.members",
    "totals.issued",
    "totals.redeemed",
    "totals.outstanding",
)


@pytest_asyncio.fixture
async def shops(new_database, clock) -> AsyncIterator[Served]:  # type: ignore[no-untyped-def]
    ledgers = {m: open_test_ledger(new_database(m), clock) for m in ("tea", "noodles")}
    console = make_console({m: ledger.engine for m, ledger in ledgers.items()}, clock=clock)
    try:
        async for url in serve(console):
            served = Served(url, console)
            served.keys = {
                m: issue_key(ledger, "admin", "console") for m, ledger in ledgers.items()
            }
            served.ledgers = ledgers  # type: ignore[attr-defined]
            yield served
    finally:
        for ledger in ledgers.values():
            ledger.engine.dispose()


def workload(ledger) -> None:  # type: ignore[no-untyped-def]
    for i in range(4):
        ledger.enroll(Enroll(f"en-{i}", f"m-{i}"))
    for i in range(3):
        ledger.earn(Earn(f"e-{i}", f"m-{i}", f"o-{i}", 12_300 * (i + 1), "POS", None))
    ledger.redeem(Redeem("r-0", "m-2", "ro-0", points=77))


async def log_in_merchant(browser, url: str, merchant_id: str, key: str, lang: str = "en"):  # type: ignore[no-untyped-def]
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(f"{url}/?lang={lang}")
    await page.fill("#merchant-id", merchant_id)
    await page.fill("#merchant-key", key)
    await page.click("#merchant-submit")
    await page.wait_for_url(f"{url}/shop/{merchant_id}")
    return page


async def shown(page, figure: str) -> str:  # type: ignore[no-untyped-def]
    return await page.get_attribute(f'[data-figure="{figure}"]', "data-value") or ""


async def test_a_merchant_sees_its_figures_as_the_api_gives_them(browser, shops):
    await asyncio.to_thread(workload, shops.ledgers["tea"])
    page = await log_in_merchant(browser, shops.url, "tea", shops.keys["tea"])
    await page.wait_for_selector('[data-figure="today.issued"][data-value]')
    api = await page.evaluate("fetch('/api/shop/tea/figures').then(r => r.json())")
    for figure in SHOP_FIGURES:
        group, key = figure.split(".")
        assert await shown(page, figure) == str(api[group][key]), figure
    assert api["today"]["issued"] == 123 + 246 + 369 and api["today"]["redeemed"] == 77
    assert await page.text_content('[data-figure="today.redemption_rate_bps"]') == "10.43%"
    assert await page.text_content("h1") == "Coalition console"
    if ECHARTS.exists():  # npm install put ECharts there (scripts/test does)
        await page.wait_for_selector("#trend-chart canvas")  # ECharts drew the trend
    await screenshot(page, "merchant-tea-en")
    await page.goto(f"{shops.url}/shop/tea?lang=zh")
    await page.wait_for_selector('[data-figure="today.issued"][data-value]')
    assert await page.text_content("h1") == "商圈积分控制台"
    await screenshot(page, "merchant-tea-zh")
    await page.context.close()


async def test_the_shop_page_shows_mall_sales_and_segments(browser, shops, clock):
    await asyncio.to_thread(marketing_workload, shops.ledgers["tea"], clock)
    page = await log_in_merchant(browser, shops.url, "tea", shops.keys["tea"])
    await page.wait_for_selector('[data-figure="mall.items_sold"][data-value]')
    api = await page.evaluate("fetch('/api/shop/tea/figures').then(r => r.json())")
    for key in ("items_sold", "points_taken", "coupons_issued", "coupons_redeemed"):
        assert await shown(page, f"mall.{key}") == str(api["mall"][key]), key
    assert await shown(page, "mall.items_sold") == "2"
    assert await shown(page, "mall.points_taken") == "1000"
    dormant = '#segments tr[data-segment="dormant"] [data-field="members"]'
    assert await page.text_content(dormant) == "6"
    assert await page.text_content("section:has(#segments) h3") == "Member segments"
    await screenshot(page, "merchant-tea-marketing")
    await page.context.close()


async def test_a_live_figure_changes_after_an_earn_without_reloading(browser, shops):
    ledger = shops.ledgers["tea"]
    await asyncio.to_thread(workload, ledger)
    page = await log_in_merchant(browser, shops.url, "tea", shops.keys["tea"])
    await page.wait_for_selector('[data-figure="today.issued"][data-value="738"]')
    await page.evaluate("window.__same_page = true")
    await asyncio.to_thread(ledger.earn, Earn("e-live", "m-3", "o-live", 5_000, "POS", None))
    await page.wait_for_selector('[data-figure="today.issued"][data-value="788"]', timeout=15_000)
    assert await page.evaluate("window.__same_page") is True  # no reload happened
    assert await shown(page, "today.active_members") == "4"
    await screenshot(page, "merchant-tea-live")
    await page.context.close()


async def test_a_merchant_cannot_see_another_shops_page_or_data(browser, shops):
    await asyncio.to_thread(workload, shops.ledgers["noodles"])
    page = await log_in_merchant(browser, shops.url, "tea", shops.keys["tea"])
    answer = await page.goto(f"{shops.url}/shop/noodles")
    assert answer.status == 403
    assert await page.is_visible("#forbidden")
    await screenshot(page, "merchant-tea-forbidden-noodles")
    for path in ("/api/shop/noodles/figures", "/api/district/figures"):
        status = await page.evaluate(f"fetch('{path}').then(r => r.status)")
        assert status == 403, path
    await page.context.close()


async def test_a_wrong_key_is_refused_at_login(browser, shops):
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{shops.url}/?lang=en")
    await page.fill("#merchant-id", "tea")
    await page.fill("#merchant-key", shops.keys["noodles"])
    await page.click("#merchant-submit")
    await page.wait_for_selector("#login-failed:not([hidden])")
    assert "failed" in (await page.text_content("#login-failed") or "")
    await page.context.close()


async def test_the_operator_approves_a_settlement_batch_from_the_page(
    browser, time_skipping, new_database, clock, tmp_path
):
    async for coalition in start_coalition(new_database, clock):
        period = await trade(coalition)
        clock.advance(days=1)
        exchange = coalition.exchange
        acts = SettlementActivities(exchange.engine, exchange.redemptions.statement, tmp_path,
                                    clock=clock)  # fmt: skip
        queue = f"settle-{uuid.uuid4()}"
        async with Worker(
            time_skipping.client, task_queue=queue, workflows=WORKFLOWS, activities=acts.all()
        ):
            handle = await time_skipping.client.start_workflow(
                SettlementWorkflow.run,
                SettlementInput(period),
                id=settlement_workflow_id(period),
                task_queue=queue,
            )
            try:
                await approve_from_the_page(
                    browser, handle, exchange, clock, period, temporal_of(time_skipping)
                )
            finally:  # the workflow id is the period's: the next parametrization reuses it
                await handle.terminate("test over")
        with exchange.engine.connect() as conn:
            row_ = conn.execute(
                settlement_batches.select().where(settlement_batches.c.period == period)
            ).one()
        assert row_.approved_by == "ops-lin"


def temporal_of(env):  # type: ignore[no-untyped-def]
    async def temporal():  # type: ignore[no-untyped-def]
        return env.client

    return temporal


async def approve_from_the_page(browser, handle, exchange, clock, period, temporal) -> None:  # type: ignore[no-untyped-def]
    await until_state(handle, "awaiting_approval")

    console = make_console({}, exchange.engine, clock, temporal)
    async for url in serve(console):
        page = await (await browser.new_context()).new_page()
        await page.goto(f"{url}/?lang=zh")
        await page.fill("#operator-name", "ops-lin")
        await page.fill("#operator-password", OPERATOR_PASSWORD)
        await page.click("#operator-submit")
        await page.wait_for_url(f"{url}/district")
        row = f'#batches tr[data-period="{period}"]'
        await page.wait_for_selector(f"{row} button.approve")
        api = await page.evaluate("fetch('/api/district/figures').then(r => r.json())")
        for p in api["positions"]:
            cell = f'#positions tr[data-merchant="{p["merchant_id"]}"] [data-field="net_debit"]'
            assert await page.text_content(cell) == str(p["net_debit_fen"])
        assert sum(f["records"] for f in api["flows"]) == 8  # captured, one voided
        assert api["open_periods"] == []  # the period's batch is closed
        batch = next(b for b in api["batches"] if b["period"] == period)
        assert (batch["status"], batch["record_count"]) == ("reconciled", 8)
        if ECHARTS.exists():
            await page.wait_for_selector("#flow-chart canvas")
        await screenshot(page, "operator-district-before-approval")
        await page.click(f"{row} button.approve")
        await page.wait_for_selector('#decision-result[data-ok="true"]')
        await until_state(handle, "paid", "awaiting_confirmation")
        await page.wait_for_selector(f'{row} [data-field="status"]:text("paid")',
                                     timeout=15_000)  # fmt: skip
        assert await page.query_selector(f"{row} button.approve") is None
        await screenshot(page, "operator-district-approved")
        # A second decision on the same batch: the workflow's validator refuses it.
        other = await page.evaluate(
            f"""fetch('/api/district/batches/{period}/approve',
            {{method: 'POST', headers: {{'X-Console-Request': '1'}}}}).then(r => r.status)"""
        )
        assert other == 409  # already decided: the workflow's validator refuses
        await page.context.close()
