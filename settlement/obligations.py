"""Gross obligations of a period: what each issuer owes each acquirer, summed by the database,
and what each issuer owes the operator for its breakage.

Either read from the exchange's rollup of its records (district_flows: the sums kept per day
stamp, issuer and acquirer as each record is written), at most N² rows a day, or one set-based
aggregate (GROUP BY issuer, acquirer) over the period's clearing records, which the database
computes where the million records lie; never every record shipped to Python to be added up.

Breakage (the value of an issuer's points that expired in the period, as its node signed it) is
the issuer's to keep unless the coalition's policy gives the operator a share: `operator_bps`
basis points of it, rounded down to the fen once per issuer per period (the issuer keeps the
fraction). That share is an obligation issuer → operator with no fee.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Connection, Select, func, select

from exchange.figures import district_flows
from exchange.schema import clearing_records
from settlement.netting import OPERATOR
from settlement.periods import DAILY, Calendar
from settlement.records import in_period


class Obligation(NamedTuple):
    """All of a period's clearing records from one issuer to one acquirer, summed: the issuer
    pays `value_fen`, the acquirer receives `value_fen - fee_fen`, the operator `fee_fen`. A
    named tuple, like ClearingRecord: a period has up to N² of them (40,000 among 200
    merchants), and a frozen dataclass took longer to build than the database to read them."""

    issuer_id: str
    acquirer_id: str
    points: int
    value_fen: int
    fee_fen: int
    records: int


def obligations_query(period: str, calendar: Calendar = DAILY) -> Select:
    c = clearing_records.c
    return (
        select(
            c.issuer_id,
            c.acquirer_id,
            func.sum(c.points),
            func.sum(c.value_fen),
            func.sum(c.fee_fen),
            func.count(),
        )
        .where(in_period(period, calendar))
        .group_by(c.issuer_id, c.acquirer_id)
    )


def gross_obligations(
    conn: Connection, period: str, calendar: Calendar = DAILY
) -> list[Obligation]:
    """The period's obligations, one per (issuer, acquirer) pair, sorted by that pair.

    PostgreSQL sums BIGINT into NUMERIC (so a sum cannot overflow) and returns Decimals; int()
    of an integral Decimal is exact. Sorting here, not in SQL, keeps the order the same under
    every database collation.
    """
    rows = conn.execute(obligations_query(period, calendar))
    found = [
        Obligation(issuer, acquirer, int(points), int(value), int(fee), int(count))
        for issuer, acquirer, points, value, fee, count in rows
    ]
    return sorted(found, key=lambda o: (o.issuer_id, o.acquirer_id))


def rolled_up_obligations(
    conn: Connection, period: str, calendar: Calendar = DAILY
) -> list[Obligation]:
    """The period's obligations as gross_obligations gives them, read from the exchange's
    rollup of its clearing records instead of the records: district_flows holds one row per day
    stamp, issuer and acquirer, added to by a trigger in the very transaction that writes each
    record (exchange migration 0006), so a period is at most N² rows a day, not a million
    records, and a snapshot sees a record and its share of the rollup together.

    settle_period uses it only when its record count equals the number of records committed to
    by the period's root; it falls back to gross_obligations otherwise.
    """
    f = district_flows.c
    first, last = calendar.day_stamps(period)
    if first == last:  # one row per pair already: read as it is, nothing to add up
        query = select(f.issuer_id, f.acquirer_id, f.points, f.value_fen, f.fee_fen, f.records)
        query = query.where(f.settlement_period == first)
    else:
        query = (
            select(
                f.issuer_id,
                f.acquirer_id,
                func.sum(f.points),
                func.sum(f.value_fen),
                func.sum(f.fee_fen),
                func.sum(f.records),
            )
            .where(f.settlement_period.between(first, last))
            .group_by(f.issuer_id, f.acquirer_id)
        )
    # Straight through the driver: the rows need no processing, and there can be 40,000.
    compiled = query.compile(dialect=conn.dialect)
    params: Sequence[Any] | Mapping[str, Any] = compiled.params
    if compiled.positiontup is not None:  # SQLite's qmark style
        params = [compiled.params[name] for name in compiled.positiontup]
    raw = conn.connection.dbapi_connection
    assert raw is not None
    cursor = raw.cursor()
    try:
        cursor.execute(str(compiled), params)
        # Sorted as tuples: by issuer, then acquirer (a pair appears once), in code points.
        rows = sorted(cursor.fetchall())
    finally:
        cursor.close()
    if first == last:
        return [Obligation._make(row) for row in rows if row[5]]
    return [
        Obligation(issuer, acquirer, int(points), int(value), int(fee), int(count))
        for issuer, acquirer, points, value, fee, count in rows
        if count
    ]


# -- breakage ------------------------------------------------------------------------------

BPS = 10_000  # basis points in the whole


@dataclass(frozen=True, slots=True)
class StatedBreakage:
    """What an issuer's node signed about one settlement day: the points that expired there and
    their value in fen (summed over rate versions), and the signed receipt that says so."""

    issuer_id: str
    settlement_period: str
    points: int
    value_fen: int
    envelope: bytes  # the node's SignedEnvelope of its BreakageReceipt, as received


@dataclass(frozen=True, slots=True)
class BreakageShare:
    """An issuer's breakage of a whole period and the operator's share of it under the issuer's
    policy; one `settlement_breakage` row."""

    issuer_id: str
    points: int
    value_fen: int
    operator_bps: int
    operator_fen: int
    issuer_envelope: bytes

    def obligation(self) -> Obligation:
        """What netting sees: the issuer pays the operator its share, with no fee."""
        return Obligation(self.issuer_id, OPERATOR, self.points, self.operator_fen, 0, 0)


def operator_share(value_fen: int, operator_bps: int) -> int:
    """The operator's part of `value_fen` at `operator_bps`, rounded down to the fen."""
    if value_fen < 0 or not 0 <= operator_bps <= BPS:
        raise ValueError(f"breakage {value_fen} fen at {operator_bps} bps is out of range")
    return value_fen * operator_bps // BPS


def allocate_breakage(
    issuer_id: str, days: list[StatedBreakage], operator_bps: int
) -> BreakageShare:
    """The issuer's breakage over the period's days (in day order), shared once on the
    period's total, with the node's receipts as evidence."""
    points = sum(d.points for d in days)
    value = sum(d.value_fen for d in days)
    share = operator_share(value, operator_bps)
    evidence = pack_receipts([d.envelope for d in days])
    return BreakageShare(issuer_id, points, value, operator_bps, share, evidence)


def pack_receipts(envelopes: list[bytes]) -> bytes:
    """The evidence stored for a period: a one-day period's receipt is the node's envelope
    itself (as a clearing record keeps the issuer's); a longer period's are every day's, in
    day order, each preceded by its length as a varint (protobuf's delimited format, which
    Java's parseDelimitedFrom and Go's protodelim read)."""
    if len(envelopes) == 1:
        return envelopes[0]
    out = bytearray()
    for envelope in envelopes:
        n = len(envelope)
        while n > 0x7F:
            out.append(n & 0x7F | 0x80)
            n >>= 7
        out.append(n)
        out += envelope
    return bytes(out)


def unpack_receipts(evidence: bytes, days: int) -> list[bytes]:
    """The node's receipts of a period of `days` days, from what pack_receipts stored."""
    if days == 1:
        return [evidence]
    found, at = [], 0
    while at < len(evidence):
        n = shift = 0
        while True:
            byte = evidence[at]
            at += 1
            n |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        found.append(evidence[at : at + n])
        at += n
    if len(found) != days or at != len(evidence):
        raise ValueError(f"evidence holds {len(found)} receipts, not {days}")
    return found


def breakage_obligations(shares: list[BreakageShare]) -> list[Obligation]:
    """The shares that move money, as obligations sorted by issuer: a share of nothing is left
    out, so an issuer that keeps its breakage is not a party to the batch because of it."""
    return sorted((s.obligation() for s in shares if s.operator_fen > 0), key=lambda o: o.issuer_id)
