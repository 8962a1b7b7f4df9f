"""What a purchase earns under a merchant's program, line by line. Pure: no I/O, no clock.

The composition (docs/rules.md works an example through it):
1. eligible fen = amount - excluded line items - the part paid with points (if excluded);
2. base points = eligible fen x the base rate, or x the spend brackets when the program has them;
3. each multiplier m adds (m - 1) x the base points of what it covers: multipliers add, they
   never compound, so a merchant can price each campaign on its own;
4. bonuses add points, but only to an order that earns at all (eligible fen > 0);
5. every line is rounded on its own, then the per-order and per-member-per-day caps cut, shown
   as negative lines. Lines always sum to the total and the total is never negative.
Budget pools are the ledger's to reserve: `pool_draws` says what to ask for, and
`apply_pool_grants` cuts the award to what the pools granted. A member in a campaign's control
group gets a 0-point `control_group:<rule id>` line instead of the campaign's points.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from fractions import Fraction

from coalition_kernel.points import FEN_PER_YUAN, Rate, format_ratio
from merchant_node.rules.base import Earning, LineItem, Purchase, RuleLine
from merchant_node.rules.program import (
    WEEKDAYS,
    BirthdayMultiplier,
    CategoryMultiplier,
    ControlGroup,
    FirstPurchaseBonus,
    Program,
    Rule,
    SkuMultiplier,
    SpendBrackets,
    TierMultiplier,
    TimeWindow,
)

ROUNDING: dict[str, Callable[[Fraction], int]] = {
    "floor": math.floor,
    "ceil": math.ceil,
    "half_up": lambda exact: math.floor(exact + Fraction(1, 2)),
}


@dataclass(frozen=True)
class MemberContext:
    """What the ledger knows of the member at the time of the purchase."""

    tier: str | None = None
    first_purchase: bool = False
    birth_month: int | None = None
    earned_today: int = 0  # points already earned in the program's local day of the purchase


@dataclass(frozen=True)
class PoolDraw:
    rule_id: str
    pool_id: str
    points: int


@dataclass(frozen=True)
class Evaluation(Earning):
    """An Earning plus what the ledger must do with it: reserve pool budget, hold it pending."""

    pool_draws: list[PoolDraw] = field(default_factory=list)
    pending_days: int = 0

    @property
    def lines(self) -> list[RuleLine]:
        return self.breakdown


@dataclass(frozen=True)
class _Line:
    rule_id: str
    description: str
    points: int
    pool: str | None = None


class ProgramRules:
    """A merchant's program behind the ledger's `EarningRules` seam."""

    def __init__(self, program: Program, version: str | None = None) -> None:
        self.program = program
        self.version = version or f"program-{program.digest()[:16]}"

    def evaluate(
        self, purchase: Purchase, rate: Rate, member: MemberContext | None = None
    ) -> Evaluation:
        program, member = self.program, member or MemberContext()
        local = program.local(purchase.occurred_at)
        eligible, items = _eligible(program, purchase)
        brackets = next((r for r in _enabled(program) if isinstance(r, SpendBrackets)), None)
        if brackets:
            base, description = _bracket_points(brackets, eligible)
            base_id = brackets.id
        else:
            per_yuan = program.base.points_per_yuan or rate.points_per_yuan
            base = eligible * per_yuan / FEN_PER_YUAN
            base_id, description = (
                "base_rate",
                f"{_number(per_yuan)} per yuan on {_yuan(eligible)}",
            )
        rounding = ROUNDING[program.base.rounding]
        lines = [_Line(base_id, description, rounding(base))]
        for rule in _enabled(program):
            extra = _extra(rule, base, items, local, member) if eligible else None
            if not extra or not rounding(extra[0]):
                continue
            if isinstance(rule, TimeWindow) and _held_out(rule, purchase.member_id):
                # A 0-point line: the campaign's report counts the orders it would have credited.
                lines.append(_Line(f"control_group:{rule.id}", CONTROL_GROUP_LINE, 0))
            else:
                lines.append(_Line(rule.id, extra[1], rounding(extra[0]), _pool_of(rule)))
        return self._capped(lines, member)

    def _capped(self, lines: list[_Line], member: MemberContext) -> Evaluation:
        caps = self.program.caps
        limits = [("cap_per_order", caps.per_order, f"at most {caps.per_order} per order")]
        if caps.per_member_per_day is not None:
            left = max(0, caps.per_member_per_day - member.earned_today)
            text = f"at most {caps.per_member_per_day} a day, {left} left today"
            limits.append(("cap_per_member_per_day", left, text))
        total, cuts = sum(line.points for line in lines), []
        for rule_id, limit, text in limits:
            if limit is not None and total > limit:
                cuts.append(RuleLine(rule_id, text, limit - total))
                total = limit
        kept = _survivors(lines, -sum(cut.points for cut in cuts))
        draws = [
            PoolDraw(line.rule_id, line.pool, points)
            for line, points in zip(lines, kept, strict=True)
            if line.pool and points
        ]
        breakdown = [RuleLine(line.rule_id, line.description, line.points) for line in lines]
        return Evaluation(total, breakdown + cuts, draws, self.program.pending_days)


def apply_pool_grants(evaluation: Evaluation, granted: dict[str, int]) -> Evaluation:
    """Cuts the award to what each pool granted (a pool missing from `granted` granted nothing)."""
    requested: dict[str, int] = {}
    for draw in evaluation.pool_draws:
        requested[draw.pool_id] = requested.get(draw.pool_id, 0) + draw.points
    cuts, draws = [], []
    for pool, wanted in requested.items():
        left = grant = max(0, min(granted.get(pool, 0), wanted))
        if grant < wanted:
            cuts.append(
                RuleLine(
                    f"budget_pool:{pool}",
                    f"pool {pool} granted {grant} of {wanted}",
                    grant - wanted,
                )
            )
        for draw in evaluation.pool_draws:
            if draw.pool_id == pool and left:
                draws.append(replace(draw, points=min(draw.points, left)))
                left -= draws[-1].points
    points = evaluation.points + sum(cut.points for cut in cuts)
    return replace(
        evaluation, points=points, breakdown=evaluation.breakdown + cuts, pool_draws=draws
    )


def _enabled(program: Program) -> list[Rule]:
    return [rule for rule in program.rules if rule.enabled]


def _pool_of(rule: Rule) -> str | None:
    return None if isinstance(rule, SpendBrackets) else rule.budget_pool


def _fen(item: LineItem) -> int:
    return max(0, item.quantity * item.unit_price_fen)


def _eligible(program: Program, purchase: Purchase) -> tuple[int, tuple[LineItem, ...]]:
    """The fen that earn, and the line items that earn (for category and SKU multipliers)."""
    excluded = program.exclusions
    earning = tuple(
        item
        for item in purchase.line_items
        if item.category not in excluded.categories and item.sku not in excluded.skus
    )
    excluded_fen = sum(_fen(item) for item in purchase.line_items) - sum(map(_fen, earning))
    # Proposed field on Purchase (default 0): the part of the order paid with points.
    points_paid = getattr(purchase, "points_paid_fen", 0) if excluded.exclude_points_paid else 0
    return max(0, purchase.amount_fen - excluded_fen - points_paid), earning


def _bracket_points(rule: SpendBrackets, eligible: int) -> tuple[Fraction, str]:
    if rule.mode == "whole":
        bracket = next(
            b
            for b in rule.brackets
            if b.up_to_yuan is None or eligible <= b.up_to_yuan * FEN_PER_YUAN
        )
        rate = bracket.points_per_yuan
        return eligible * rate / FEN_PER_YUAN, f"{_number(rate)} per yuan on {_yuan(eligible)}"
    points, lower, parts = Fraction(0), 0, []
    for b in rule.brackets:
        upper = eligible if b.up_to_yuan is None else min(eligible, b.up_to_yuan * FEN_PER_YUAN)
        if upper > lower:
            points += (upper - lower) * b.points_per_yuan / FEN_PER_YUAN
            parts.append(f"{_number(b.points_per_yuan)} per yuan on {_yuan(upper - lower)}")
        lower = max(lower, upper)
    return points, " + ".join(parts) or f"nothing on {_yuan(eligible)}"


def _share(items: tuple[LineItem, ...], covered: Callable[[LineItem], bool]) -> Fraction:
    """The part of the earning items' value a category or SKU multiplier covers."""
    matched = sum(_fen(item) for item in items if covered(item))
    if not matched:  # most rules match no item of an order: skip the arithmetic
        return Fraction(0)
    return Fraction(matched, sum(map(_fen, items)))


def _extra(
    rule: Rule, base: Fraction, items: tuple[LineItem, ...], local: datetime, member: MemberContext
) -> tuple[Fraction, str] | None:
    """What one rule adds to an order that earns, with its line's description; None: nothing."""
    match rule:
        case CategoryMultiplier(categories=categories, multiplier=m):
            share = _share(items, lambda item: item.category in categories)
            if not share:
                return None
            return (m - 1) * base * share, f"x{_number(m)} on {', '.join(categories)}"
        case SkuMultiplier(skus=skus, multiplier=m):
            share = _share(items, lambda item: item.sku in skus)
            if not share:
                return None
            return (m - 1) * base * share, f"x{_number(m)} on {', '.join(skus)}"
        case TierMultiplier(tiers=tiers) if member.tier in tiers:
            m = tiers[member.tier]
            return (m - 1) * base, f"x{_number(m)} for tier {member.tier}"
        case BirthdayMultiplier(multiplier=m) if member.birth_month == local.month:
            return (m - 1) * base, f"x{_number(m)} in the birthday month"
        case FirstPurchaseBonus(points=points) if member.first_purchase:
            return Fraction(points), "first purchase bonus"
        case TimeWindow() if _in_window(rule, local):
            extra = (rule.multiplier - 1) * base if rule.multiplier else Fraction(0)
            return extra + (rule.bonus_points or 0), _window_description(rule)
    return None


CONTROL_GROUP_LINE = "no campaign points: in the campaign's control group"


def in_control_group(group: ControlGroup, member_id: str) -> bool:
    """Whether a member is held out: SHA-256 of "<salt>:<member id>", its first 8 bytes as a
    number, modulo 100, is below `percent`. Deterministic, and independent between campaigns
    (each salts with its own id)."""
    digest = hashlib.sha256(f"{group.salt}:{member_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100 < group.percent


def _held_out(rule: TimeWindow, member_id: str) -> bool:
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


def _window_description(rule: TimeWindow) -> str:
    parts = [f"x{_number(rule.multiplier)}"] if rule.multiplier else []
    parts += [f"+{rule.bonus_points}"] if rule.bonus_points else []
    return " ".join(parts) + " in the time window"


def _survivors(lines: list[_Line], cut: int) -> list[int]:
    """Each line's points after a cap: pooled lines go first, so pool budget is spent only on
    points the member really gets; then the others from the last, so the base goes last."""
    kept = [line.points for line in lines]
    for i in sorted(range(len(lines)), key=lambda i: (lines[i].pool is None, -i)):
        taken = min(kept[i], cut)
        kept[i], cut = kept[i] - taken, cut - taken
    return kept


@functools.lru_cache(maxsize=1024)
def _number(value: Fraction) -> str:
    """1.5 rather than 3/2 when the rate has a short decimal form: it is how merchants write it."""
    for digits in range(5):
        if (value * 10**digits).denominator == 1:
            return str(Decimal(int(value * 10**digits)).scaleb(-digits))
    return format_ratio(value)


def _yuan(fen: int) -> str:
    return f"{fen // FEN_PER_YUAN}.{fen % FEN_PER_YUAN:02d} yuan"
