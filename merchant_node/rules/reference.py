"""The reference evaluation: the composition of docs/rules.md read literally, rule by rule.

Every rule of the program is asked, for every purchase, what it adds. The engine the ledger runs
(compiled.py) must give exactly the same answer faster; the property tests hold it to this one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from fractions import Fraction

from coalition_kernel.points import FEN_PER_YUAN, Rate
from merchant_node.rules.base import LineItem, Purchase, RuleLine
from merchant_node.rules.lines import (
    CONTROL_GROUP_LINE,
    ROUNDING,
    Evaluation,
    Line,
    MemberContext,
    capped,
    in_control_group,
    number,
    yuan,
)
from merchant_node.rules.program import (
    WEEKDAYS,
    BirthdayMultiplier,
    CategoryMultiplier,
    FirstPurchaseBonus,
    Program,
    Rule,
    SkuMultiplier,
    SpendBrackets,
    TierMultiplier,
    TimeWindow,
)


def evaluate_reference(
    program: Program, purchase: Purchase, rate: Rate, member: MemberContext | None = None
) -> Evaluation:
    member = member or MemberContext()
    local = program.local(purchase.occurred_at)
    eligible, items = eligible_fen(program, purchase)
    brackets = next((r for r in _enabled(program) if isinstance(r, SpendBrackets)), None)
    if brackets:
        base, description = bracket_points(brackets, eligible)
        base_id = brackets.id
    else:
        per_yuan = program.base.points_per_yuan or rate.points_per_yuan
        base = eligible * per_yuan / FEN_PER_YUAN
        base_id, description = "base_rate", f"{number(per_yuan)} per yuan on {yuan(eligible)}"
    rounding = ROUNDING[program.base.rounding]
    lines = [Line(base_id, description, rounding(base))]
    for rule in _enabled(program):
        extra = _extra(rule, base, items, local, member) if eligible else None
        if not extra or not rounding(extra[0]):
            continue
        if isinstance(rule, TimeWindow) and held_out(rule, purchase.member_id):
            # A 0-point line: the campaign's report counts the orders it would have credited.
            lines.append(Line(f"control_group:{rule.id}", CONTROL_GROUP_LINE, 0))
        else:
            lines.append(Line(rule.id, extra[1], rounding(extra[0]), pool_of(rule)))
    breakdown = [RuleLine(line.rule_id, line.description, line.points) for line in lines]
    return capped(program, breakdown, [line.pool for line in lines], member)


def _enabled(program: Program) -> list[Rule]:
    return [rule for rule in program.rules if rule.enabled]


def pool_of(rule: Rule) -> str | None:
    return None if isinstance(rule, SpendBrackets) else rule.budget_pool


def fen_of(item: LineItem) -> int:
    return max(0, item.quantity * item.unit_price_fen)


def eligible_fen(program: Program, purchase: Purchase) -> tuple[int, tuple[LineItem, ...]]:
    """The fen that earn, and the line items that earn (for category and SKU multipliers)."""
    excluded = program.exclusions
    earning = tuple(
        item
        for item in purchase.line_items
        if item.category not in excluded.categories and item.sku not in excluded.skus
    )
    excluded_fen = sum(fen_of(item) for item in purchase.line_items) - sum(map(fen_of, earning))
    # Proposed field on Purchase (default 0): the part of the order paid with points.
    points_paid = getattr(purchase, "points_paid_fen", 0) if excluded.exclude_points_paid else 0
    return max(0, purchase.amount_fen - excluded_fen - points_paid), earning


def bracket_points(rule: SpendBrackets, eligible: int) -> tuple[Fraction, str]:
    if rule.mode == "whole":
        bracket = next(
            b
            for b in rule.brackets
            if b.up_to_yuan is None or eligible <= b.up_to_yuan * FEN_PER_YUAN
        )
        rate = bracket.points_per_yuan
        return eligible * rate / FEN_PER_YUAN, f"{number(rate)} per yuan on {yuan(eligible)}"
    points, lower, parts = Fraction(0), 0, []
    for b in rule.brackets:
        upper = eligible if b.up_to_yuan is None else min(eligible, b.up_to_yuan * FEN_PER_YUAN)
        if upper > lower:
            points += (upper - lower) * b.points_per_yuan / FEN_PER_YUAN
            parts.append(f"{number(b.points_per_yuan)} per yuan on {yuan(upper - lower)}")
        lower = max(lower, upper)
    return points, " + ".join(parts) or f"nothing on {yuan(eligible)}"


def _share(items: tuple[LineItem, ...], covered: Callable[[LineItem], bool]) -> Fraction:
    """The part of the earning items' value a category or SKU multiplier covers."""
    matched = sum(fen_of(item) for item in items if covered(item))
    if not matched:
        return Fraction(0)
    return Fraction(matched, sum(map(fen_of, items)))


def _extra(
    rule: Rule, base: Fraction, items: tuple[LineItem, ...], local: datetime, member: MemberContext
) -> tuple[Fraction, str] | None:
    """What one rule adds to an order that earns, with its line's description; None: nothing."""
    match rule:
        case CategoryMultiplier(categories=categories, multiplier=m):
            share = _share(items, lambda item: item.category in categories)
            if not share:
                return None
            return (m - 1) * base * share, f"x{number(m)} on {', '.join(categories)}"
        case SkuMultiplier(skus=skus, multiplier=m):
            share = _share(items, lambda item: item.sku in skus)
            if not share:
                return None
            return (m - 1) * base * share, f"x{number(m)} on {', '.join(skus)}"
        case TierMultiplier(tiers=tiers) if member.tier in tiers:
            m = tiers[member.tier]
            return (m - 1) * base, f"x{number(m)} for tier {member.tier}"
        case BirthdayMultiplier(multiplier=m) if member.birth_month == local.month:
            return (m - 1) * base, f"x{number(m)} in the birthday month"
        case FirstPurchaseBonus(points=points) if member.first_purchase:
            return Fraction(points), "first purchase bonus"
        case TimeWindow() if _in_window(rule, local):
            extra = (rule.multiplier - 1) * base if rule.multiplier else Fraction(0)
            return extra + (rule.bonus_points or 0), window_description(rule)
    return None


def held_out(rule: TimeWindow, member_id: str) -> bool:
    return rule.control_group is not None and in_control_group(rule.control_group, member_id)


def _in_window(rule: TimeWindow, local: datetime) -> bool:
    """Days are the purchase's local calendar day; hours [from, to) may run past midnight."""
    bounds = [_on_clock(when, local) for when in (rule.starts_at, rule.ends_at)]
    if (bounds[0] and local < bounds[0]) or (bounds[1] and local >= bounds[1]):
        return False
    on_day = WEEKDAYS[local.weekday()] in rule.days_of_week or local.date() in rule.dates
    if (rule.days_of_week or rule.dates) and not on_day:
        return False
    if rule.hours:
        start, end, now = rule.hours.from_, rule.hours.to, local.time()
        return start <= now < end if start < end else (now >= start or now < end)
    return True


def _on_clock(when: datetime | None, local: datetime) -> datetime | None:
    if when is None:
        return None
    return when.astimezone(local.tzinfo) if when.tzinfo else when.replace(tzinfo=local.tzinfo)


def window_description(rule: TimeWindow) -> str:
    parts = [f"x{number(rule.multiplier)}"] if rule.multiplier else []
    parts += [f"+{rule.bonus_points}"] if rule.bonus_points else []
    return " ".join(parts) + " in the time window"
