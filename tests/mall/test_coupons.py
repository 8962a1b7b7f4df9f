"""Coupons after the sale: a reminder before expiry through the outbox, once; expiry at the
till; the report's counts and liability."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from coalition_kernel.errors import CoalitionError
from merchant_node.ledger.schema import notifications
from merchant_node.mall.report import report_message
from tests.mall.support import coupon_item, member_with_points


def test_expiry_reminder_is_enqueued_once_and_an_expired_coupon_is_refused(ledger, mall, clock):
    member_with_points(ledger, "m1", 2000)
    mall.upsert_item("up-1", coupon_item(coupon_valid_days=10), "admin")
    order = mall.buy("b1", "m1", "tea-coupon", 2)
    mall.redeem_coupon("r1", order.coupon_codes[0], "till-1")
    clock.advance(days=6)
    assert mall.enqueue_coupon_reminders() == 0  # 4 days left: not yet
    clock.advance(days=1, minutes=1)
    assert mall.enqueue_coupon_reminders() == 1  # the unredeemed one only
    assert mall.enqueue_coupon_reminders() == 0  # once per coupon, however often it runs
    with ledger.engine.connect() as conn:
        row = conn.execute(sa.select(notifications)).one()
    payload = json.loads(row.payload)
    assert (row.kind, row.status) == ("coupon_expiry", "pending")
    assert payload["code_last4"] == order.coupon_codes[1][-4:]
    assert order.coupon_codes[1] not in row.payload  # the code itself is never sent
    report = report_message(mall, None, None)
    assert (report.coupons_issued, report.coupons_redeemed, report.coupons_expired) == (2, 1, 0)
    assert report.coupon_liability_fen == 500
    clock.advance(days=3)
    with pytest.raises(CoalitionError) as err:
        mall.redeem_coupon("r2", order.coupon_codes[1], "till-1")
    assert err.value.reason == "COUPON_EXPIRED"
    assert [c.status for c in mall.coupons_of("m1")] in (
        ["redeemed", "expired"],
        ["expired", "redeemed"],
    )
    report = report_message(mall, None, None)
    assert (report.coupons_expired, report.coupon_liability_fen) == (1, 0)


def test_codes_are_unguessable_and_typed_codes_are_forgiven_hyphens(ledger, mall):
    member_with_points(ledger, "m1", 100_000)
    mall.upsert_item("up-1", coupon_item(stock=100), "admin")
    codes = mall.buy("b1", "m1", "tea-coupon", 100).coupon_codes
    assert len(set(codes)) == 100
    assert all(len(c) == 20 and set(c) <= set("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for c in codes)
    typed = "-".join(codes[0][i : i + 4] for i in range(0, 20, 4)).lower()
    assert mall.redeem_coupon("r1", typed, "till-1").status == "redeemed"
    with pytest.raises(CoalitionError) as err:
        mall.redeem_coupon("r2", "A" * 20, "till-1")
    assert err.value.reason == "COUPON_NOT_FOUND"
