"""Settling a period: its gross obligations, net positions, transfer plan and commitment root,
read from the exchange's database in one consistent snapshot; the issuers' breakage shares owed
to the operator, when given, are netted with them."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Connection, Engine

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
    snapshot, shared by two connections so that they run side by side (SQLite's read
    transaction sees one snapshot, and does not block writers),
    and the record counts of the two reads are compared. Read-only: running it again gives the
    same report.
    """
    with engine.connect().execution_options(**snapshot_options(engine)) as conn, conn.begin():
        if engine.dialect.name != "postgresql":
            obligations = gross_obligations(conn, period, calendar)
            root, committed = _root(conn, period, calendar)
        else:
            # The root is read on a second connection in this transaction's snapshot (exported
            # and imported, so both reads see the very same rows) while this one aggregates:
            # the database sums while this process hashes.
            snapshot = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
            with ThreadPoolExecutor(1, thread_name_prefix="settle-root") as pool:
                rooted = pool.submit(_root_in_snapshot, engine, snapshot, period, calendar)
                obligations = gross_obligations(conn, period, calendar)
                root, committed = rooted.result()
    report = build_report(period, obligations, root, breakage)
    if committed != report.record_count:
        raise AssertionError(
            f"period {period}: {report.record_count} records netted, {committed} committed"
        )
    return report


def _root(conn: Connection, period: str, calendar: Calendar) -> tuple[bytes, int]:
    """The commitment root and its number of leaves, from the leaf hashes written with each
    record; a period with a record loaded by hand without one is hashed from its records."""
    try:
        return root_of_leaf_hashes(_prefetched(stream_leaf_hashes(conn, period, calendar)))
    except MissingLeafHash:
        records = stream_records(conn, period, calendar)
        return root_of_leaf_hashes(leaf_hash(r) for r in records)


def _root_in_snapshot(
    engine: Engine, snapshot: str, period: str, calendar: Calendar
) -> tuple[bytes, int]:
    if not re.fullmatch(r"[0-9A-F-]+", snapshot):
        raise ValueError(f"unexpected snapshot id {snapshot!r}")
    options = {"isolation_level": "REPEATABLE READ"}
    with engine.connect().execution_options(**options) as conn, conn.begin():
        conn.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")  # before any read
        return _root(conn, period, calendar)


def _prefetched(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The next chunk is read (the driver waits for the database without the GIL) while this
    one is hashed."""
    with ThreadPoolExecutor(1, thread_name_prefix="settle-read") as pool:
        ahead = pool.submit(next, chunks, None)
        while (chunk := ahead.result()) is not None:
            ahead = pool.submit(next, chunks, None)
            yield chunk


def snapshot_options(engine: Engine) -> dict[str, object]:
    """Execution options for one consistent read of many queries that blocks no writer."""
    if engine.dialect.name == "sqlite":
        return {READ_ONLY: True}  # a deferred BEGIN: one WAL snapshot, no write lock
    return {"isolation_level": "REPEATABLE READ"}
