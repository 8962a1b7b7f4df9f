"""What a cross redemption is worth. Pure: exact rationals in, integers out, rounding named.

Points → value: value = ⌊points × fen_per_point⌋ (the issuer never pays for a fraction of a fen
it did not owe). Money → points: points = ⌈amount ÷ fen_per_point⌉ and value = amount (the member
spends whole points covering the amount). Fee: ⌊value × fee_bps ÷ 10 000⌋, the acquirer's rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from coalition_kernel.errors import InvalidArgument
from coalition_kernel.points import MAX_AMOUNT, ceil_div, floor_mul


@dataclass(frozen=True)
class Price:
    points: int
    value_fen: int
    fee_fen: int
    rate_version: int


def price(
    *, points: int, amount_fen: int, fen_per_point: Fraction, rate_version: int, fee_bps: int
) -> Price:
    if bool(points) == bool(amount_fen):
        raise InvalidArgument("MISSING_FIELD", "give exactly one of points or amount_fen")
    for name, value in (("points", points), ("amount_fen", amount_fen)):
        if value and not 1 <= value <= MAX_AMOUNT:
            raise InvalidArgument("AMOUNT_OUT_OF_RANGE", f"{name} must be 1-{MAX_AMOUNT}")
    if points:
        value = floor_mul(points, fen_per_point)
    else:
        points, value = ceil_div(amount_fen, fen_per_point), amount_fen
    return Price(points, value, value * fee_bps // 10_000, rate_version)
