"""Campaigns at the node: a control group held out deterministically, campaign rules put into
and taken out of a program without disturbing it, and the report's set-based figures."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from fractions import Fraction

import grpc
import pytest

from coalition_kernel.db import run_in_transaction
from coalition_kernel.errors import error_info_of
from coalition_kernel.points import Rate
from merchant_node.client import RulesAdminClient
from merchant_node.ledger import campaigns
from merchant_node.ledger.commands import Earn, Enroll, Refund
from merchant_node.rules.base import Purchase
from merchant_node.rules.engine import ProgramRules, in_control_group
from merchant_node.rules.program import (
    ControlGroup,
    ProgramInvalid,
    load_program,
    with_campaign,
    without_campaign,
)
from merchant_node.server import build_server
from tests.conftest import issue_key

SAT_10H = datetime(2026, 1, 10, 2, 0, tzinfo=UTC)  # Saturday 10:00 in Shanghai
CAMPAIGN = (datetime(2026, 1, 9, 16, 0, tzinfo=UTC), datetime(2026, 1, 11, 16, 0, tzinfo=UTC))
BASELINE = (datetime(2026, 1, 7, 16, 0, tzinfo=UTC), CAMPAIGN[0])

PROGRAM = """
timezone: Asia/Shanghai
rules:
  - {id: spring_10, type: time_window, multiplier: "3", dates: [2026-01-20]}
  - {id: birthday, type: birthday_multiplier, multiplier: "2"}
"""
SPRING_RULES = [
    {
        "id": "spring_1",
        "type": "time_window",
        "campaign": "spring",
        "multiplier": "2",
        "days_of_week": ["sat", "sun"],
        "hours": {"from": "09:00", "to": "21:00"},
        "starts_at": "2026-01-10T00:00:00+08:00",
        "ends_at": "2026-01-12T00:00:00+08:00",
        "budget_pool": "spring_pool",
        "control_group": {"percent": 50, "salt": "spring"},
    }
]
SPRING_POOLS = [{"id": "spring_pool", "points": 500}]
GROUP = ControlGroup(percent=50, salt="spring")
HELD_OUT = next(f"c{i}" for i in range(100) if in_control_group(GROUP, f"c{i}"))
IN = [m for m in (f"p{i}" for i in range(100)) if not in_control_group(GROUP, m)][:2]
RATE = Rate(1, Fraction(1), Fraction(1))


def spring_program():  # type: ignore[no-untyped-def]
    return with_campaign(load_program(PROGRAM), "spring", SPRING_RULES, SPRING_POOLS)


# -- the control group ------------------------------------------------------------------------


def test_the_control_group_is_deterministic_near_its_percent_and_salted_per_campaign():
    members = [f"member-{i}" for i in range(10_000)]
    held = [m for m in members if in_control_group(ControlGroup(percent=10, salt="spring"), m)]
    assert 900 <= len(held) <= 1100
    again = [m for m in members if in_control_group(ControlGroup(percent=10, salt="spring"), m)]
    assert held == again
    other = {m for m in members if in_control_group(ControlGroup(percent=10, salt="autumn"), m)}
    assert len(other & set(held)) < 250  # independent draws share about 1% of members, not 10%


def test_a_control_group_member_gets_no_campaign_points_and_draws_nothing_from_the_pool():
    rules = ProgramRules(spring_program())
    held = rules.evaluate(Purchase(HELD_OUT, "o1", 10_000, "POS", SAT_10H), RATE)
    assert held.points == 100
    assert [(b.rule_id, b.points) for b in held.breakdown] == [
        ("base_rate", 100),
        ("control_group:spring_1", 0),
    ]
    assert held.pool_draws == []
    given = rules.evaluate(Purchase(IN[0], "o2", 10_000, "POS", SAT_10H), RATE)
    assert [(b.rule_id, b.points) for b in given.breakdown] == [
        ("base_rate", 100),
        ("spring_1", 100),
    ]
    assert [(d.pool_id, d.points) for d in given.pool_draws] == [("spring_pool", 100)]


def test_outside_its_window_the_control_group_leaves_no_trace():
    monday = datetime(2026, 1, 12, 2, 0, tzinfo=UTC)
    evaluation = ProgramRules(spring_program()).evaluate(
        Purchase(HELD_OUT, "o1", 10_000, "POS", monday), RATE
    )
    assert [b.rule_id for b in evaluation.breakdown] == ["base_rate"]


def test_a_control_group_needs_a_percent_between_1_and_99():
    bad = dict(SPRING_RULES[0], control_group={"percent": 100, "salt": "spring"})
    with pytest.raises(ProgramInvalid) as err:
        with_campaign(None, "spring", [bad], SPRING_POOLS)
    assert "control_group.percent" in str(err.value)


# -- campaign rules in a program --------------------------------------------------------------


def test_the_same_campaign_state_gives_the_same_digest_and_the_merchants_rules_stay_first():
    once = spring_program()
    twice = with_campaign(once, "spring", SPRING_RULES, SPRING_POOLS)
    assert twice.digest() == once.digest()
    assert [r.id for r in once.rules] == ["spring_10", "birthday", "spring_1"]
    later = dict(SPRING_RULES[0], ends_at="2026-01-13T00:00:00+08:00")
    extended = with_campaign(once, "spring", [later], SPRING_POOLS)
    assert extended.digest() != once.digest()
    assert [r.id for r in extended.rules] == ["spring_10", "birthday", "spring_1"]


def test_switching_a_campaign_off_gives_back_the_program_it_was_added_to():
    base = load_program(PROGRAM)
    off = without_campaign(spring_program(), "spring")
    assert off.digest() == base.digest()
    assert without_campaign(base, "spring") is base
    assert without_campaign(None, "spring").rules == ()


def test_a_pool_another_rule_still_uses_stays_when_the_campaign_goes():
    shared = load_program(
        PROGRAM
        + "engagement: {check_in: {points: 5, budget_pool: spring_pool}}\n"
        + "budget_pools: [{id: spring_pool, points: 500}]\n"
    )
    on = with_campaign(shared, "spring", SPRING_RULES, SPRING_POOLS)
    assert [p.id for p in without_campaign(on, "spring").budget_pools] == ["spring_pool"]


def test_a_campaign_rule_clashing_with_a_merchant_rule_is_refused():
    clash = dict(SPRING_RULES[0], id="spring_10")
    with pytest.raises(ProgramInvalid, match="duplicates"):
        with_campaign(load_program(PROGRAM), "spring", [clash], SPRING_POOLS)


# -- the report's figures ---------------------------------------------------------------------


def earn(ledger, clock, at, member, order, fen):  # type: ignore[no-untyped-def]
    clock.now = at
    return ledger.earn(Earn(f"e-{order}", member, order, fen, "POS", None))


def test_the_report_counts_participants_control_group_window_and_baseline_exactly(ledger, clock):
    ledger.configure_rate("1", "1/2")  # a point is worth half a fen: cost rounds up
    ledger.apply_program(json.dumps(spring_program().to_document()), "test")
    p1, p2 = IN
    for member in (p1, p2, HELD_OUT):
        ledger.enroll(Enroll(f"enroll-{member}", member))
    thursday = datetime(2026, 1, 8, 4, 0, tzinfo=UTC)
    earn(ledger, clock, thursday, p1, "b1", 10_000)  # baseline
    earn(ledger, clock, thursday, HELD_OUT, "b2", 5_000)
    earn(ledger, clock, SAT_10H, p1, "w1", 10_000)  # 100 + 100 from the pool
    second = earn(ledger, clock, SAT_10H, p2, "w2", 30_000)  # 300 + 300
    third = earn(ledger, clock, SAT_10H, p1, "w3", 20_000)  # 200 + 100 of 200: the pool is spent
    earn(ledger, clock, SAT_10H, HELD_OUT, "w4", 8_000)  # control: 80, no campaign points
    late = datetime(2026, 1, 10, 14, 0, tzinfo=UTC)  # 22:00: in the window, not in its hours
    earn(ledger, clock, late, p2, "w5", 1_000)
    ledger.refund(Refund("r-w2", "w2", amount_fen=5_000))
    earn(ledger, clock, datetime(2026, 1, 12, 2, 0, tzinfo=UTC), p2, "after", 10_000)
    assert [b.points for b in second.breakdown] == [300, 300]
    assert third.points_earned == 300  # 200 base + 100 of 200 asked (the pool's last points)

    figures = run_in_transaction(
        ledger.engine, lambda conn: campaigns.report(conn, "spring", CAMPAIGN, BASELINE)
    )
    assert figures.rule_ids == ["spring_1"]
    assert figures.pools == [campaigns.PoolStatus("spring_pool", 500, 500)]
    assert figures.points_granted == 500
    assert figures.fen_per_point == Fraction(1, 2) and figures.points_cost_fen == 250
    assert figures.participating == campaigns.OrderFigures(3, 55_000, 1_100, 2)
    assert figures.control_group == campaigns.OrderFigures(1, 8_000, 80, 1)
    assert figures.window == campaigns.OrderFigures(5, 64_000, 1_190, 3)
    assert figures.baseline == campaigns.OrderFigures(2, 15_000, 150, 2)


def test_a_campaign_never_run_here_reports_zeros(ledger):
    figures = run_in_transaction(
        ledger.engine, lambda conn: campaigns.report(conn, "nothing", CAMPAIGN, BASELINE)
    )
    assert figures.rule_ids == [] and figures.pools == [] and figures.points_cost_fen == 0
    assert figures.participating == campaigns.OrderFigures()


# -- over the wire ----------------------------------------------------------------------------


async def test_apply_on_a_stale_version_is_refused_and_pools_and_reports_need_the_token(ledger):
    server, offload = build_server(ledger, "127.0.0.1:0")
    port = await server.start()
    try:
        async with RulesAdminClient(f"127.0.0.1:{port}", issue_key(ledger, "admin")) as admin:
            first = await admin.apply(PROGRAM, "ops", base_version=0)
            assert first.version == 1
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await admin.apply(PROGRAM, "ops", base_version=0)  # someone else's v1 came first
            assert err.value.code() == grpc.StatusCode.ABORTED
            assert error_info_of(err.value).reason == "PROGRAM_CHANGED"
            assert [v.version for v in await admin.versions()] == [1]
            document = json.dumps(spring_program().to_document())
            assert (await admin.apply(document, "ops", base_version=1)).version == 2
            pools = await admin.budget_pools(["spring_pool", "unknown"])
            assert [(p.pool_id, p.budget_points, p.granted_points) for p in pools] == [
                ("spring_pool", 500, 0)
            ]
            report = await admin.campaign_report("spring", CAMPAIGN, BASELINE)
            assert list(report.rule_ids) == ["spring_1"] and report.fen_per_point == "1"
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await admin.campaign_report("spring", (CAMPAIGN[1], CAMPAIGN[0]), BASELINE)
            assert error_info_of(err.value).reason == "BAD_WINDOW"
        async with RulesAdminClient(f"127.0.0.1:{port}", "wrong") as intruder:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await intruder.budget_pools()
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        await server.stop(1)
        offload.shutdown()
