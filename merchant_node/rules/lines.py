"""What every evaluation of a program shares: the member's context, its result, and the caps.

The compiled engine (compiled.py) and the reference evaluation (reference.py) both end here, so
the caps, the pool draws and every line's wording are decided in one place.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import NamedTuple

from coalition_kernel.points import FEN_PER_YUAN, format_ratio
from merchant_node.rules.base import Earning, RuleLine
from merchant_node.rules.program import ControlGroup, Program

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


class Line(NamedTuple):
    """One line before the caps (a tuple: an evaluation makes a dozen of them)."""

    rule_id: str
    description: str
    points: int
    pool: str | None = None


CONTROL_GROUP_LINE = "no campaign points: in the campaign's control group"


def in_control_group(group: ControlGroup, member_id: str) -> bool:
    """Whether a member is held out: SHA-256 of "<salt>:<member id>", its first 8 bytes as a
    number, modulo 100, is below `percent`. Deterministic, and independent between campaigns
    (each salts with its own id)."""
    digest = hashlib.sha256(f"{group.salt}:{member_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100 < group.percent


def rule_line(rule_id: str, description: str, points: int) -> RuleLine:
    """RuleLine(rule_id, description, points), made 4x faster: a frozen dataclass's __init__
    pays object.__setattr__ per field, and an evaluation makes a dozen lines. The object is the
    same (RuleLine has no slots and no __post_init__: checked below)."""
    line = _new(RuleLine)
    fields = line.__dict__
    fields["rule_id"], fields["description"], fields["points"] = rule_id, description, points
    return line


_new = object.__new__
assert not hasattr(RuleLine, "__slots__") and not hasattr(RuleLine, "__post_init__")


def capped(
    program: Program, lines: list[RuleLine], pools: list[str | None], member: MemberContext
) -> Evaluation:
    """The caps cut the lines' total (shown as negative lines); pooled lines give way first.
    `pools[i]` is the budget pool line i draws on, if any."""
    caps = program.caps
    total, cuts = sum(line.points for line in lines), []
    if caps.per_order is not None and total > caps.per_order:
        cuts.append(
            RuleLine("cap_per_order", f"at most {caps.per_order} per order", caps.per_order - total)
        )
        total = caps.per_order
    if caps.per_member_per_day is not None:
        left = max(0, caps.per_member_per_day - member.earned_today)
        if total > left:
            text = f"at most {caps.per_member_per_day} a day, {left} left today"
            cuts.append(RuleLine("cap_per_member_per_day", text, left - total))
            total = left
    draws = []
    if any(pools):
        cut = -sum(c.points for c in cuts)
        # Uncut, and no line below zero (none is: multipliers are at least 1), all survive.
        uncut = not cut and all(line.points >= 0 for line in lines)
        kept = [line.points for line in lines] if uncut else _survivors(lines, pools, cut)
        draws = [
            PoolDraw(line.rule_id, pool, points)
            for line, pool, points in zip(lines, pools, kept, strict=True)
            if pool and points
        ]
    return Evaluation(total, lines + cuts, draws, program.pending_days)


def _survivors(lines: list[RuleLine], pools: list[str | None], cut: int) -> list[int]:
    """Each line's points after a cap: pooled lines go first, so pool budget is spent only on
    points the member really gets; then the others from the last, so the base goes last."""
    kept = [line.points for line in lines]
    for i in sorted(range(len(lines)), key=lambda i: (pools[i] is None, -i)):
        taken = min(kept[i], cut)
        kept[i], cut = kept[i] - taken, cut - taken
    return kept


@functools.lru_cache(maxsize=1024)
def number(value: Fraction) -> str:
    """1.5 rather than 3/2 when the rate has a short decimal form: it is how merchants write it."""
    for digits in range(5):
        if (value * 10**digits).denominator == 1:
            return str(Decimal(int(value * 10**digits)).scaleb(-digits))
    return format_ratio(value)


def yuan(fen: int) -> str:
    return f"{fen // FEN_PER_YUAN}.{fen % FEN_PER_YUAN:02d} yuan"
