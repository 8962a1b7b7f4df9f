"""Settling a period: its gross obligations, net positions, transfer plan and commitment root,
read from the exchange's database in one consistent snapshot; the issuers' breakage shares owed
to the operator, when given, are netted with them."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Connection, Engine

from coalition_kernel.db import READ_ONLY
from settlement.commitment import SUBTREE_HEIGHT, leaf_hash, root_of_leaf_hashes
from settlement.obligations import Obligation, gross_obligations, rolled_up_obligations
from settlement.periods import DAILY, Calendar
from settlement.records import MissingLeafHash, stream_leaf_hashes, stream_records
from settlement.report import SettlementReport, build_report
from settlement.subtrees import SubtreeHashers, helpers_for_this_machine

log = logging.getLogger(__name__)


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

    One read-only snapshot (REPEATABLE READ on PostgreSQL, SQLite's read transaction; neither
    blocks writers) sees the obligations and the root over the very same records. The
    obligations come from the exchange's rollup of its records (rolled_up_obligations: N² rows
    a day, not the records) when the rollup counts as many records as the root commits to, and
    from the records themselves (gross_obligations) when it does not; the root is folded from
    the leaf hashes written with each record. Each merchant still checks its net against its
    own proven entries (commitment.check_entries). Running it again gives the same report.
    """
    with engine.connect().execution_options(**snapshot_options(engine)) as conn, conn.begin():
        if engine.dialect.name != "postgresql":
            obligations = rolled_up_obligations(conn, period, calendar)
            root, committed = _root(conn, period, calendar)
        else:
            # The rollup is read on a second connection in this transaction's snapshot
            # (exported and imported: both reads see the very same rows) while this one reads
            # the leaf hashes that the helper processes hash.
            snapshot = conn.exec_driver_sql("SELECT pg_export_snapshot()").scalar_one()
            with ThreadPoolExecutor(1, thread_name_prefix="settle-rollup") as pool:
                rolled = pool.submit(_rollup_in_snapshot, engine, snapshot, period, calendar)
                root, committed = _root(conn, period, calendar)
                obligations = rolled.result()
        rolled_up = sum(o.records for o in obligations)
        if rolled_up != committed:
            log.warning(
                "period %s: the clearing rollup counts %d records, the root commits to %d; "
                "summing the records themselves",
                period,
                rolled_up,
                committed,
            )
            obligations = gross_obligations(conn, period, calendar)
    report = build_report(period, obligations, root, breakage)
    if committed != report.record_count:
        raise AssertionError(
            f"period {period}: {report.record_count} records netted, {committed} committed"
        )
    return report


def _root(conn: Connection, period: str, calendar: Calendar) -> tuple[bytes, int]:
    """The commitment root and its number of leaves, from the leaf hashes written with each
    record, its full subtrees hashed by helper processes (one per core) while the next leaves
    are read; a period with a record loaded by hand without its hash is hashed from its
    records."""
    try:
        with SubtreeHashers(helpers_for_this_machine(), 32 << SUBTREE_HEIGHT) as hashers:
            leaves = _prefetched(stream_leaf_hashes(conn, period, calendar))
            return root_of_leaf_hashes(leaves, hashers, SUBTREE_HEIGHT)
    except MissingLeafHash:
        records = stream_records(conn, period, calendar)
        return root_of_leaf_hashes(leaf_hash(r) for r in records)


def _rollup_in_snapshot(
    engine: Engine, snapshot: str, period: str, calendar: Calendar
) -> list[Obligation]:
    if not re.fullmatch(r"[0-9A-F-]+", snapshot):
        raise ValueError(f"unexpected snapshot id {snapshot!r}")
    options = {"isolation_level": "REPEATABLE READ"}
    with engine.connect().execution_options(**options) as conn, conn.begin():
        conn.exec_driver_sql(f"SET TRANSACTION SNAPSHOT '{snapshot}'")  # before any read
        return rolled_up_obligations(conn, period, calendar)


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
