"""Settling a period: its gross obligations, net positions, transfer plan and commitment root,
read from the exchange's database in one consistent snapshot; the issuers' breakage shares owed
to the operator, when given, are netted with them."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Engine

from coalition_kernel.db import READ_ONLY
from settlement.commitment import leaf_hash, root_of_leaf_hashes
from settlement.obligations import Obligation, gross_obligations
from settlement.periods import DAILY, Calendar
from settlement.records import MissingLeafHash, stream_leaf_hashes, stream_records
from settlement.report import SettlementReport, build_report


def settle_period(
    engine: Engine,
    period: str,
    calendar: Calendar = DAILY,
    breakage: Iterable[Obligation] = (),
) -> SettlementReport:
    """The settlement report of a closed period, with `breakage` (issuer → operator obligations,
    settlement.obligations.breakage_obligations) netted beside its clearing records. The
    commitment root is over the clearing records only: breakage is backed by the nodes' signed
    receipts, kept with the batch.

    The aggregate and the streamed records must see the same rows, or the root would commit to
    a batch other than the one netted: on PostgreSQL both run in one REPEATABLE READ
    transaction (SQLite's read transaction sees one snapshot, and does not block writers),
    and the record counts of the two reads are compared. Read-only: running it again gives the
    same report.
    """
    with engine.connect().execution_options(**snapshot_options(engine)) as conn, conn.begin():
        obligations = gross_obligations(conn, period, calendar)
        try:  # the leaf hashes written with each record: the root without reading the records
            root, committed = root_of_leaf_hashes(stream_leaf_hashes(conn, period, calendar))
        except MissingLeafHash:  # a record loaded by hand: hash every record of the period
            records = stream_records(conn, period, calendar)
            root, committed = root_of_leaf_hashes(leaf_hash(r) for r in records)
    report = build_report(period, obligations, root, breakage)
    if committed != report.record_count:
        raise AssertionError(
            f"period {period}: {report.record_count} records netted, {committed} committed"
        )
    return report


def snapshot_options(engine: Engine) -> dict[str, object]:
    """Execution options for one consistent read of many queries that blocks no writer."""
    if engine.dialect.name == "sqlite":
        return {READ_ONLY: True}  # a deferred BEGIN: one WAL snapshot, no write lock
    return {"isolation_level": "REPEATABLE READ"}
