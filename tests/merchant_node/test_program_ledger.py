"""The rules engine in the ledger and over the wire: programs as data applied at run time,
pending points, engagement, referrals, tiers, caps and budget pools under concurrency."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import grpc
import pytest

from coalition.merchant.v1 import merchant_node_pb2 as pb
from coalition.merchant.v1 import rules_admin_pb2 as rpb
from coalition.merchant.v1 import rules_admin_pb2_grpc
from coalition_kernel.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    error_info_of,
)
from merchant_node.client import MerchantNodeClient, bearer
from merchant_node.ledger.commands import Earn, Enroll, Refund
from merchant_node.server import build_server
from tests.conftest import issue_key

PROGRAM = """
timezone: Asia/Shanghai
exclusions: {categories: [gift_card], exclude_points_paid: true}
rules:
  - {id: spend_tiers, type: spend_brackets, mode: whole,
     brackets: [{up_to_yuan: 1000, points_per_yuan: "1"}, {up_to_yuan: 5000, points_per_yuan: "1.5"}, {points_per_yuan: "2"}]}
  - {id: member_tier, type: tier_multiplier, tiers: {silver: "1", gold: "1.5"}}
  - {id: first_order, type: first_purchase_bonus, points: 100}
  - {id: weekend_double, type: time_window, multiplier: "2", days_of_week: [sat, sun], budget_pool: weekend_pool}
caps: {per_order: 5000, per_member_per_day: 8000}
budget_pools: [{id: weekend_pool, points: 1000}]
engagement:
  check_in: {points: 5, streak_bonuses: {7: 30}}
  review: {points: 20, daily_limit: 1}
  share: {points: 10, daily_limit: 3}
  referral: {referrer_points: 200, referee_points: 100}
tiers:
  measure: spend_12m
  levels: [{id: silver, threshold: 0}, {id: gold, threshold: 500000, upgrade_cost_points: 1000}]
  grace_days: 30
"""


def earn(ledger, member, order, fen, **kw):  # type: ignore[no-untyped-def]
    return ledger.earn(Earn(f"e-{order}", member, order, fen, "POS", None, **kw))


@pytest.fixture
def program_ledger(ledger):  # type: ignore[no-untyped-def]
    ledger.apply_program(PROGRAM, "test")
    for m in ("m1", "m2"):
        ledger.enroll(Enroll(f"enroll-{m}", m))
    return ledger


def test_the_seed_brackets_apply_and_explain_themselves(program_ledger):
    first = earn(program_ledger, "m1", "o1", 80_000)  # 800 yuan at 1/yuan + first order 100
    assert (first.points_earned, [b.rule_id for b in first.breakdown]) == (
        900,
        ["spend_tiers", "first_order"],
    )
    second = earn(program_ledger, "m1", "o2", 200_000)  # 2000 yuan: the 1.5 bracket, whole
    assert second.points_earned == 3000 and second.rule_version == "program-1"


def test_an_invalid_program_is_refused_whole_and_the_previous_stays_in_force(program_ledger):
    bad = PROGRAM.replace('multiplier: "2"', 'multiplier: "-2"').replace(
        "points: 100", "points: -5"
    )
    with pytest.raises(InvalidArgument) as err:
        program_ledger.apply_program(bad, "test")
    assert err.value.reason == "PROGRAM_INVALID"
    assert len(err.value.errors) >= 2  # type: ignore[attr-defined]
    assert any("weekend_double" in e and "multiplier" in e for e in err.value.errors)  # type: ignore[attr-defined]
    assert any("first_order" in e and "points" in e for e in err.value.errors)  # type: ignore[attr-defined]
    assert [v.version for v in program_ledger.program_history()] == [1]
    assert earn(program_ledger, "m1", "o1", 10_000).rule_version == "program-1"


def test_gift_cards_and_the_part_paid_with_points_earn_nothing(program_ledger):
    items = (
        __import__("merchant_node.rules.base", fromlist=["LineItem"]).LineItem(
            "card", "gift_card", 1, 50_000
        ),
        __import__("merchant_node.rules.base", fromlist=["LineItem"]).LineItem(
            "tea", "drink", 1, 50_000
        ),
    )
    res = earn(program_ledger, "m1", "o1", 100_000, line_items=items, points_paid_fen=10_000)
    assert res.points_earned == 100 + 400  # first order + (500 − 100 paid with points) yuan


def test_the_weekend_double_draws_on_its_pool_until_the_budget_is_spent(program_ledger, clock):
    clock.now = clock.now.replace(day=10)  # Saturday
    res = earn(program_ledger, "m1", "o1", 80_000)  # 800 base + 800 weekend + 100 first order
    assert res.points_earned == 1700
    res = earn(program_ledger, "m2", "o2", 80_000)  # the pool has 200 left
    assert [(b.rule_id, b.points) for b in res.breakdown][-1] == ("budget_pool:weekend_pool", -600)
    assert res.points_earned == 800 + 200 + 100


def test_the_daily_cap_counts_every_order_of_the_day(program_ledger):
    earn(program_ledger, "m1", "o1", 400_000)  # 4000 yuan → 6000 points, capped at 5000
    res = earn(program_ledger, "m1", "o2", 400_000)  # only 8000 a day: 3000 left
    assert res.points_earned == 3000
    assert res.breakdown[-1].rule_id == "cap_per_member_per_day"


def test_pending_points_wait_for_the_return_window_and_a_refund_inside_it_leaves_no_debt(
    ledger, clock
):
    ledger.apply_program("pending_days: 7\n", "test")
    ledger.enroll(Enroll("e1", "m1"))
    res = earn(ledger, "m1", "o1", 10_000)
    assert res.available_from == clock.now + timedelta(days=7)
    bal = ledger.balance("m1")
    assert (bal.available_points, bal.pending_points) == (0, 100)
    refund = ledger.refund(Refund("r1", "o1", full=True))
    assert (refund.points_clawed_back, refund.points_added_to_debt) == (100, 0)
    earn(ledger, "m1", "o2", 10_000)
    clock.advance(days=7)
    assert ledger.balance("m1").available_points == 100
    assert ledger.audit() == []


def test_check_in_streak_pays_a_bonus_on_day_seven(program_ledger, clock):
    awards = []
    for _ in range(7):
        awards.append(program_ledger.check_in(f"ci-{clock.now.date()}", "m1").points_awarded)
        clock.advance(days=1)
    assert awards == [5, 5, 5, 5, 5, 5, 35]
    program_ledger.check_in("again-1", "m1")
    with pytest.raises(AlreadyExists) as err:
        program_ledger.check_in("again-2", "m1")
    assert err.value.reason == "ALREADY_CHECKED_IN"


def test_reviews_and_shares_pay_within_daily_limits_and_once_each(program_ledger, clock):
    assert program_ledger.engage("r1", "m1", "review", "review-1").points_awarded == 20
    with pytest.raises(FailedPrecondition) as err:
        program_ledger.engage("r2", "m1", "review", "review-2")
    assert err.value.reason == "DAILY_LIMIT_REACHED"
    clock.advance(days=1)
    with pytest.raises(AlreadyExists):
        program_ledger.engage("r3", "m1", "review", "review-1")
    assert [
        program_ledger.engage(f"s{i}", "m1", "share", f"share-{i}").points_awarded for i in range(3)
    ] == [10] * 3


def test_a_referral_pays_both_sides_at_the_first_purchase_only(ledger):
    ledger.apply_program(PROGRAM, "test")
    code = ledger.enroll(Enroll("e-a", "alice", phone="13800000001")).referral_code
    ledger.enroll(Enroll("e-b", "bob", phone="13800000002", referral_code=code))
    earn(ledger, "bob", "o1", 10_000)  # 100 + first order 100 + referee 100
    earn(ledger, "bob", "o2", 10_000)
    assert ledger.balance("alice").available_points == 200
    assert ledger.balance("bob").available_points == 300 + 100
    with pytest.raises(Exception) as err:
        ledger.enroll(Enroll("e-c", "carol", referral_code="NOSUCH"))
    assert getattr(err.value, "reason", "") == "REFERRAL_CODE_UNKNOWN"


def test_a_self_referral_under_a_second_id_pays_nothing(ledger):
    ledger.apply_program(PROGRAM, "test")
    code = ledger.enroll(Enroll("e-a", "alice", phone="13800000001")).referral_code
    ledger.enroll(Enroll("e-a2", "alice-2", phone="13800000001", referral_code=code))
    earn(ledger, "alice-2", "o1", 10_000)
    assert ledger.balance("alice").available_points == 0
    assert ledger.balance("alice-2").available_points == 200  # purchase + first order only


def test_tiers_upgrade_at_once_sell_upgrades_and_downgrade_after_grace(program_ledger, clock):
    assert program_ledger.profile("m1").tier == "silver"
    earn(program_ledger, "m1", "o1", 100_000)
    for i in range(3):
        program_ledger.check_in(f"c{i}", "m1")
        clock.advance(days=1)
    profile = program_ledger.profile("m1")
    assert (profile.next_tier, profile.measure_value, profile.next_threshold) == (
        "gold",
        100_000,
        500_000,
    )
    up = program_ledger.upgrade_tier("u1", "m1", "gold")  # 银卡升金卡消耗1000积分
    assert (up.tier, up.points_spent, up.available_points) == ("gold", 1000, 1100 + 15 - 1000)
    with pytest.raises(FailedPrecondition):
        program_ledger.upgrade_tier("u2", "m2", "gold")  # m2 has no points
    earn(program_ledger, "m2", "big", 600_000)  # 6000 yuan: gold at once
    assert program_ledger.profile("m2").tier == "gold"
    program_ledger.evaluate_tiers()  # m1 bought gold but does not qualify: grace first
    assert program_ledger.profile("m1").tier == "gold"
    clock.advance(days=31)
    program_ledger.evaluate_tiers()
    assert program_ledger.profile("m1").tier == "silver"
    assert program_ledger.audit() == []


async def test_32_concurrent_earns_never_overspend_the_budget_pool(ledger, clock):
    ledger.apply_program(
        PROGRAM.replace("caps: {per_order: 5000, per_member_per_day: 8000}", ""), "test"
    )
    clock.now = clock.now.replace(day=10)  # Saturday: the weekend double draws on its pool
    for i in range(32):
        ledger.enroll(Enroll(f"e{i}", f"m{i}"))
    server, offload = build_server(ledger, "127.0.0.1:0", workers=32)
    port = await server.start()
    try:
        key = issue_key(ledger)
        async with MerchantNodeClient(f"127.0.0.1:{port}", api_key=key, timeout=60) as client:
            results = await asyncio.gather(
                *(client.earn(f"m{i}", f"o{i}", 10_000) for i in range(32))
            )
    finally:
        await server.stop(1)
        offload.shutdown()
    weekend = sum(
        next((b.points for b in r.breakdown if b.rule_id == "weekend_double"), 0) for r in results
    )
    cuts = sum(
        b.points for r in results for b in r.breakdown if b.rule_id.startswith("budget_pool")
    )
    assert weekend + cuts == 1000  # exactly the pool, never more
    assert all(r.points_earned >= 200 for r in results)  # base + first order always paid
    assert ledger.audit() == []


async def test_the_admin_service_needs_an_admin_key_and_validates_applies_and_simulates(ledger):
    server, offload = build_server(ledger, "127.0.0.1:0")
    admin_key, pos_key = issue_key(ledger, "admin"), issue_key(ledger, "pos,read")
    port = await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = rules_admin_pb2_grpc.RulesAdminServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.ListProgramVersions(rpb.ListProgramVersionsRequest())
            assert error_info_of(err.value).reason == "API_KEY_REQUIRED"
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.ListProgramVersions(
                    rpb.ListProgramVersionsRequest(), metadata=bearer(pos_key)
                )
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert error_info_of(err.value).reason == "SCOPE_DENIED"
            auth = bearer(admin_key)
            checked = await stub.ValidateProgram(
                rpb.ValidateProgramRequest(document="caps: {per_order: -1}\nnonsense: 1\n"),
                metadata=auth,
            )
            assert not checked.valid and len(checked.errors) == 2
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.ApplyProgram(
                    rpb.ApplyProgramRequest(
                        request_id="a0", document="caps: {per_order: -1}\n", applied_by="ops"
                    ),
                    metadata=auth,
                )
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            applied = await stub.ApplyProgram(
                rpb.ApplyProgramRequest(request_id="a1", document=PROGRAM, applied_by="ops"),
                metadata=auth,
            )
            assert applied.version == 1
            shown = await stub.GetProgram(rpb.GetProgramRequest(), metadata=auth)
            assert shown.program.digest == applied.digest
            sim = await stub.SimulateEarn(
                rpb.SimulateEarnRequest(
                    purchase=pb.EarnRequest(amount_fen=200_000), tier="gold", first_purchase=True
                ),
                metadata=auth,
            )
            assert sim.points == 3000 + 1500 + 100
            assert [b.rule_id for b in sim.breakdown] == [
                "spend_tiers",
                "member_tier",
                "first_order",
            ]
    finally:
        await server.stop(1)
        offload.shutdown()
