"""Check-in streaks, daily limits on reviews and shares, and referral abuse checks."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from coalition_kernel.errors import AlreadyExists, FailedPrecondition, InvalidArgument
from merchant_node.rules.base import RuleLine
from merchant_node.rules.engagement import (
    check_in,
    check_referral,
    limited_award,
    referral_award,
)
from merchant_node.rules.program import CheckIn, LimitedAction, Referral

WEEKLY = CheckIn(points=5, streak_bonuses={7: 30})
CYCLING = CheckIn(points=5, streak_bonuses={7: 30}, cycle_days=7)
DAY = date(2026, 3, 1)


def check_in_days(rule: CheckIn, days: int) -> list[int]:
    last, streak, points = None, 0, []
    for offset in range(days):
        award = check_in(rule, last, streak, DAY + timedelta(days=offset))
        last, streak = DAY + timedelta(days=offset), award.streak
        points.append(award.points)
    return points


def test_seed_five_points_a_day_and_thirty_more_on_day_seven():
    assert check_in_days(WEEKLY, 7) == [5, 5, 5, 5, 5, 5, 35]
    assert sum(check_in_days(WEEKLY, 7)) == 65
    points, streak, lines = check_in(WEEKLY, DAY - timedelta(days=1), 6, DAY)
    assert (points, streak) == (35, 7)
    assert lines == [
        RuleLine("check_in", "daily check-in", 5),
        RuleLine("check_in_streak", "day 7 of a check-in streak", 30),
    ]


def test_a_streak_runs_on_without_a_cycle_and_restarts_with_one():
    assert check_in_days(WEEKLY, 15) == [5] * 6 + [35] + [5] * 8
    assert check_in_days(CYCLING, 15) == [5] * 6 + [35] + [5] * 6 + [35, 5]


def test_a_missed_day_resets_the_streak():
    award = check_in(WEEKLY, DAY - timedelta(days=2), 6, DAY)
    assert (award.points, award.streak) == (5, 1)
    assert check_in(WEEKLY, None, 0, DAY).streak == 1


def test_checking_in_twice_the_same_day_is_refused():
    with pytest.raises(AlreadyExists) as refused:
        check_in(WEEKLY, DAY, 3, DAY)
    assert refused.value.reason == "ALREADY_CHECKED_IN"
    with pytest.raises(InvalidArgument) as backwards:
        check_in(WEEKLY, DAY, 3, DAY - timedelta(days=1))
    assert backwards.value.reason == "CHECK_IN_OUT_OF_ORDER"


@pytest.mark.parametrize(
    ("kind", "rule", "allowed"),
    [
        ("review", LimitedAction(points=20, daily_limit=1), 1),
        ("share", LimitedAction(points=10, daily_limit=3), 3),
    ],
)
def test_reviews_and_shares_earn_up_to_their_daily_limit(kind, rule, allowed):
    assert [limited_award(rule, kind, count) for count in range(allowed)] == [rule.points] * allowed
    with pytest.raises(FailedPrecondition) as refused:
        limited_award(rule, kind, allowed)
    assert refused.value.reason == "DAILY_LIMIT_REACHED"


def test_an_action_the_program_does_not_reward_is_refused():
    for refuse in (lambda: limited_award(None, "share", 0), lambda: check_in(None, None, 0, DAY)):
        with pytest.raises(FailedPrecondition) as refused:
            refuse()
        assert refused.value.reason == "NOT_OFFERED"


def test_seed_referral_rewards_both_sides():
    rule = Referral(referrer_points=200, referee_points=100)
    award = referral_award(rule, "alice", "bob", referrer_chain=["carol"])
    assert (award.referrer_points, award.referee_points) == (200, 100)


def test_self_referral_is_refused():
    with pytest.raises(InvalidArgument) as refused:
        check_referral("alice", "alice", [])
    assert refused.value.reason == "SELF_REFERRAL"


@pytest.mark.parametrize(
    ("referrer", "chain"),
    [
        ("bob", ["alice"]),  # alice referred bob; bob now "refers" alice
        ("carol", ["bob", "alice"]),  # alice -> bob -> carol; carol "refers" alice
        ("dave", ["carol", "bob", "alice"]),
    ],
)
def test_a_referral_that_closes_a_ring_is_refused(referrer, chain):
    with pytest.raises(FailedPrecondition) as refused:
        referral_award(Referral(referrer_points=200), referrer, "alice", chain)
    assert refused.value.reason == "REFERRAL_RING"


def test_an_unrelated_chain_is_fine():
    check_referral("bob", "dave", ["carol", "alice"])
