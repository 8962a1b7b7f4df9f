"""Gross obligations of a period: what each issuer owes each acquirer, summed by the database.

One set-based aggregate (GROUP BY issuer, acquirer) over the period's clearing records: the
database reads a million records where they lie and returns at most N² sums, instead of
shipping every record to Python to be added up there.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, Select, func, select

from exchange.schema import clearing_records
from settlement.periods import DAILY, Calendar
from settlement.records import in_period


@dataclass(frozen=True, slots=True)
class Obligation:
    """All of a period's clearing records from one issuer to one acquirer, summed: the issuer
    pays `value_fen`, the acquirer receives `value_fen - fee_fen`, the operator `fee_fen`."""

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
