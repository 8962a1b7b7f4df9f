"""The two behaviour triggers of seed 000 not covered by test_triggers.py, over the real ledger
(SQLite and PostgreSQL), with hand-computed expectations: close to the next tier (the rules
engine's levels and measure) and points expiring (an offer; the expiry reminder is the message).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from merchant_node.ledger.commands import Earn, Enroll
from merchant_node.ledger.schema import members, notifications
from merchant_node.mall.schema import mall_coupons
from merchant_node.marketing.definitions import DefinitionsInvalid
from merchant_node.marketing.schema import trigger_actions
from merchant_node.marketing.service import MarketingService
from merchant_node.marketing.triggers import parse_triggers

START = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai

# 1 point per yuan (the test ledger); three levels by 12-month spend.
PROGRAM = """
timezone: Asia/Shanghai
rules: []
tiers:
  measure: spend_12m
  levels: [{id: member, threshold: 0}, {id: silver, threshold: 20000}, {id: gold, threshold: 50000}]
  grace_days: 30
  evaluation_day: "12-31"
"""

NEAR = """
triggers:
  - id: nearly_there
    who: {near_next_tier: {within: 5000}}
    once_per: month
    control_percent: 0
    action: {kind: message, subject: 差一点就升级, text: 再消费一点即可升级}
"""

EXPIRING = """
triggers:
  - id: use_them
    who: {points_expiring: {within_days: 30, min_points: 100}}
    once_per: month
    control_percent: 0
    action: {kind: coupon, value_fen: 1000, min_spend_fen: 5000, valid_days: 30,
             subject: 积分快到期, text: 送您一张满50减10的券}
"""


def _book(ledger, clock, member: str, orders: list[tuple[int, int]]) -> None:  # type: ignore[no-untyped-def]
    """Enrols `member` at START and books (day, fen) orders at 10:00 Shanghai on those days."""
    clock.now = START
    ledger.enroll(Enroll(f"enroll-{member}", member))
    for index, (day, fen) in enumerate(orders):
        clock.now = START + timedelta(days=day)
        ledger.earn(Earn(f"earn-{member}-{index}", member, f"{member}-{index}", fen, "POS", None))


def _night(service: MarketingService, at: datetime):  # type: ignore[no-untyped-def]
    service.refresh_facts(at)
    service.place_all(at)
    return service.run_triggers(at)


def _acted(ledger, trigger_id: str) -> set[str]:  # type: ignore[no-untyped-def]
    with ledger.engine.connect() as conn:
        rows = conn.execute(
            select(members.c.member_id)
            .join(trigger_actions, trigger_actions.c.member_pk == members.c.id)
            .where(trigger_actions.c.trigger_id == trigger_id)
        ).all()
    return {r.member_id for r in rows}


def test_close_to_the_next_tier_by_the_programs_levels(ledger, clock):
    clock.now = START
    ledger.apply_program(PROGRAM, "test")
    # Spend in the 365 days up to the night (fen) → level (upgraded at once) → short of next:
    _book(ledger, clock, "a", [(1, 15_000)])  # 15000 member → silver 20000: 5000 short → yes
    _book(ledger, clock, "b", [(1, 14_999)])  # 14999 member: 5001 short → no
    _book(ledger, clock, "c", [(1, 10_000), (2, 8_000)])  # 18000 member: 2000 short → yes
    _book(ledger, clock, "d", [(1, 25_000)])  # 25000 silver → gold 50000: 25000 short → no
    _book(ledger, clock, "e", [(1, 30_000), (3, 16_000)])  # 46000 silver: 4000 short → yes
    _book(ledger, clock, "f", [(1, 55_000)])  # 55000 gold, the top → no
    _book(ledger, clock, "g", [])  # never bought: 20000 short → no
    assert ledger.profile("e").tier == "silver" and ledger.profile("f").tier == "gold"
    service = MarketingService(ledger, merchant_id="tea", clock=clock)
    service.apply("triggers", NEAR, "ops@tea")
    night = START + timedelta(days=10, hours=16)
    clock.now = night
    (outcome,) = _night(service, night)
    assert _acted(ledger, "nearly_there") == {"a", "c", "e"}
    assert (outcome.treated, outcome.held_out) == (3, 0)
    with ledger.engine.connect() as conn:
        sent = conn.execute(select(notifications)).all()
    assert len(sent) == 3
    assert {json.loads(n.payload)["trigger_id"] for n in sent} == {"nearly_there"}

    # The same night again: decided once. A year later the 12-month spend has lapsed: a's
    # 15000 falls out of the window (0 short 20000: no).
    _night(service, night)
    assert len(_acted(ledger, "nearly_there")) == 3
    later = START + timedelta(days=400)
    clock.now = later
    _night(service, later)
    assert _acted(ledger, "nearly_there") == {"a", "c", "e"}


def test_without_tiers_nobody_is_close_to_one(ledger, clock):
    clock.now = START
    _book(ledger, clock, "a", [(1, 15_000)])
    service = MarketingService(ledger, clock=clock)
    service.apply("triggers", NEAR, "ops@tea")
    night = START + timedelta(days=2)
    clock.now = night
    (outcome,) = _night(service, night)
    assert (outcome.treated, outcome.held_out) == (0, 0)


def test_points_expiring_within_the_window_get_the_offer(ledger, clock):
    # Lots live 365 days (the test ledger). The night is day 340: the horizon is day 370.
    _book(ledger, clock, "x", [(0, 12_000)])  # 120 points expiring day 365 → yes
    _book(ledger, clock, "y", [(0, 9_000)])  # 90 points expiring: under 100 → no
    _book(ledger, clock, "z", [(20, 12_000)])  # 120 points, but on day 385 → no
    _book(ledger, clock, "w", [(0, 5_000), (5, 6_000)])  # 50 (day 365) + 60 (day 370) → yes
    _book(ledger, clock, "v", [(0, 5_000), (6, 6_000)])  # 50 + 60 on day 371 (outside) → no
    service = MarketingService(ledger, merchant_id="tea", clock=clock)
    service.apply("triggers", EXPIRING, "ops@tea")
    night = START + timedelta(days=340)
    clock.now = night
    (outcome,) = _night(service, night)
    assert _acted(ledger, "use_them") == {"x", "w"}
    assert outcome.treated == 2
    with ledger.engine.connect() as conn:
        coupons = {r.member_id: r for r in conn.execute(select(mall_coupons)).all()}
        sent = conn.execute(select(notifications)).all()
    assert set(coupons) == {"x", "w"} and {c.value_fen for c in coupons.values()} == {1000}
    assert {json.loads(n.payload)["coupon_code"] for n in sent} == {
        c.code for c in coupons.values()
    }
    _night(service, night)  # a rerun: nothing twice
    with ledger.engine.connect() as conn:
        assert len(conn.execute(select(mall_coupons)).all()) == 2

    # Day 372, a new month: x's and w's lots have expired (nothing for them again); z's 120
    # points now expire on day 385, inside the horizon (day 402): z gets the offer; v's 60
    # points left are under 100.
    later = START + timedelta(days=372)
    clock.now = later
    _night(service, later)
    assert _acted(ledger, "use_them") == {"x", "w", "z"}


def test_points_expiring_must_make_an_offer_not_repeat_the_reminder():
    with pytest.raises(DefinitionsInvalid) as refused:
        parse_triggers(
            "triggers:\n"
            "  - {id: remind, who: {points_expiring: {within_days: 30}},"
            " action: {kind: message, subject: s, text: t}}\n"
        )
    assert refused.value.reason == "TRIGGERS_INVALID"
    assert "points_expiring makes an offer" in str(refused.value.errors)


def test_bad_windows_are_refused_with_every_error():
    with pytest.raises(DefinitionsInvalid) as refused:
        parse_triggers(
            "triggers:\n"
            "  - {id: far, who: {points_expiring: {within_days: 0}, near_next_tier: {within: 0}},"
            " action: {kind: bonus, bonus_points: 10, subject: s, text: t}}\n"
        )
    text = str(refused.value.errors)
    assert "points_expiring.within_days" in text and "near_next_tier.within" in text
