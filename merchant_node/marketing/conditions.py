"""Conditions over a member's facts, as merchants write them: `recency_days >= 90`,
`avg_order_90d_fen < 0.5 * avg_order_365d_fen`, `category_shift`. Pure.

One condition is `FACT OP NUMBER`, `FACT OP FACT` or `FACT OP NUMBER * FACT`, or a yes/no fact
alone. Numbers are exact (Fraction): the same condition gives the same answer in Python (one
member) and in SQL (every member, `to_sql`), where a fraction is cleared by multiplying both
sides by its denominator. A fact with no value (NULL) makes the condition false.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

# Facts a condition may name: member_facts' numbers, the RFM scores, and the yes/no facts.
NUMBER_FACTS = [
    "recency_days",
    "tenure_days",
    "orders_30d",
    "orders_90d",
    "orders_365d",
    "orders_total",
    "spend_30d_fen",
    "spend_90d_fen",
    "spend_365d_fen",
    "spend_total_fen",
    "avg_order_90d_fen",
    "avg_order_365d_fen",
    "points_paid_orders_365d",
    "points_paid_share_bps",
    "earned_points_365d",
    "redeemed_points_365d",
    "redemption_rate_bps",
    "campaign_orders_365d",
    "campaign_share_bps",
    "evening_share_bps",
    "p_alive_bps",
    "expected_orders_90d_milli",
    "expected_order_value_fen",
    "r_score",
    "f_score",
    "m_score",
]
FLAG_FACTS = ("category_shift",)
FACTS = (*NUMBER_FACTS, *FLAG_FACTS)
OPERATORS = ("<=", ">=", "==", "!=", "<", ">")

_NUMBER = r"-?\d+(?:\.\d+)?"
_PATTERN = re.compile(
    rf"^\s*(?P<fact>[a-z_0-9]+)\s*(?:(?P<op><=|>=|==|!=|<|>)\s*"
    rf"(?:(?P<factor>{_NUMBER})\s*\*\s*(?P<scaled>[a-z_0-9]+)|(?P<number>{_NUMBER})"
    rf"|(?P<other>[a-z_][a-z_0-9]*)))?\s*$"
)


class ConditionError(ValueError):
    pass


@dataclass(frozen=True)
class Condition:
    text: str
    fact: str
    op: str = "=="
    number: Fraction | None = None  # FACT OP NUMBER
    factor: Fraction = Fraction(1)  # FACT OP factor * other
    other: str | None = None

    def holds(self, facts: Mapping[str, object]) -> bool:
        left = _value(facts, self.fact)
        right = self.number if self.other is None else _value(facts, self.other)
        if left is None or right is None:
            return False
        if self.other is not None:
            right = self.factor * right
        return _compare(Fraction(left), self.op, Fraction(right))

    def explain(self, facts: Mapping[str, object]) -> str:
        """The condition with the member's values: `recency_days >= 90 (recency_days=120)`."""
        names = [self.fact] + ([self.other] if self.other else [])
        values = ", ".join(f"{n}={_value(facts, n)}" for n in names)
        return f"{self.text} ({values})"

    def to_sql(self, column: str = "{}") -> str:
        """SQL over a row with the facts as columns; `column` formats a column name."""

        def col(name: str) -> str:
            ref = column.format(name)
            return f"(CASE WHEN {ref} THEN 1 ELSE 0 END)" if name in FLAG_FACTS else ref

        op = "=" if self.op == "==" else ("<>" if self.op == "!=" else self.op)
        if self.other is None:
            assert self.number is not None
            den = self.number.denominator
            left = col(self.fact) if den == 1 else f"{col(self.fact)} * {den}"
            return f"({left} {op} {self.number.numerator})"
        den = self.factor.denominator
        left = col(self.fact) if den == 1 else f"{col(self.fact)} * {den}"
        return f"({left} {op} {self.factor.numerator} * {col(self.other)})"


def _value(facts: Mapping[str, object], name: str) -> int | None:
    value = facts.get(name)
    if value is None:
        return None
    return int(value)  # type: ignore[call-overload]


def _compare(left: Fraction, op: str, right: Fraction) -> bool:
    return {
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
        "==": left == right,
        "!=": left != right,
    }[op]


def parse_condition(text: str) -> Condition:
    """A condition, or ConditionError saying what is wrong with it."""
    if not isinstance(text, str) or len(text) > 200:
        raise ConditionError("a condition is a text of at most 200 characters")
    match = _PATTERN.match(text)
    if match is None:
        raise ConditionError(
            f"{text!r} is not `fact op number`, `fact op fact` or `fact op number * fact`"
        )
    fact = match["fact"]
    _known(fact)
    if match["op"] is None:
        if fact not in FLAG_FACTS:
            raise ConditionError(f"{fact} is a number: compare it (e.g. `{fact} >= 1`)")
        return Condition(text.strip(), fact, "==", Fraction(1))
    if match["number"] is not None:
        return Condition(text.strip(), fact, match["op"], Fraction(match["number"]))
    other = match["scaled"] or match["other"]
    _known(other)
    factor = Fraction(match["factor"]) if match["factor"] else Fraction(1)
    if factor < 0:
        raise ConditionError(f"{text!r}: a factor must not be negative")
    return Condition(text.strip(), fact, match["op"], None, factor, other)


def _known(fact: str) -> None:
    if fact not in FACTS:
        raise ConditionError(f"unknown fact {fact!r}; facts: {', '.join(FACTS)}")
