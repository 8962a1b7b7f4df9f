"""Clearing records as settlement sees them, read from the exchange a period at a time.

Only the settlement fields are read: the parties, the amounts, the rate version and the period.
Member and order ids stay at the exchange (a merchant's proof need not reveal another's
customers) and the signed envelopes stay in the audit trail, where disputes are decided.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any, NamedTuple

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


class MissingLeafHash(LookupError):
    """A record of the period was written without its leaf hash (by hand, not by a capture)."""


def stream_leaf_hashes(
    conn: Connection, period: str, calendar: Calendar = DAILY
) -> Iterator[bytes]:
    """A period's leaf hashes (clearing_records.leaf_hash, written with each record) in
    commitment order, as chunks of concatenated 32-byte digests: closing a period reads 32
    bytes a record, not the record, through the commitment-order index that carries them.

    On PostgreSQL each chunk is one value: the database concatenates the next LEAF_CHUNK hashes
    after the last id read (an index-only scan; the ORDER BY inside the aggregate is what fixes
    the order), so a million records cross the wire as 16 values, not a million rows."""
    first, last = calendar.day_stamps(period)
    raw = conn.connection.dbapi_connection
    assert raw is not None
    cursor = raw.cursor()
    try:
        if conn.dialect.name == "postgresql":
            yield from _pg_leaf_hashes(cursor, period, first, last)
            return
        cursor.execute(
            "SELECT leaf_hash FROM clearing_records WHERE settlement_period BETWEEN ? AND ? "
            "ORDER BY authorization_id",
            (first, last),
        )
        while rows := cursor.fetchmany(STREAM_CHUNK):
            if any(row[0] is None for row in rows):
                raise MissingLeafHash(f"period {period}: a clearing record has no leaf hash")
            yield b"".join(row[0] for row in rows)
    finally:
        cursor.close()


LEAF_CHUNK = 65_536
# The period as an equality when it is one day: the index's first column then bounds the scan
# (a range on it would make the planner sort instead). The aggregate has no ORDER BY of its
# own: it concatenates the rows in the order the subquery's LIMIT hands them over, which is
# the index's (a plain aggregate over a LIMIT is neither parallel nor reordered), while
# string_agg(... ORDER BY k) made PostgreSQL 15 sort every chunk again, which cost more than
# the scan. The leaves' order is what the root is over, so tests pin the roots read this way
# against the roots of the records.
_PG_CHUNK = """
SELECT string_agg(h, ''::bytea), count(*), count(h), max(k)
FROM (
    SELECT leaf_hash AS h, authorization_id COLLATE "C" AS k FROM clearing_records
    WHERE {period} AND authorization_id COLLATE "C" > %(after)s
    ORDER BY authorization_id COLLATE "C" LIMIT %(chunk)s
) AS chunk
"""


def _pg_leaf_hashes(cursor: Any, period: str, first: str, last: str) -> Iterator[bytes]:
    one_day = "settlement_period = %(first)s"
    days = "settlement_period BETWEEN %(first)s AND %(last)s"
    sql = _PG_CHUNK.format(period=one_day if first == last else days)
    after = ""  # below every id in code-point order
    while True:
        params = {"first": first, "last": last, "after": after, "chunk": LEAF_CHUNK}
        hashes, rows, hashed, after = _copied_row(cursor, cursor.mogrify(sql, params))
        if not rows:
            return
        if hashed != rows:
            raise MissingLeafHash(f"period {period}: a clearing record has no leaf hash")
        yield hashes


_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, no flags, no header extension
_COPY_END = b"\xff\xff"


def _copied_row(cursor: Any, query: bytes) -> tuple[bytes, int, int, str]:
    """The chunk query's one row, as COPY's binary format sends it: the hashes arrive as their
    own bytes (a plain SELECT sends bytea as hex text, twice the size, encoded by the server
    and decoded here). The row is (hashes, records, records with a hash, last id)."""
    parts: list[bytes] = []
    cursor.copy_expert(b"COPY (" + query + b") TO STDOUT (FORMAT binary)", _Sink(parts))
    data = b"".join(parts)
    if not data.startswith(_COPY_HEADER) or not data.endswith(_COPY_END):
        raise ValueError("unexpected COPY output")
    at = len(_COPY_HEADER)
    (fields,) = struct.unpack_from(">h", data, at)
    if fields != 4:
        raise ValueError(f"unexpected COPY row of {fields} fields")
    at += 2
    values: list[bytes | None] = []
    for _ in range(fields):
        (size,) = struct.unpack_from(">i", data, at)
        at += 4
        values.append(None if size < 0 else data[at : at + size])
        at += max(size, 0)
    hashes, rows, hashed, last = values
    if at + len(_COPY_END) != len(data) or rows is None or hashed is None:
        raise ValueError("unexpected COPY row")
    return (
        hashes or b"",
        int.from_bytes(rows, "big", signed=True),
        int.from_bytes(hashed, "big", signed=True),
        "" if last is None else last.decode(),
    )


class _Sink:
    """A file for copy_expert that keeps what it is given."""

    def __init__(self, parts: list[bytes]) -> None:
        self.write = parts.append
