"""Exact points and money arithmetic.

Points are whole integers and money is integer fen. Rates are exact rationals (fractions), and
every conversion names its rounding: the helpers below are the only places that round.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

FEN_PER_YUAN = 100
MAX_AMOUNT = 10**15  # fen or points: far above any real order, far below int64 overflow


def parse_ratio(text: str | int | Fraction) -> Fraction:
    """Parses "3/2", "1.5" or "2" exactly; refuses floats, zero and negatives."""
    if isinstance(text, float):
        raise TypeError("rates are exact: give a string such as '1.5' or '3/2', not a float")
    value = Fraction(text)
    if value <= 0:
        raise ValueError(f"a rate must be positive, got {text!r}")
    return value


def format_ratio(value: Fraction) -> str:
    return (
        str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
    )


def floor_mul(amount: int, ratio: Fraction) -> int:
    """amount × ratio, rounded down (toward zero for the non-negative amounts used here)."""
    return amount * ratio.numerator // ratio.denominator


def ceil_div(amount: int, ratio: Fraction) -> int:
    """amount ÷ ratio, rounded up."""
    return -(-amount * ratio.denominator // ratio.numerator)


@dataclass(frozen=True)
class Rate:
    """A node's rates at one version.

    points_per_yuan: base earning rate. fen_per_point: what one point is worth (e.g. 1 means
    100 points = ¥1). Rounding: earning rounds points down; a money amount to redeem rounds the
    points needed up; the value of points rounds fen down. Each rounding favours the issuer by
    less than one unit, so the ledger never hands out value it did not account for.
    """

    version: int
    points_per_yuan: Fraction
    fen_per_point: Fraction

    def points_for_spend(self, amount_fen: int) -> int:
        return floor_mul(amount_fen, self.points_per_yuan / FEN_PER_YUAN)

    def points_for_value(self, amount_fen: int) -> int:
        return ceil_div(amount_fen, self.fen_per_point)

    def value_of_points(self, points: int) -> int:
        return floor_mul(points, self.fen_per_point)
