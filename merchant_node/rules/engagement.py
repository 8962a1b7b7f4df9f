"""Points for what members do besides buying: check-ins, reviews, shares and referrals. Pure.

These awards bring no revenue of their own, which is why each has a limit (a daily limit, a
streak that a missed day resets) and may draw on a budget pool like a campaign does. Referrals
are checked for the two cheap frauds: referring oneself, and two accounts referring each other
round a ring. The ledger keeps the counts, streaks and referral links; dates are local dates in
the program's time zone (`Program.local(when).date()`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import NamedTuple, TypeVar

from coalition_kernel.errors import AlreadyExists, FailedPrecondition, InvalidArgument
from merchant_node.rules.base import RuleLine
from merchant_node.rules.program import CheckIn, LimitedAction, Referral

R = TypeVar("R")


class CheckInAward(NamedTuple):
    points: int
    streak: int  # the member's streak including today; the ledger stores it with today's date
    lines: list[RuleLine]


class ReferralAward(NamedTuple):
    referrer_points: int
    referee_points: int


def _offered(rule: R | None, kind: str) -> R:
    if rule is None:
        raise FailedPrecondition("NOT_OFFERED", f"this program awards no points for {kind}")
    return rule


def check_in(
    rule: CheckIn | None, last_date: date | None, streak: int, today: date
) -> CheckInAward:
    """Today's check-in: the daily points, plus a bonus on the streak days the program names.

    Checking in on consecutive days grows the streak; a missed day starts it again at 1. With
    `cycle_days` the streak restarts after a full cycle, so weekly bonuses recur.
    """
    rule = _offered(rule, "check-ins")
    if last_date == today:
        raise AlreadyExists("ALREADY_CHECKED_IN", f"already checked in on {today.isoformat()}")
    if last_date is not None and last_date > today:
        raise InvalidArgument(
            "CHECK_IN_OUT_OF_ORDER", f"last check-in {last_date} is after {today}"
        )
    consecutive = last_date is not None and last_date == today - timedelta(days=1)
    streak = streak + 1 if consecutive and streak > 0 else 1
    if rule.cycle_days and streak > rule.cycle_days:
        streak = 1
    lines = [RuleLine("check_in", "daily check-in", rule.points)]
    bonus = rule.streak_bonuses.get(streak, 0)
    if bonus:
        lines.append(RuleLine("check_in_streak", f"day {streak} of a check-in streak", bonus))
    return CheckInAward(rule.points + bonus, streak, lines)


def limited_award(rule: LimitedAction | None, kind: str, count_today: int) -> int:
    """The points for one more review or share today, refused once the daily limit is reached."""
    rule = _offered(rule, kind)
    if count_today >= rule.daily_limit:
        raise FailedPrecondition(
            "DAILY_LIMIT_REACHED",
            f"{kind}: at most {rule.daily_limit} a day earn points",
            limit=str(rule.daily_limit),
        )
    return rule.points


def check_referral(referrer_id: str, referee_id: str, referrer_chain: Sequence[str]) -> None:
    """Refuses a referral that would pay a member for themself.

    `referrer_chain` is who referred the referrer, who referred them, and so on up the chain.
    If the referee is in it, the new link closes a ring (A refers B, B "refers" A back).
    """
    if referrer_id == referee_id:
        raise InvalidArgument("SELF_REFERRAL", "a member cannot refer themself")
    if referee_id in referrer_chain:
        raise FailedPrecondition(
            "REFERRAL_RING", f"{referee_id} is already up {referrer_id}'s referral chain"
        )


def referral_award(
    rule: Referral | None, referrer_id: str, referee_id: str, referrer_chain: Sequence[str]
) -> ReferralAward:
    """Both sides' points for a referral that passes `check_referral`."""
    rule = _offered(rule, "referrals")
    check_referral(referrer_id, referee_id, referrer_chain)
    return ReferralAward(rule.referrer_points, rule.referee_points)
