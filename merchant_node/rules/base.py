"""The earning seam: a purchase in, points with a per-rule breakdown out. Pure, no I/O.

`BaseRateRules` is the node's configured points-per-yuan rate; the rules engine (spend brackets,
multipliers, caps...) will be another `EarningRules` and replaces it without touching the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from coalition_kernel.points import FEN_PER_YUAN, Rate, format_ratio


@dataclass(frozen=True)
class LineItem:
    sku: str
    category: str
    quantity: int
    unit_price_fen: int


@dataclass(frozen=True)
class Purchase:
    member_id: str
    order_id: str
    amount_fen: int
    channel: str
    occurred_at: datetime
    line_items: tuple[LineItem, ...] = ()
    points_paid_fen: int = 0  # the part of amount_fen paid with points


@dataclass(frozen=True)
class RuleLine:
    rule_id: str
    description: str
    points: int


@dataclass(frozen=True)
class Earning:
    points: int
    breakdown: list[RuleLine] = field(default_factory=list)


class EarningRules(Protocol):
    """What the ledger needs of a rulebook."""

    @property
    def version(self) -> str: ...

    def evaluate(self, purchase: Purchase, rate: Rate) -> Earning: ...


class BaseRateRules:
    """Points = amount in yuan × the node's points-per-yuan rate, rounded down to whole points."""

    version = "base-1"

    def evaluate(self, purchase: Purchase, rate: Rate) -> Earning:
        points = rate.points_for_spend(purchase.amount_fen)
        yuan = f"{purchase.amount_fen // FEN_PER_YUAN}.{purchase.amount_fen % FEN_PER_YUAN:02d}"
        line = RuleLine(
            "base_rate",
            f"{format_ratio(rate.points_per_yuan)} point(s) per yuan on {yuan} yuan, rounded down",
            points,
        )
        return Earning(points, [line])
