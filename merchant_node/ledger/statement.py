"""The node's statement of a settlement period: what it booked, as issuer and as acquirer.

As issuer, the holds it posted with the period the exchange stamped on them (hold_ref is the
authorization id); as acquirer, its captured cross redemptions of the period. Settlement
reconciles both against the exchange's clearing records (DESIGN.md law 5). Read-only: one
indexed query per page, keyset-paged by authorization id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import Column, ColumnElement, Connection, Select, collate, select

from coalition_kernel.errors import InvalidArgument
from merchant_node.ledger.commands import check_id, check_period
from merchant_node.ledger.schema import cross_redemptions, holds

Side = Literal["issuer", "acquirer"]
SIDES: tuple[Side, ...] = ("issuer", "acquirer")
DEFAULT_LIMIT = 5000
MAX_LIMIT = 10_000


@dataclass(frozen=True)
class StatementQuery:
    """One page of one side of a period: entries after `after_id`, at most `limit` (0: 5000)."""

    settlement_period: str
    side: str
    after_id: str = ""
    limit: int = 0

    def __post_init__(self) -> None:
        check_period("settlement_period", self.settlement_period)
        if self.side not in SIDES:
            raise InvalidArgument("UNKNOWN_SIDE", "side must be ISSUER or ACQUIRER")
        if self.after_id:
            check_id("after_id", self.after_id)
        if not 0 <= self.limit <= MAX_LIMIT:
            raise InvalidArgument(
                "LIMIT_OUT_OF_RANGE", f"limit must be 1-{MAX_LIMIT} (0 means {DEFAULT_LIMIT})"
            )


@dataclass(frozen=True)
class StatementEntry:
    authorization_id: str
    points: int
    issuer_id: str = ""  # acquirer side only, as are the amounts
    value_fen: int = 0
    fee_fen: int = 0


@dataclass(frozen=True)
class StatementPage:
    entries: list[StatementEntry]
    next_after_id: str  # empty: this was the last page


def statement_page(conn: Connection, query: StatementQuery) -> StatementPage:
    """One page of the statement, sorted by authorization id as code points."""
    limit = query.limit or DEFAULT_LIMIT
    if query.side == "issuer":
        key = holds.c.hold_ref
        stmt = select(key, holds.c.points).where(
            holds.c.settlement_period == query.settlement_period, holds.c.status == "posted"
        )
    else:
        c = cross_redemptions.c
        key = c.authorization_id
        stmt = select(key, c.points, c.issuer_id, c.value_fen, c.fee_fen).where(
            c.settlement_period == query.settlement_period, c.status == "captured"
        )
    # One row more than the page tells whether another page follows, without asking again.
    rows = conn.execute(_page(stmt, key, conn.dialect.name, query.after_id, limit + 1)).all()
    entries = [StatementEntry(*row) for row in rows[:limit]]
    more = len(rows) > limit
    return StatementPage(entries, entries[-1].authorization_id if more else "")


def _page(stmt: Select, key: Column[str], dialect: str, after_id: str, rows: int) -> Select:
    # Code-point order, as settlement.records sorts clearing records: PostgreSQL's locale
    # collation would disagree with Python's, and the cursor must compare as the order does.
    ordered: ColumnElement[str] = collate(key, "C") if dialect == "postgresql" else key
    if after_id:
        stmt = stmt.where(ordered > after_id)
    return stmt.order_by(ordered).limit(rows)
