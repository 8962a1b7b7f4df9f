"""Association rules over a shop's baskets, against support, confidence and lift counted by
hand; the baskets read from the real ledger's order lines (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

pytest.importorskip("mlxtend")

from coalition_kernel.db import run_in_transaction  # noqa: E402
from merchant_node.ledger.commands import Earn, Enroll  # noqa: E402
from merchant_node.marketing.association import association_rules, baskets  # noqa: E402
from merchant_node.rules.base import LineItem  # noqa: E402

# 10 baskets: tea+cake 4 times, tea alone 2, cake alone 1, coffee+cake 2, coffee 1.
CARTS = [{"tea", "cake"}] * 4 + [{"tea"}] * 2 + [{"cake"}] + [{"coffee", "cake"}] * 2 + [{"coffee"}]


def test_rules_by_hand():
    rules = {(r.antecedents, r.consequents): r for r in association_rules(CARTS, 0.2, 0.5)}
    # tea in 6 baskets, cake in 7, both in 4: support 0.4; tea → cake 4/6; lift (4/6)/0.7.
    tea_cake = rules[(("tea",), ("cake",))]
    assert tea_cake.support == pytest.approx(0.4)
    assert tea_cake.confidence == pytest.approx(4 / 6)
    assert tea_cake.lift == pytest.approx((4 / 6) / 0.7)
    # coffee in 3, with cake in 2: support 0.2, confidence 2/3, lift (2/3)/0.7.
    coffee_cake = rules[(("coffee",), ("cake",))]
    assert coffee_cake.confidence == pytest.approx(2 / 3)
    # cake → tea: 4/7 ≥ 0.5; cake → coffee: 2/7 < 0.5, left out.
    assert (("cake",), ("tea",)) in rules and (("cake",), ("coffee",)) not in rules
    assert association_rules(CARTS, 0.9, 0.5) == []


def test_baskets_come_from_the_order_lines(ledger, clock):
    ledger.enroll(Enroll("e-m1", "m1"))
    items = {
        "o1": [("t1", "tea", 3_000), ("k1", "cake", 2_000)],
        "o2": [("t1", "tea", 3_000), ("t2", "tea", 1_000)],
        "o3": [("c1", "coffee", 4_000)],
    }
    for order, lines in items.items():
        clock.advance(hours=1)
        line_items = tuple(LineItem(sku, cat, 1, fen) for sku, cat, fen in lines)
        total = sum(fen for *_, fen in lines)
        ledger.earn(Earn(f"earn-{order}", "m1", order, total, "POS", None, line_items))
    since = datetime(2026, 1, 1, tzinfo=UTC)
    got = run_in_transaction(
        ledger.engine, lambda c: baskets(c, since, clock() + timedelta(seconds=1))
    )
    assert sorted(sorted(b) for b in got) == [["cake", "tea"], ["coffee"], ["tea"]]
    skus = run_in_transaction(
        ledger.engine, lambda c: baskets(c, since, clock() + timedelta(seconds=1), by="sku")
    )
    assert sorted(sorted(b) for b in skus) == [["c1"], ["k1", "t1"], ["t1", "t2"]]
