"""Clearing records as settlement sees them, read from the exchange a period at a time.

Only the settlement fields are read: the parties, the amounts, the rate version and the period.
Member and order ids stay at the exchange (a merchant's proof need not reveal another's
customers) and the signed envelopes stay in the audit trail, where disputes are decided.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from sqlalchemy import ColumnElement, Connection, Select, collate, select

from exchange.schema import clearing_records
from settlement.periods import DAILY, Calendar

# Rows fetched per round trip when streaming; on PostgreSQL a server-side cursor, so a batch
# of a million records never sits in memory at once.
STREAM_CHUNK = 10_000


class ClearingRecord(NamedTuple):
    """One captured cross redemption: the issuer owes the acquirer `value_fen`, of which the
    operator keeps `fee_fen`. A named tuple, not a dataclass: it is a row read a million times
    a batch, and a tuple is built from a row over twice as fast as a frozen dataclass."""

    authorization_id: str
    clearing_id: str
    issuer_id: str
    acquirer_id: str
    points: int
    value_fen: int
    fee_fen: int
    rate_version: int
    settlement_period: str


def in_period(period: str, calendar: Calendar = DAILY) -> ColumnElement[bool]:
    """The WHERE clause selecting a period's records by their day stamps (indexed)."""
    first, last = calendar.day_stamps(period)
    stamp = clearing_records.c.settlement_period
    return stamp == first if first == last else stamp.between(first, last)


def records_query(period: str, calendar: Calendar = DAILY, *, dialect: str) -> Select:
    """A period's records in commitment order: by authorization id, compared as code points.

    PostgreSQL would otherwise sort by the database's locale collation, which disagrees with
    Python's (and SQLite's) code-point order; "C" collation is byte order, and UTF-8 byte order
    is code-point order. SQLite's default BINARY collation already is.
    """
    c = clearing_records.c
    order = collate(c.authorization_id, "C") if dialect == "postgresql" else c.authorization_id
    return (
        select(
            c.authorization_id,
            c.clearing_id,
            c.issuer_id,
            c.acquirer_id,
            c.points,
            c.value_fen,
            c.fee_fen,
            c.rate_version,
            c.settlement_period,
        )
        .where(in_period(period, calendar))
        .order_by(order)
    )


def stream_records(
    conn: Connection, period: str, calendar: Calendar = DAILY
) -> Iterator[ClearingRecord]:
    """A period's clearing records, sorted by authorization id, streamed in chunks."""
    stmt = records_query(period, calendar, dialect=conn.dialect.name)
    result = conn.execution_options(yield_per=STREAM_CHUNK).execute(stmt)
    for row in result:
        yield ClearingRecord._make(row)
