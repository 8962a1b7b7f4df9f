"""An order's life with points, stock and coupons checked exactly at every step."""

from __future__ import annotations

import threading

import pytest

from coalition_kernel.errors import CoalitionError
from merchant_node.ledger.commands import Earn
from tests.mall.support import (
    available,
    coupon_item,
    coupon_statuses,
    member_with_points,
    pickup_item,
    stock_left,
)


def test_points_order_holds_spends_and_issues_a_coupon_in_one_step(ledger, mall):
    member_with_points(ledger, "m1", 2000)
    mall.upsert_item("up-1", coupon_item(stock=3), "admin")
    order = mall.buy("buy-1", "m1", "tea-coupon", 2)
    assert (order.status, order.points, order.cash_fen) == ("fulfilled", 1000, 0)
    assert len(order.coupon_codes) == 2 and all(len(c) == 20 for c in order.coupon_codes)
    assert available(ledger, "m1") == 1000
    assert ledger.balance("m1").held_points == 0
    assert stock_left(ledger, "tea-coupon") == 1
    assert coupon_statuses(ledger, order.order_id) == ["issued", "issued"]
    assert mall.buy("buy-1", "m1", "tea-coupon", 2) == order  # a retry: the first answer
    assert available(ledger, "m1") == 1000 and stock_left(ledger, "tea-coupon") == 1
    assert ledger.audit() == []


def test_points_plus_cash_order_waits_for_the_pos_then_is_confirmed(ledger, mall):
    member_with_points(ledger, "m1", 1000)
    mall.upsert_item("up-1", pickup_item(price_fen=1990), "admin")
    order = mall.buy("buy-1", "m1", "mug", 1)
    assert order.status == "awaiting_payment" and order.cash_fen == 1990
    assert available(ledger, "m1") == 200 and ledger.balance("m1").held_points == 800
    assert stock_left(ledger, "mug") == 4
    with pytest.raises(CoalitionError) as err:
        mall.confirm_payment("pay-0", order.order_id, "wx-123", 1000)
    assert err.value.reason == "AMOUNT_MISMATCH"
    paid = mall.confirm_payment("pay-1", order.order_id, "wx-123", 1990)
    assert (paid.status, paid.payment_ref) == ("confirmed", "wx-123")
    assert available(ledger, "m1") == 200 and ledger.balance("m1").held_points == 0
    done = mall.fulfil("ful-1", order.order_id, "picked up at till 2")
    assert done.status == "fulfilled" and done.fulfilment_note == "picked up at till 2"
    assert stock_left(ledger, "mug") == 4 and ledger.audit() == []


def test_unpaid_order_lapses_and_releases_points_and_stock(ledger, mall, clock):
    member_with_points(ledger, "m1", 1000)
    mall.upsert_item("up-1", pickup_item(price_fen=500), "admin")
    order = mall.buy("buy-1", "m1", "mug", 1)
    clock.advance(minutes=14)
    assert mall.sweep_lapsed() == 0
    clock.advance(minutes=2)
    # Decided by timestamps: the hold's points are the member's again before any sweep.
    assert available(ledger, "m1") == 1000
    with pytest.raises(CoalitionError) as err:
        mall.confirm_payment("pay-1", order.order_id, "wx-1", 500)
    assert err.value.reason == "ORDER_LAPSED"
    assert mall.sweep_lapsed() == 1 and mall.sweep_lapsed() == 0
    assert mall.order(order.order_id).status == "lapsed"
    assert available(ledger, "m1") == 1000 and ledger.balance("m1").held_points == 0
    assert stock_left(ledger, "mug") == 5 and ledger.audit() == []


def test_refund_after_fulfilment_returns_points_and_stock_once(ledger, mall):
    member_with_points(ledger, "m1", 1000)
    mall.upsert_item("up-1", coupon_item(), "admin")
    order = mall.buy("buy-1", "m1", "tea-coupon", 1)
    assert available(ledger, "m1") == 500 and stock_left(ledger, "tea-coupon") == 9
    refunded = mall.refund("ref-1", order.order_id)
    assert refunded.status == "refunded"
    assert coupon_statuses(ledger, order.order_id) == ["withdrawn"]
    assert available(ledger, "m1") == 1000 and stock_left(ledger, "tea-coupon") == 10
    again = mall.refund("ref-2", order.order_id)  # another request: nothing changes twice
    assert again.status == "refunded"
    assert available(ledger, "m1") == 1000 and stock_left(ledger, "tea-coupon") == 10
    with pytest.raises(CoalitionError) as err:
        mall.redeem_coupon("red-1", order.coupon_codes[0], "till-1")
    assert err.value.reason == "COUPON_WITHDRAWN"
    assert ledger.audit() == []


def test_refund_of_a_redeemed_coupon_is_refused(ledger, mall):
    member_with_points(ledger, "m1", 1000)
    mall.upsert_item("up-1", coupon_item(), "admin")
    order = mall.buy("buy-1", "m1", "tea-coupon", 1)
    mall.redeem_coupon("red-1", order.coupon_codes[0], "till-1")
    with pytest.raises(CoalitionError) as err:
        mall.refund("ref-1", order.order_id)
    assert err.value.reason == "COUPON_ALREADY_REDEEMED"
    assert available(ledger, "m1") == 500


def test_losing_buyer_is_refused_with_points_untouched(ledger, mall):
    member_with_points(ledger, "m1", 1000)
    member_with_points(ledger, "m2", 1000)
    mall.upsert_item("up-1", coupon_item(stock=1), "admin")
    mall.buy("buy-1", "m1", "tea-coupon", 1)
    with pytest.raises(CoalitionError) as err:
        mall.buy("buy-2", "m2", "tea-coupon", 1)
    assert err.value.reason == "OUT_OF_STOCK"
    assert available(ledger, "m2") == 1000 and ledger.balance("m2").held_points == 0


def test_limits_windows_tiers_and_priority(ledger, mall, clock):
    member_with_points(ledger, "top", 5000)
    member_with_points(ledger, "low", 600)
    opens = clock.now.replace(hour=12)
    item = coupon_item(
        per_member_limit=2,
        per_member_daily_limit=1,
        available_from=opens,
        priority_hours=24,
        priority_top_n=1,
    )
    mall.upsert_item("up-1", item, "admin")
    assert mall.buy("b-top", "top", "tea-coupon", 1).status == "fulfilled"  # early: top 1
    with pytest.raises(CoalitionError) as err:
        mall.buy("b-low", "low", "tea-coupon", 1)
    assert err.value.reason == "ITEM_NOT_ON_SALE"
    with pytest.raises(CoalitionError) as err:
        mall.buy("b-top2", "top", "tea-coupon", 1)
    assert err.value.reason == "DAILY_LIMIT_REACHED"
    clock.advance(days=1)
    assert mall.buy("b-low2", "low", "tea-coupon", 1).status == "fulfilled"
    mall.buy("b-top3", "top", "tea-coupon", 1)
    clock.advance(days=1)
    with pytest.raises(CoalitionError) as err:
        mall.buy("b-top4", "top", "tea-coupon", 1)
    assert err.value.reason == "LIMIT_REACHED"
    mall.upsert_item("up-2", coupon_item("gold-gift", tiers=("gold",)), "admin")
    with pytest.raises(CoalitionError) as err:
        mall.buy("b-gold", "top", "gold-gift", 1)
    assert err.value.reason == "TIER_REQUIRED"
    assert [i.item_id for i in mall.browse("top")] == ["tea-coupon"]


def test_invalid_item_is_refused_and_stock_never_below_sold(ledger, mall):
    with pytest.raises(CoalitionError) as err:
        mall.upsert_item("up-0", coupon_item(coupon_valid_days=0), "admin")
    assert err.value.reason == "BAD_ITEM"
    member_with_points(ledger, "m1", 5000)
    mall.upsert_item("up-1", coupon_item(stock=5), "admin")
    mall.buy("buy-1", "m1", "tea-coupon", 3)
    with pytest.raises(CoalitionError) as err:
        mall.upsert_item("up-2", coupon_item(stock=2), "admin")
    assert err.value.reason == "STOCK_BELOW_SOLD"
    assert mall.upsert_item("up-3", coupon_item(stock=8), "admin").stock_left == 5


def test_cancel_racing_confirm_one_wins_and_points_stock_agree(db_url, ledger, mall):
    if not db_url.startswith("postgresql"):
        pytest.skip("concurrency is shown on PostgreSQL (SQLite serializes writers)")
    member_with_points(ledger, "m1", 100_000)
    mall.upsert_item("up-1", coupon_item(stock=100, price_fen=100), "admin")
    outcomes = []
    for n in range(20):
        order = mall.buy(f"buy-{n}", "m1", "tea-coupon", 1)
        start = threading.Barrier(2)
        results: dict[str, object] = {}

        def run(name, fn, start=start, results=results):  # type: ignore[no-untyped-def]
            start.wait()
            try:
                results[name] = fn().status
            except CoalitionError as err:
                results[name] = err.reason

        threads = [
            threading.Thread(
                target=run,
                args=("cancel", lambda o=order, n=n: mall.cancel(f"c-{n}", "m1", o.order_id)),
            ),
            threading.Thread(
                target=run,
                args=(
                    "pay",
                    lambda o=order, n=n: mall.confirm_payment(
                        f"p-{n}", o.order_id, f"ref-{n}", 100
                    ),
                ),
            ),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        final = mall.order(order.order_id).status
        assert final in ("cancelled", "fulfilled")
        if final == "cancelled":
            assert results == {"cancel": "cancelled", "pay": "ORDER_CANCELLED"}
            assert coupon_statuses(ledger, order.order_id) == []
        else:
            assert results == {"cancel": "ORDER_NOT_CANCELLABLE", "pay": "fulfilled"}
            assert coupon_statuses(ledger, order.order_id) == ["issued"]
        outcomes.append(final)
    sold = outcomes.count("fulfilled")
    assert stock_left(ledger, "tea-coupon") == 100 - sold
    assert available(ledger, "m1") == 100_000 - 500 * sold
    assert ledger.balance("m1").held_points == 0 and ledger.audit() == []


def test_earned_points_then_buy_in_many_threads_never_overdraws(db_url, ledger, mall):
    if not db_url.startswith("postgresql"):
        pytest.skip("concurrency is shown on PostgreSQL")
    member_with_points(ledger, "m1", 1200)
    mall.upsert_item("up-1", coupon_item(stock=50), "admin")
    ledger.earn(Earn("earn-x", "m1", "o-x", 100 * 100, "POS", None))
    errors = []

    def buy(n: int) -> None:
        try:
            mall.buy(f"b-{n}", "m1", "tea-coupon", 1)
        except CoalitionError as err:
            errors.append(err.reason)

    threads = [threading.Thread(target=buy, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert set(errors) <= {"INSUFFICIENT_POINTS"}
    assert 8 - len(errors) == 2  # 1300 points buy two 500-point coupons
    assert available(ledger, "m1") == 300 and ledger.audit() == []
