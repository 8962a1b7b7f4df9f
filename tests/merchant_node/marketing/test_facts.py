"""Member facts computed set-based over the real ledger (SQLite and PostgreSQL), checked against
figures counted by hand; the one-member recompute gives the nightly row for that member."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from coalition_kernel.db import run_in_transaction
from merchant_node.ledger.commands import Earn, Enroll, Redeem, Refund
from merchant_node.ledger.store import find_member
from merchant_node.marketing.facts import FactsScope, compute_facts
from merchant_node.marketing.store import facts_of
from merchant_node.rules.base import LineItem

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # 17:00 in Shanghai


def _earn(ledger, clock, member, order, fen, at, category="", **kw):
    clock.now = at
    items = (LineItem(f"sku-{category}", category, 1, fen),) if category else ()
    ledger.earn(Earn(f"earn-{order}", member, order, fen, "POS", None, items, **kw))


def _member_pk(ledger, member_id):
    return run_in_transaction(ledger.engine, lambda c: find_member(c, member_id).id)


def _facts(ledger, member_id):
    pk = _member_pk(ledger, member_id)
    return run_in_transaction(ledger.engine, lambda c: facts_of(c, pk))


def test_facts_of_every_member_match_a_hand_count(ledger, clock):
    clock.now = T0
    for m in ("alice", "bob", "quiet"):
        ledger.enroll(Enroll(f"enroll-{m}", m))
    # alice: tea for months, then coffee lately; one order part-paid with points; one refunded.
    _earn(ledger, clock, "alice", "a1", 10_000, T0 + timedelta(days=1), "tea")  # 17:00 local
    _earn(ledger, clock, "alice", "a2", 20_000, T0 + timedelta(days=40, hours=-8), "tea")  # 09:00
    _earn(ledger, clock, "alice", "a3", 6_000, T0 + timedelta(days=150, hours=-8), "coffee")
    clock.now = T0 + timedelta(days=150, hours=-7)
    ledger.redeem(Redeem("redeem-a3", "alice", "a3", points=50))
    _earn(ledger, clock, "alice", "a4", 4_000, T0 + timedelta(days=170), "coffee")  # 17:00
    _earn(ledger, clock, "alice", "a5", 9_000, T0 + timedelta(days=171), "coffee")
    ledger.refund(Refund("refund-a5", "a5", amount_fen=9_000))
    # bob: one order long ago.
    _earn(ledger, clock, "bob", "b1", 30_000, T0 + timedelta(days=2, hours=-8))
    as_of = T0 + timedelta(days=180)
    clock.now = as_of
    n = run_in_transaction(ledger.engine, lambda c: compute_facts(c, FactsScope(as_of)))
    assert n == 3
    alice = _facts(ledger, "alice")
    # Orders counted: a1..a4 (a5 fully refunded). Last order day 170: recency 10 days.
    assert alice.recency_days == 10
    assert alice.tenure_days == 180
    assert (alice.orders_30d, alice.orders_90d, alice.orders_365d, alice.orders_total) == (
        1,
        2,
        4,
        4,
    )
    assert (alice.spend_30d_fen, alice.spend_90d_fen, alice.spend_365d_fen) == (
        4_000,
        10_000,
        40_000,
    )
    assert alice.avg_order_90d_fen == 5_000
    assert alice.avg_order_365d_fen == 10_000
    # One of four orders part-paid with points: 2500 bps. Earned 100+200+60+40 = 400 points,
    # redeemed 50: 1250 bps.
    assert (alice.points_paid_orders_365d, alice.points_paid_share_bps) == (1, 2_500)
    assert (alice.earned_points_365d, alice.redeemed_points_365d) == (400, 50)
    assert alice.redemption_rate_bps == 1_250
    # a1 and a4 at 17:00 local, a2 and a3 at 09:00: half in the evening.
    assert alice.evening_share_bps == 5_000
    # Coffee (days 150, 170) in the last 90 days; tea (days 1, 40) before: a category shift.
    assert (alice.top_category_90d, alice.top_category_prev) == ("coffee", "tea")
    assert alice.category_shift is True
    bob = _facts(ledger, "bob")
    assert (bob.recency_days, bob.orders_total, bob.spend_total_fen) == (178, 1, 30_000)
    assert (bob.orders_90d, bob.top_category_90d, bob.category_shift) == (0, None, False)
    quiet = _facts(ledger, "quiet")
    assert (quiet.recency_days, quiet.orders_total, quiet.last_order_at) == (180, 0, None)


def test_one_member_recompute_equals_the_nightly_row_and_leaves_the_others(ledger, clock):
    clock.now = T0
    for m in ("alice", "bob"):
        ledger.enroll(Enroll(f"enroll-{m}", m))
    _earn(ledger, clock, "alice", "a1", 10_000, T0 + timedelta(days=1), "tea")
    _earn(ledger, clock, "bob", "b1", 5_000, T0 + timedelta(days=2), "tea")
    as_of = T0 + timedelta(days=10)
    run_in_transaction(ledger.engine, lambda c: compute_facts(c, FactsScope(as_of)))
    pk = _member_pk(ledger, "alice")
    nightly = run_in_transaction(ledger.engine, lambda c: facts_of(c, pk))
    bob_before = _facts(ledger, "bob")
    run_in_transaction(ledger.engine, lambda c: compute_facts(c, FactsScope(as_of, member_pk=pk)))
    assert run_in_transaction(ledger.engine, lambda c: facts_of(c, pk)) == nightly
    bob_after = _facts(ledger, "bob")
    assert bob_after == bob_before
