"""The console over HTTP (no browser): logins, a merchant kept to its own shop, the operator's
pages closed to merchants, figures from the rollups matching the workload, live events, and
the marketing and mall figures of a known workload."""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from http.cookiejar import CookieJar

import pytest_asyncio

from merchant_node.ledger.commands import Earn, Enroll, Redeem
from merchant_node.marketing.service import MarketingService
from merchant_node.marketing.triggers import in_control
from tests.conftest import issue_key, open_test_ledger
from tests.console.support import Served, make_console, serve
from tests.mall.support import coupon_item, open_mall
from tests.merchant_node.marketing import population


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
            served.keys["tea-pos"] = issue_key(ledgers["tea"], "pos", "till")
            served.ledgers = ledgers  # type: ignore[attr-defined]
            yield served
    finally:
        for ledger in ledgers.values():
            ledger.engine.dispose()


class Browser:
    """urllib with cookies, not following redirects (a login answers 303)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = CookieJar()

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
                return None

        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), NoRedirect
        )

    def call(self, path: str, form=None, headers=None, data=None) -> tuple[int, bytes, dict]:  # type: ignore[no-untyped-def]
        body = urllib.parse.urlencode(form).encode() if form is not None else data
        request = urllib.request.Request(self.base + path, data=body, headers=headers or {})
        try:
            with self.opener.open(request, timeout=10) as r:
                return r.status, r.read(), dict(r.headers)
        except urllib.error.HTTPError as e:
            return e.code, e.read(), dict(e.headers)

    def login_merchant(self, merchant_id: str, key: str) -> str:
        status, _, headers = self.call(
            "/login", {"role": "merchant", "merchant_id": merchant_id, "key": key}
        )
        assert status == 303
        return headers["location"]


def workload(ledger) -> None:  # type: ignore[no-untyped-def]
    for i in range(3):
        ledger.enroll(Enroll(f"en-{i}", f"m-{i}"))
        ledger.earn(Earn(f"e-{i}", f"m-{i}", f"o-{i}", 10_000 * (i + 1), "POS", None))
    ledger.redeem(Redeem("r-0", "m-2", "ro-0", points=120))


async def test_a_merchant_logs_in_with_its_admin_key_and_sees_its_figures(shops):
    await asyncio.to_thread(workload, shops.ledgers["tea"])
    tea = Browser(shops.url)
    assert await asyncio.to_thread(tea.login_merchant, "tea", shops.keys["tea"]) == "/shop/tea"
    status, body, _ = await asyncio.to_thread(tea.call, "/api/shop/tea/figures")
    assert status == 200
    figures = json.loads(body)
    assert figures["today"]["issued"] == 100 + 200 + 300
    assert figures["today"]["redeemed"] == 120
    assert figures["today"]["earns"] == 3 and figures["today"]["redemptions"] == 1
    assert figures["today"]["enrolled"] == 3 and figures["today"]["active_members"] == 3
    assert figures["today"]["participation_rate_bps"] == 10_000
    assert figures["today"]["redemption_rate_bps"] == 120 * 10_000 // 600
    assert figures["totals"]["outstanding"] == 600 - 120
    assert figures["trend"][-1]["issued"] == 600 and len(figures["trend"]) == 14


async def test_a_merchant_cannot_see_another_shop(shops):
    await asyncio.to_thread(workload, shops.ledgers["noodles"])
    tea = Browser(shops.url)
    await asyncio.to_thread(tea.login_merchant, "tea", shops.keys["tea"])
    for path in (
        "/shop/noodles",
        "/api/shop/noodles/figures",
        "/api/shop/noodles/events",
        "/api/shop/noodles/alerts",
        "/api/shop/nowhere/figures",
        "/district",
        "/api/district/figures",
    ):
        status, body, _ = await asyncio.to_thread(tea.call, path)
        assert status == 403, path
        assert b"issued" not in body


async def test_logins_refused_change_nothing(shops):
    anon = Browser(shops.url)
    for form in (
        {"role": "merchant", "merchant_id": "tea", "key": shops.keys["noodles"]},  # other node's
        {"role": "merchant", "merchant_id": "tea", "key": shops.keys["tea-pos"]},  # not admin
        {"role": "merchant", "merchant_id": "tea", "key": "cpk_nonsense"},
        {"role": "operator", "name": "ops-lin", "password": "guess"},  # no exchange anyway
    ):
        status, _, headers = await asyncio.to_thread(anon.call, "/login", form)
        assert (status, headers["location"]) == (303, "/?failed=1")
    status, _, _ = await asyncio.to_thread(anon.call, "/api/shop/tea/figures")
    assert status == 403


async def test_a_forged_or_altered_cookie_is_no_session(shops):
    tea = Browser(shops.url)
    await asyncio.to_thread(tea.login_merchant, "tea", shops.keys["tea"])
    (cookie,) = list(tea.jar)
    assert cookie.value is not None
    body, mac = cookie.value.rsplit(".", 1)
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    assert payload["s"] == "tea"
    payload["s"] = "noodles"  # the same session, claiming the other shop, with tea's MAC
    other = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    for forged, path in (
        (f"{other}.{mac}", "/api/shop/noodles/figures"),
        (f"{body}.{'0' * len(mac)}", "/api/shop/tea/figures"),
    ):
        status, _, _ = await asyncio.to_thread(
            Browser(shops.url).call, path, headers={"Cookie": f"coalition_console={forged}"}
        )
        assert status == 403, path


async def test_live_events_carry_a_new_figure_after_an_earn(shops):
    tea = Browser(shops.url)
    await asyncio.to_thread(tea.login_merchant, "tea", shops.keys["tea"])
    (cookie,) = list(tea.jar)
    host, port = shops.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        f"GET /api/shop/tea/events HTTP/1.1\r\nHost: {host}\r\n"
        f"Cookie: coalition_console={cookie.value}\r\n\r\n".encode()
    )
    await writer.drain()

    async def next_event() -> dict:  # type: ignore[type-arg]
        while True:
            line = await asyncio.wait_for(reader.readline(), 10)
            if line.startswith(b"data: "):
                return json.loads(line[6:])

    first = await next_event()
    assert first["today"]["issued"] == 0
    ledger = shops.ledgers["tea"]
    await asyncio.to_thread(ledger.enroll, Enroll("en-x", "m-x"))
    await asyncio.to_thread(ledger.earn, Earn("e-x", "m-x", "o-x", 4_200, "POS", None))
    while (event := await next_event())["today"]["issued"] != 42:
        assert event["today"]["issued"] == 0
    # Mall sales are live too: a sale shows in a later event.
    assert event["mall"]["items_sold"] == 0
    mall = open_mall(ledger)
    await asyncio.to_thread(mall.upsert_item, "u1", coupon_item("tea-1", price_points=40), "admin")
    await asyncio.to_thread(mall.buy, "b1", "m-x", "tea-1", 1)
    while (event := await next_event())["mall"]["items_sold"] != 1:
        assert event["mall"]["items_sold"] == 0
    assert event["mall"]["points_taken"] == 40 and event["mall"]["coupons_issued"] == 1
    writer.close()


START = datetime(2026, 3, 1, tzinfo=UTC)


def marketing_workload(ledger, clock) -> population.Population:  # type: ignore[no-untyped-def]
    """A known workload: the trigger tests' population (2 members of each kind) through a
    night's segments and triggers, the two price-sensitive members back on a Saturday (the
    campaign's promo day), and a mall sale of two coupons, one redeemed at a till."""
    pop = population.build(START, per_kind=2)
    population.enroll_all(ledger, clock, pop, "05-10")
    population.earn_days(ledger, clock, pop, population.ENROLLED, 120)
    service = MarketingService(ledger, merchant_id="tea", clock=clock)
    service.apply("triggers", population.TRIGGERS, "ops@tea")
    night = START + timedelta(days=120, hours=18)
    for step in (service.refresh_facts, service.place_all, service.score_churn):
        step(night)
    service.run_triggers(night)
    clock.now = START + timedelta(days=125, hours=2)  # Saturday 10:00 in Shanghai
    for member in ("price-0", "price-1"):
        ledger.earn(Earn(f"back-{member}", member, f"{member}-back", 25_000, "POS", None))
    mall = open_mall(ledger)
    mall.upsert_item("u1", coupon_item("tea-5"), "admin")
    mall.buy("b1", "steady-0", "tea-5", 2)
    code = sorted(c.code for c in mall.coupons_of("steady-0"))[0]
    mall.redeem_coupon("c1", code, "till-1")
    clock.now = START + timedelta(days=126, hours=2)
    return pop


async def test_the_shop_api_shows_segments_wake_up_results_campaign_roi_and_mall_sales(
    shops, clock
):
    pop = await asyncio.to_thread(marketing_workload, shops.ledgers["tea"], clock)
    tea = Browser(shops.url)
    await asyncio.to_thread(tea.login_merchant, "tea", shops.keys["tea"])
    status, body, _ = await asyncio.to_thread(tea.call, "/api/shop/tea/figures")
    assert status == 200
    figures = json.loads(body)

    # The quiet members (price, shift, silent: 2 each) are dormant; steady and vip are not.
    assert figures["segments"]["dormant"] == 6
    assert sum(figures["segments"].values()) == len(pop.orders) == 9
    assert {m["member_id"] for m in figures["at_risk"]} >= {
        m for m in pop.orders if pop.kind(m) in ("shift", "silent")
    }

    price = [m for m in pop.orders if pop.kind(m) == "price"]
    held = [m for m in price if in_control("wake_price_sensitive", m, 25)]
    treated = [m for m in price if m not in held]
    report = {r["trigger_id"]: r for r in figures["triggers"]}["wake_price_sensitive"]
    assert (report["treated"], report["control"]) == (len(treated), len(held))
    assert (report["treated_converted"], report["control_converted"]) == (len(treated), len(held))
    assert report["treated_rate_bps"] == (10_000 if treated else 0)
    assert report["cost_coupon_fen"] == 5_000 * len(treated)
    assert [r["trigger_id"] for r in figures["triggers"]] == [
        "wake_price_sensitive",
        "wake_category_shift",
        "wake_long_silence",
    ]

    # The campaign's window is the last 30 days: its only credited orders are the two back.
    (promo,) = figures["campaigns"]
    assert promo["campaign_id"] == "promo"
    assert promo["participating_orders"] == 2
    assert promo["participating_revenue_fen"] == 50_000
    assert promo["points_cost_fen"] == 0 and promo["roi_vs_control_bp"] is None

    mall = figures["mall"]
    assert mall["items"] == [
        {"item_id": "tea-5", "sold": 2, "points_taken": 1_000, "cash_taken_fen": 0, "stock_left": 8}
    ]
    assert (mall["items_sold"], mall["points_taken"], mall["cash_taken_fen"]) == (2, 1_000, 0)
    # The trigger's coupons (one per treated price-sensitive member) are mall coupons too.
    assert mall["coupons_issued"] == 2 + len(treated)
    assert (mall["coupons_redeemed"], mall["coupons_expired"]) == (1, 0)
    assert mall["coupon_liability_fen"] == 500 + 5_000 * len(treated)


SPRING = """
timezone: Asia/Shanghai
rules:
  - {id: spring_double, type: time_window, campaign: spring, multiplier: "2",
     days_of_week: [sat], budget_pool: spring_pool}
budget_pools: [{id: spring_pool, points: 1000}]
"""


async def test_campaign_roi_against_the_baseline_is_the_docs_formula(shops, clock):
    """One order in the baseline (the 30 days before the last 30), one Saturday order the
    campaign doubled in the window: ROI = (window revenue - baseline revenue - cost) / cost."""
    ledger = shops.ledgers["tea"]

    def work() -> None:
        clock.now = datetime(2026, 1, 5, 2, tzinfo=UTC)
        ledger.apply_program(SPRING, "test")
        ledger.enroll(Enroll("en-a", "m-a"))
        clock.now = datetime(2026, 2, 10, 2, tzinfo=UTC)  # a Tuesday, in the baseline
        ledger.earn(Earn("e-b", "m-a", "o-b", 10_000, "POS", None))
        clock.now = datetime(2026, 3, 14, 2, tzinfo=UTC)  # a Saturday, 10:00 in Shanghai
        ledger.earn(Earn("e-w", "m-a", "o-w", 20_000, "POS", None))
        clock.now = datetime(2026, 3, 20, 2, tzinfo=UTC)

    await asyncio.to_thread(work)
    tea = Browser(shops.url)
    await asyncio.to_thread(tea.login_merchant, "tea", shops.keys["tea"])
    _, body, _ = await asyncio.to_thread(tea.call, "/api/shop/tea/figures")
    (spring,) = json.loads(body)["campaigns"]
    # 200 base points doubled: the pool grants the other 200, at 1 fen a point.
    assert (spring["points_granted"], spring["points_cost_fen"]) == (200, 200)
    assert (spring["participating_orders"], spring["participating_revenue_fen"]) == (1, 20_000)
    assert spring["incremental_vs_baseline_fen"] == 20_000 - 10_000
    assert spring["roi_vs_baseline_bp"] == (20_000 - 10_000 - 200) * 10_000 // 200
    assert spring["roi_vs_control_bp"] is None  # no control group
