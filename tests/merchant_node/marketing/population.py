"""A synthetic population for the trigger and workflow tests: members who go quiet for each of
the seeds' three causes, members who keep buying, and a promotion that runs on Saturdays (a
campaign-tagged rule, so buying only then makes a member price-sensitive)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from merchant_node.ledger.commands import Earn, Enroll
from merchant_node.rules.base import LineItem

ENROLLED = -310  # day offset of every enrolment (and of the program)


def program(evaluation_day: str) -> str:
    """Saturdays' double points, tagged as a campaign (orders it credits are responses to
    campaigns), and two tiers by 12-month spend, evaluated on `evaluation_day` (MM-DD)."""
    return f"""
timezone: Asia/Shanghai
rules:
  - {{id: promo_sat, type: time_window, campaign: promo, multiplier: "2", days_of_week: [sat]}}
tiers:
  measure: spend_12m
  levels: [{{id: member, threshold: 0}}, {{id: silver, threshold: 20000}}]
  grace_days: 30
  evaluation_day: "{evaluation_day}"
"""


TRIGGERS = """
frequency_cap: {max_actions: 1, per_days: 30}
triggers:
  - id: wake_price_sensitive
    who: {segments: [dormant], cause: price_sensitive}
    control_percent: 25
    action: {kind: coupon, value_fen: 5000, min_spend_fen: 20000, valid_days: 14,
             subject: 满200减50 限时券, text: 送您一张满200减50的限时券}
  - id: wake_category_shift
    who: {segments: [dormant], cause: category_shift}
    control_percent: 25
    action: {kind: message, subject: 新品到店, text: 您常买的品类有新品到店，附赠体验装}
  - id: wake_long_silence
    who: {segments: [dormant], cause: long_silence}
    control_percent: 25
    action: {kind: bonus, bonus_points: 100, subject: 欢迎回来礼, text: 送您100积分，下次双倍积分}
"""

CAUSES = {"price": "price_sensitive", "shift": "category_shift", "silent": "long_silence"}
OFFERS = {
    "price": "wake_price_sensitive",
    "shift": "wake_category_shift",
    "silent": "wake_long_silence",
}


@dataclass
class Population:
    """Who buys what, when: day offsets from `start` for each member's orders."""

    start: datetime
    orders: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  # day, category

    def kind(self, member_id: str) -> str:
        return member_id.split("-")[0]


def saturday_offsets(start: datetime, first: int, count: int) -> list[int]:
    """Day offsets of the first `count` Saturdays (Shanghai) on or after day `first`."""
    days: list[int] = []
    day = first
    while len(days) < count:
        if (start + timedelta(days=day, hours=8)).weekday() == 5:
            days.append(day)
        day += 1
    return days


def weekday_offsets(start: datetime, first: int, count: int, step: int = 3) -> list[int]:
    days: list[int] = []
    day = first
    while len(days) < count:
        if (start + timedelta(days=day, hours=8)).weekday() < 5:
            days.append(day)
            day += step
        else:
            day += 1
    return days


def build(start: datetime, per_kind: int = 6) -> Population:
    """Quiet members buy in the first month and stop (dormant 90 days later, within 120 days);
    steady members buy every week throughout."""
    pop = Population(start)
    for i in range(per_kind):
        pop.orders[f"price-{i}"] = [(d, "tea") for d in saturday_offsets(start, 1, 3)]
        # Tea until 11 weeks before (not yet dormant on day 1), then coffee from day 10: their
        # last 90 days moved to coffee.
        pop.orders[f"shift-{i}"] = [(d, "tea") for d in weekday_offsets(start, -80, 3)] + [
            (d, "coffee") for d in weekday_offsets(start, 10, 2)
        ]
        pop.orders[f"silent-{i}"] = [(d, "tea") for d in weekday_offsets(start, 2, 3)]
        pop.orders[f"steady-{i}"] = [(d, "tea") for d in weekday_offsets(start, 0, 34, 3)]
    # Silver from one big order ten months ago: out of the 12 months by day 65, so the
    # evaluation finds them short and, after 30 days of grace, moves them down.
    pop.orders["vip-0"] = [(-300, "gift")]
    return pop


def enroll_all(ledger, clock, pop: Population, evaluation_day: str) -> None:  # type: ignore[no-untyped-def]
    clock.now = pop.start + timedelta(days=ENROLLED)
    ledger.apply_program(program(evaluation_day), "test")
    for member in pop.orders:
        ledger.enroll(Enroll(f"enroll-{member}", member))


def earn_days(ledger, clock, pop: Population, first: int, last: int) -> int:  # type: ignore[no-untyped-def]
    return sum(earn_day(ledger, clock, pop, day) for day in range(first, last + 1))


def earn_day(ledger, clock, pop: Population, day: int) -> int:  # type: ignore[no-untyped-def]
    """Books the orders of `day` at 10:00 Shanghai (02:00 UTC); returns how many."""
    n = 0
    for member, orders in pop.orders.items():
        for index, (offset, category) in enumerate(orders):
            if offset != day:
                continue
            clock.now = pop.start + timedelta(days=day, hours=2)
            order = f"{member}-o{index}"
            fen = 30_000 if category == "gift" else 8_000
            item = (LineItem(f"{category}-1", category, 1, fen),)
            ledger.earn(Earn(f"earn-{order}", member, order, fen, "POS", None, item))
            n += 1
    return n
