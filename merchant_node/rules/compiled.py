"""A program compiled once into lookups, so an evaluation touches only the rules that can apply.

The reference evaluation (reference.py) asks every rule of the program about every purchase,
in exact fractions. Compiled, a program version becomes:
- category and SKU multipliers indexed by category and by SKU: each line item finds the rules
  that cover it, and a rule that covers no item of the order is never looked at;
- tier, birthday and first-purchase rules as small tables read with the member's context;
- time windows with their zone, bounds, weekdays and dates resolved ahead of time;
- every multiplier's (m - 1) as a numerator and denominator, descriptions written once: a line's
  points are one integer division of exact integers (no Fraction per rule).
The answer is the reference's, line for line (tests/merchant_node/rules/test_compiled.py).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from fractions import Fraction

from coalition_kernel.points import FEN_PER_YUAN, Rate
from merchant_node.rules.base import LineItem, Purchase, RuleLine
from merchant_node.rules.lines import (
    CONTROL_GROUP_LINE,
    Evaluation,
    MemberContext,
    capped,
    in_control_group,
    number,
    rule_line,
    yuan,
)
from merchant_node.rules.program import (
    WEEKDAYS,
    BirthdayMultiplier,
    CategoryMultiplier,
    FirstPurchaseBonus,
    Program,
    SkuMultiplier,
    SpendBrackets,
    TierMultiplier,
    TimeWindow,
)
from merchant_node.rules.reference import bracket_points, window_description

# floor, ceil and half-up of num / den (den > 0), exactly as of the Fraction num / den.
_ROUND_RATIO: dict[str, Callable[[int, int], int]] = {
    "floor": lambda n, d: n // d,
    "ceil": lambda n, d: -(-n // d),
    "half_up": lambda n, d: (2 * n + d) // (2 * d),
}


@dataclass(frozen=True)
class _Extra:
    """A rule that adds (m - 1) x base points (or fixed points), and its line's wording."""

    position: int  # in the program's order of rules: lines keep that order
    rule_id: str
    pool: str | None
    num: int  # m - 1 = num / den
    den: int
    description: str


@dataclass(frozen=True)
class _Window:
    extra: _Extra  # (multiplier - 1), or 0 when the window only gives bonus points
    bonus: int
    starts: datetime | None  # aware: comparisons are between instants
    ends: datetime | None
    weekdays: frozenset[int]
    dates: frozenset[date]
    hours: tuple[time, time] | None
    rule: TimeWindow

    def open_at(self, local: datetime, day: date, weekday: int, now: time) -> bool:
        """Days are the purchase's local calendar day; hours [from, to) may run past midnight."""
        if (self.starts and local < self.starts) or (self.ends and local >= self.ends):
            return False
        if (self.weekdays or self.dates) and weekday not in self.weekdays and day not in self.dates:
            return False
        if self.hours:
            start, end = self.hours
            return start <= now < end if start < end else (now >= start or now < end)
        return True

    def held_out(self, member_id: str) -> bool:
        group = self.rule.control_group
        return group is not None and in_control_group(group, member_id)


def _ratio(value: Fraction) -> tuple[int, int]:
    return value.numerator, value.denominator


class CompiledProgram:
    """One program version, ready to evaluate purchases (immutable: safe across threads)."""

    def __init__(self, program: Program) -> None:
        self.program = program
        self.zone = program.zone
        excluded = program.exclusions
        self.excluded_categories = frozenset(excluded.categories)
        self.excluded_skus = frozenset(excluded.skus)
        self.exclude_points_paid = excluded.exclude_points_paid
        self.round_ratio = _ROUND_RATIO[program.base.rounding]
        enabled = [rule for rule in program.rules if rule.enabled]
        self.brackets = next((r for r in enabled if isinstance(r, SpendBrackets)), None)
        rates = [b.points_per_yuan for b in self.brackets.brackets] if self.brackets else []
        self.bracket_den = math.lcm(*(r.denominator for r in rates)) if rates else 1
        self.bracket_table = [  # (upper bound in fen, rate numerator, its scale, rate text)
            (
                None if b.up_to_yuan is None else b.up_to_yuan * FEN_PER_YUAN,
                b.points_per_yuan.numerator,
                self.bracket_den // b.points_per_yuan.denominator,
                number(b.points_per_yuan),
            )
            for b in (self.brackets.brackets if self.brackets else ())
        ]
        self.item_rules: dict[int, _Extra] = {}
        self.by_category: dict[str, list[int]] = {}
        self.by_sku: dict[str, list[int]] = {}
        self.tiers: list[dict[str, _Extra]] = []
        self.birthdays: list[_Extra] = []
        self.first_purchase: list[tuple[_Extra, int]] = []
        self.windows: list[_Window] = []
        for pos, rule in enumerate(enabled):
            self._add(pos, rule)

    def _add(self, pos: int, rule: object) -> None:
        match rule:
            case (
                CategoryMultiplier(categories=keys, multiplier=m)
                | SkuMultiplier(skus=keys, multiplier=m)
            ):
                self.item_rules[pos] = _Extra(
                    pos,
                    rule.id,
                    rule.budget_pool,
                    *_ratio(m - 1),
                    f"x{number(m)} on {', '.join(keys)}",
                )
                index = self.by_category if isinstance(rule, CategoryMultiplier) else self.by_sku
                for key in dict.fromkeys(keys):  # a key named twice still covers an item once
                    index.setdefault(key, []).append(pos)
            case TierMultiplier(tiers=tiers):
                by_tier = {
                    tier: _Extra(
                        pos,
                        rule.id,
                        rule.budget_pool,
                        *_ratio(m - 1),
                        f"x{number(m)} for tier {tier}",
                    )
                    for tier, m in tiers.items()
                }
                self.tiers.append(by_tier)
            case BirthdayMultiplier(multiplier=m):
                self.birthdays.append(
                    _Extra(
                        pos,
                        rule.id,
                        rule.budget_pool,
                        *_ratio(m - 1),
                        f"x{number(m)} in the birthday month",
                    )
                )
            case FirstPurchaseBonus(points=points):
                extra = _Extra(pos, rule.id, rule.budget_pool, 0, 1, "first purchase bonus")
                self.first_purchase.append((extra, points))
            case TimeWindow():
                m = rule.multiplier - 1 if rule.multiplier else Fraction(0)
                extra = _Extra(pos, rule.id, rule.budget_pool, *_ratio(m), window_description(rule))
                self.windows.append(
                    _Window(
                        extra,
                        rule.bonus_points or 0,
                        self._instant(rule.starts_at),
                        self._instant(rule.ends_at),
                        frozenset(i for i, day in enumerate(WEEKDAYS) if day in rule.days_of_week),
                        frozenset(rule.dates),
                        (rule.hours.from_, rule.hours.to) if rule.hours else None,
                        rule,
                    )
                )

    def _bracket_points(self, eligible: int) -> tuple[Fraction, str]:
        """The reference's bracket_points over one common denominator: one Fraction, not one
        per bracket."""
        rule = self.brackets
        assert rule is not None
        if rule.mode == "whole":
            return bracket_points(rule, eligible)
        num, lower, parts = 0, 0, []
        for up_to, rate_num, scale, rate_text in self.bracket_table:
            upper = eligible if up_to is None else min(eligible, up_to)
            if upper > lower:
                num += (upper - lower) * rate_num * scale
                parts.append(f"{rate_text} per yuan on {yuan(upper - lower)}")
            lower = max(lower, upper)
        text = " + ".join(parts) or f"nothing on {yuan(eligible)}"
        return Fraction(num, self.bracket_den * FEN_PER_YUAN), text

    def _instant(self, when: datetime | None) -> datetime | None:
        """A window's bound: with an offset as written, without one on the program's clock."""
        if when is None:
            return None
        return when if when.tzinfo else when.replace(tzinfo=self.zone)

    def evaluate(
        self, purchase: Purchase, rate: Rate, member: MemberContext | None = None
    ) -> Evaluation:
        member = member or MemberContext()
        when = purchase.occurred_at
        local = (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(self.zone)
        listed = earning = 0
        items = []
        for item in purchase.line_items:
            fen = item.quantity * item.unit_price_fen
            fen = fen if fen > 0 else 0
            listed += fen
            if item.category in self.excluded_categories or item.sku in self.excluded_skus:
                continue
            earning += fen
            if fen:  # an item worth nothing never changes a rule's share
                items.append((item, fen))
        paid = getattr(purchase, "points_paid_fen", 0) if self.exclude_points_paid else 0
        eligible = max(0, purchase.amount_fen - (listed - earning) - paid)
        if self.brackets:
            base, description = self._bracket_points(eligible)
            base_id = self.brackets.id
        else:
            per_yuan = self.program.base.points_per_yuan or rate.points_per_yuan
            base = eligible * per_yuan / FEN_PER_YUAN
            base_id, description = "base_rate", f"{number(per_yuan)} per yuan on {yuan(eligible)}"
        lines = [
            rule_line(base_id, description, self.round_ratio(base.numerator, base.denominator))
        ]
        pools: list[str | None] = [None]
        if eligible:
            for _pos, line, pool in self._extras(
                base, items, earning, local, member, purchase.member_id
            ):
                lines.append(line)
                pools.append(pool)
        return capped(self.program, lines, pools, member)

    def _extras(
        self,
        base: Fraction,
        items: list[tuple[LineItem, int]],
        earning: int,
        local: datetime,
        member: MemberContext,
        member_id: str,
    ) -> list[tuple[int, RuleLine, str | None]]:
        """The lines the rules add, in the program's order: (position, line, pool)."""
        bn, bd = base.numerator, base.denominator
        round_ratio = self.round_ratio
        # (extra, numerator, denominator) of what each rule that applies adds
        adds: list[tuple[_Extra, int, int]] = []
        if items:
            matched: dict[int, int] = {}
            by_category, by_sku = self.by_category, self.by_sku
            for item, fen in items:
                for pos in by_category.get(item.category, ()):
                    matched[pos] = matched.get(pos, 0) + fen
                for pos in by_sku.get(item.sku, ()):
                    matched[pos] = matched.get(pos, 0) + fen
            den = bd * earning
            item_rules = self.item_rules
            for pos, fen in matched.items():
                extra = item_rules[pos]
                adds.append((extra, extra.num * bn * fen, extra.den * den))
        if member.tier is not None:
            for by_tier in self.tiers:
                tiered = by_tier.get(member.tier)
                if tiered:
                    adds.append((tiered, tiered.num * bn, tiered.den * bd))
        if member.birth_month == local.month:
            adds += [(extra, extra.num * bn, extra.den * bd) for extra in self.birthdays]
        if member.first_purchase:
            adds += [(extra, points, 1) for extra, points in self.first_purchase]
        found: list[tuple[int, RuleLine, str | None]] = []
        if self.windows:
            day, weekday, now = local.date(), local.weekday(), local.time()
            for window in self.windows:
                if window.open_at(local, day, weekday, now):
                    extra = window.extra
                    num = extra.num * bn + window.bonus * extra.den * bd
                    if round_ratio(num, extra.den * bd) and window.held_out(member_id):
                        # A 0-point line: the campaign's report counts the orders it would
                        # have credited.
                        line = rule_line(f"control_group:{extra.rule_id}", CONTROL_GROUP_LINE, 0)
                        found.append((extra.position, line, None))
                    else:
                        adds.append((extra, num, extra.den * bd))
        for extra, num, den in adds:
            points = round_ratio(num, den)
            if points:
                line = rule_line(extra.rule_id, extra.description, points)
                found.append((extra.position, line, extra.pool))
        found.sort()  # positions are unique: tuples compare by position alone
        return found


_compiled: dict[int, tuple[Program, CompiledProgram]] = {}
_lock = threading.Lock()
_KEEP = 64  # program versions kept compiled (a node uses one or two at a time)


def compiled(program: Program) -> CompiledProgram:
    """The program compiled, once per program object (the ledger keeps one per version)."""
    hit = _compiled.get(id(program))
    if hit is not None and hit[0] is program:
        return hit[1]
    made = CompiledProgram(program)
    with _lock:
        if len(_compiled) >= _KEEP:
            _compiled.pop(next(iter(_compiled)))
        _compiled[id(program)] = (program, made)  # the program is kept: its id stays its own
    return made
