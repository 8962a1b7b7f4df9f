"""Budget pools drawn by concurrent earnings of returning members: on PostgreSQL the earning's
own statement draws its pools, all or nothing, and a pool running short is granted what it has
left (merchant_node/ledger/store_earn.py, programs.grant). Whatever the interleaving: no pool
ever grants more than its budget, what the pools granted is exactly what the breakdowns paid
from them, no earning fails (no deadlock between earnings asking for the same pools), and the
ledger's laws hold."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from merchant_node.ledger import campaigns
from merchant_node.ledger.commands import Earn, Enroll
from merchant_node.rules.base import LineItem

PROGRAM = """
timezone: UTC
rules:
  - {id: spend, type: spend_brackets, mode: whole, brackets: [{points_per_yuan: "1"}]}
  - {id: weekend_double, type: time_window, multiplier: "2", days_of_week: [sat, sun],
     budget_pool: weekend_pool}
  - {id: fresh_triple, type: category_multiplier, categories: [produce], multiplier: "3",
     budget_pool: fresh_pool}
budget_pools: [{id: weekend_pool, points: WEEKEND}, {id: fresh_pool, points: FRESH}]
"""
POOL_RULES = {"weekend_double": "weekend_pool", "fresh_triple": "fresh_pool"}
MEMBERS = 24
PRODUCE = (LineItem("SKU-APPLE", "produce", 2, 5_000), LineItem("SKU-SOAP", "household", 1, 2_000))
OTHER = (LineItem("SKU-SOAP", "household", 6, 2_000),)


def _earn_concurrently(ledger, clock, weekend: int, fresh: int):  # type: ignore[no-untyped-def]
    ledger.apply_program(PROGRAM.replace("WEEKEND", str(weekend)).replace("FRESH", str(fresh)), "t")
    clock.now = clock.now.replace(day=9)  # a Friday: the members' first orders draw on nothing
    for i in range(MEMBERS):
        ledger.enroll(Enroll(f"enroll-{i}", f"m{i}"))
        ledger.earn(Earn(f"first-{i}", f"m{i}", f"first-{i}", 12_000, "POS", None, OTHER))
    assert [p.granted for p in campaigns_pools(ledger)] == [0, 0]
    clock.now = clock.now.replace(day=10)  # Saturday: every order draws on weekend_pool

    def saturday(k: int):  # type: ignore[no-untyped-def]
        items = PRODUCE if k % 2 else OTHER  # every other order draws on fresh_pool too
        return ledger.earn(
            Earn(f"sat-{k}", f"m{k % MEMBERS}", f"sat-{k}", 12_000, "POS", None, items)
        )

    with ThreadPoolExecutor(16) as workers:
        results = list(workers.map(saturday, range(3 * MEMBERS)))
    paid = {"weekend_pool": 0, "fresh_pool": 0}
    for res in results:
        for line in res.breakdown:
            if line.rule_id in POOL_RULES:
                paid[POOL_RULES[line.rule_id]] += line.points
            elif line.rule_id.startswith("budget_pool:"):
                paid[line.rule_id.removeprefix("budget_pool:")] += line.points
        assert res.points_earned == sum(line.points for line in res.breakdown)
        assert res.points_earned >= 120  # the spend rule is never cut
    assert ledger.audit() == []
    return results, paid


def campaigns_pools(ledger):  # type: ignore[no-untyped-def]
    with ledger.engine.connect() as conn:
        return campaigns.pools(conn, ["fresh_pool", "weekend_pool"])


def test_concurrent_earnings_spend_scarce_pools_exactly_and_never_beyond(ledger, clock):
    # 72 orders ask 120 each of weekend_pool and 36 of them 200 of fresh_pool: both run dry.
    _, paid = _earn_concurrently(ledger, clock, weekend=5_000, fresh=3_000)
    fresh, weekend = campaigns_pools(ledger)
    assert (fresh.granted, weekend.granted) == (3_000, 5_000)
    assert paid == {"weekend_pool": 5_000, "fresh_pool": 3_000}


def test_concurrent_earnings_with_room_draw_each_ask_in_full(ledger, clock):
    results, paid = _earn_concurrently(ledger, clock, weekend=10**9, fresh=10**9)
    assert not any(line.rule_id.startswith("budget_pool:") for r in results for line in r.breakdown)
    fresh, weekend = campaigns_pools(ledger)
    assert (fresh.granted, weekend.granted) == (paid["fresh_pool"], paid["weekend_pool"])
    assert paid == {"weekend_pool": 72 * 120, "fresh_pool": 36 * 200}
