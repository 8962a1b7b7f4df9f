"""Triggers over the real ledger (SQLite and PostgreSQL): the seeds' three sleeping-member causes
each get their own offer once (a 满200减50 coupon in the mall, a new-products message, a
welcome-back bonus in the ledger), control members get nothing, a rerun changes nothing, the
frequency cap holds across triggers, and the report's wake-up rate is a hand count."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from coalition_kernel.errors import CoalitionError
from merchant_node.ledger.commands import Earn
from merchant_node.ledger.schema import lots, members, notifications
from merchant_node.mall.schema import mall_coupons
from merchant_node.marketing.definitions import DefinitionsInvalid
from merchant_node.marketing.schema import trigger_actions
from merchant_node.marketing.service import MarketingService
from merchant_node.marketing.triggers import in_control, occasion, parse_triggers
from tests.mall.support import open_mall
from tests.merchant_node.marketing import population as popmod
from tests.merchant_node.marketing.population import CAUSES, OFFERS, TRIGGERS

START = datetime(2026, 3, 1, tzinfo=UTC)


def _night(day: int) -> datetime:
    return START + timedelta(days=day, hours=18)  # 02:00 in Shanghai


def _nightly(service: MarketingService, at: datetime):  # type: ignore[no-untyped-def]
    service.refresh_facts(at)
    service.place_all(at)
    service.evaluate_tiers(at)
    service.score_churn(at)
    service.record_run(at)
    return service.run_triggers(at)


def _rows(ledger, table, *where):  # type: ignore[no-untyped-def]
    with ledger.engine.connect() as conn:
        return conn.execute(select(table).where(*where)).all()


@pytest.fixture
def world(ledger, clock):  # type: ignore[no-untyped-def]
    pop = popmod.build(START, per_kind=6)
    popmod.enroll_all(ledger, clock, pop, "05-10")
    popmod.earn_days(ledger, clock, pop, popmod.ENROLLED, 120)
    service = MarketingService(ledger, merchant_id="tea", clock=clock)
    service.apply("triggers", TRIGGERS, "ops@tea")
    return pop, service


def test_each_sleeping_member_gets_their_causes_offer_once_and_control_nothing(
    ledger, clock, world
):
    pop, service = world
    outcomes = _nightly(service, _night(120))
    member_pk = {
        r.member_id: r.id for r in _rows(ledger, members, members.c.member_id.is_not(None))
    }
    actions = _rows(ledger, trigger_actions)
    by_member = {}
    for a in actions:
        assert a.member_pk not in by_member, "one action per member (cap: 1 in 30 days)"
        by_member[a.member_pk] = a
    sent = {r.member_pk: r for r in _rows(ledger, notifications)}
    coupons = {r.member_id: r for r in _rows(ledger, mall_coupons)}
    bonus = {
        r.member_pk for r in _rows(ledger, lots, lots.c.rule_id == "trigger:wake_long_silence")
    }
    treated = control = 0
    for member in pop.orders:
        kind = pop.kind(member)
        pk = member_pk[member]
        if kind not in OFFERS:
            assert pk not in by_member and pk not in sent  # steady and vip: not dormant
            continue
        action = by_member[pk]
        assert action.trigger_id == OFFERS[kind], (member, CAUSES[kind])
        held_out = in_control(OFFERS[kind], member, 25)
        assert action.in_control is held_out
        if held_out:
            control += 1
            assert pk not in sent and member not in coupons and pk not in bonus
            continue
        treated += 1
        data = json.loads(sent[pk].payload)
        assert data["trigger_id"] == OFFERS[kind] and sent[pk].kind == "marketing"
        if kind == "price":
            assert coupons[member].value_fen == 5_000
            assert data["coupon_code"] == coupons[member].code
            assert data["coupon_min_spend_fen"] == 20_000
        else:
            assert member not in coupons
        assert (pk in bonus) is (kind == "silent")
        if kind == "silent":
            assert ledger.balance(member).available_points >= 100
    assert treated and control  # both groups are there
    assert sum(o.treated for o in outcomes) == treated
    assert sum(o.held_out for o in outcomes) == control

    # The same night again, and the next night: nothing more is decided, sent or granted.
    _nightly(service, _night(120))
    clock.now = _night(121)
    _nightly(service, _night(121))
    assert len(_rows(ledger, trigger_actions)) == len(actions)
    assert len(_rows(ledger, notifications)) == len(sent)
    assert len(_rows(ledger, mall_coupons)) == len(coupons)
    assert ledger.audit() == []


def test_the_report_counts_woken_members_against_the_control_group(ledger, clock, world):
    pop, service = world
    _nightly(service, _night(120))
    # Days later, four price-sensitive members come back: 0, 1, 2 and 3.
    back = [f"price-{i}" for i in range(4)]
    for member in back:
        clock.now = START + timedelta(days=125, hours=2)
        ledger.earn(Earn(f"earn-{member}-back", member, f"{member}-back", 25_000, "POS", None))
    clock.now = _night(126)
    report = service.trigger_report("wake_price_sensitive")
    quiet = [m for m in pop.orders if pop.kind(m) == "price"]
    held = [m for m in quiet if in_control("wake_price_sensitive", m, 25)]
    treated = [m for m in quiet if m not in held]
    assert (report.treated, report.control) == (len(treated), len(held))
    assert report.treated_converted == len([m for m in back if m in treated])
    assert report.control_converted == len([m for m in back if m in held])
    assert report.treated_spend_fen == 25_000 * report.treated_converted
    assert report.cost_coupon_fen == 5_000 * len(treated)
    expected_rate = report.treated_converted * 10_000 // len(treated)
    assert report.treated_rate_bps == expected_rate


def test_a_woken_members_coupon_carries_its_minimum_spend_to_the_till(ledger, clock, world):
    """满200减50: the trigger's coupon refuses an order under 200 yuan (MIN_SPEND_NOT_MET, the
    coupon stays issued) and takes one of 200."""
    pop, service = world
    _nightly(service, _night(120))
    treated = [
        m for m in pop.orders if pop.kind(m) == "price" and not in_control(OFFERS["price"], m, 25)
    ]
    (coupon, *_) = _rows(ledger, mall_coupons, mall_coupons.c.member_id == treated[0])
    assert (coupon.value_fen, coupon.min_spend_fen) == (5_000, 20_000)
    mall = open_mall(ledger)
    with pytest.raises(CoalitionError) as refused:
        mall.redeem_coupon("r-low", coupon.code, "till-1", 19_999)
    assert refused.value.reason == "MIN_SPEND_NOT_MET"
    assert refused.value.metadata == {"min_spend_fen": "20000", "order_amount_fen": "19999"}
    assert [c.status for c in mall.coupons_of(treated[0])] == ["issued"]
    assert mall.redeem_coupon("r-ok", coupon.code, "till-1", 20_000).status == "redeemed"


def test_the_frequency_cap_holds_across_triggers(ledger, clock, world):
    pop, service = world
    # A second trigger that every dormant member also matches: the cap (1 per 30 days) lets
    # each member have one of the two.
    doubled = TRIGGERS + (
        "  - id: dormant_hello\n"
        "    who: {segments: [dormant]}\n"
        "    control_percent: 0\n"
        "    action: {kind: message, subject: hi, text: hello}\n"
    )
    service.apply("triggers", doubled, "ops@tea")
    _nightly(service, _night(120))
    actions = _rows(ledger, trigger_actions, trigger_actions.c.in_control.is_(False))
    pks = [a.member_pk for a in actions]
    assert len(pks) == len(set(pks))
    # 31 days later the cap has room again: the second trigger reaches them.
    clock.now = _night(151)
    _nightly(service, _night(151))
    hello = _rows(ledger, trigger_actions, trigger_actions.c.trigger_id == "dormant_hello")
    assert hello and {a.member_pk for a in hello} >= set(pks)


def test_bad_triggers_are_refused_with_every_error():
    with pytest.raises(DefinitionsInvalid) as refused:
        parse_triggers(
            "triggers:\n"
            "  - {id: a, who: {when: ['recency_dayz > 1']}, action: {kind: bonus, subject: s, text: t}}\n"
            "  - {id: a, who: {}, control_percent: 95, action: {kind: coupon, subject: s, text: t}}\n"
        )
    text = str(refused.value.errors)
    assert refused.value.reason == "TRIGGERS_INVALID"
    assert "unknown fact 'recency_dayz'" in text
    assert "control_percent" in text


def test_an_episode_of_silence_is_named_by_the_order_that_began_it():
    t = parse_triggers(TRIGGERS).triggers[0]
    last = datetime(2026, 3, 14, 2, 0, tzinfo=UTC)
    now = datetime(2026, 6, 20, tzinfo=UTC)
    assert occasion(t, last, now) == "e:20260314T020000"
    assert occasion(t, last + timedelta(days=100), now) != occasion(t, last, now)
