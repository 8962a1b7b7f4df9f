"""Expiring a million lots on PostgreSQL (and optionally SQLite), next to the plain SQL update.

A fresh PostgreSQL database (dropped afterwards) gets the node's schema and, loaded in SQL
(INSERT … SELECT over generate_series), `--members` members and `--lots` lots, every one due,
spread over the members as real earnings are (lot i belongs to member i mod M, so a batch of
lots touches as many members as it can), each issued by an EARN journal entry so the ledger's
laws can be checked afterwards. Each measurement then runs on its own copy of that database
(CREATE DATABASE … TEMPLATE), so every one starts from the same rows:

* baseline: `UPDATE lots SET remaining = 0 WHERE remaining > 0 AND expires_at <= now`, one
  statement through a plain psycopg2 cursor: no journal, no locks, no law kept;
* expire_due: `NodeLedger.run_expiry`, `--batch` lots a transaction: member locks, one journal
  transaction per batch (MEMBER_AVAILABLE per lot, one BREAKAGE line), the lots zeroed; then
  the audit of laws 1, 2 and 4, and a second run at the same instant, which must do nothing;
* expire_due again on a third copy under tracemalloc, for the peak of Python allocations
  (tracing slows the code, so the timing comes from the untraced run).

Peak RSS is the process's high-water mark (getrusage), read before and after expire_due: the
seeding runs inside PostgreSQL, so the growth is expire_due's own. `--sqlite` does the same on a
SQLite file (copied with the file system).

    python bench/expiry_bench.py [--lots 1000000] [--members 100000] [--batch 5000] [--sqlite]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import sqlite3
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from coalition_kernel.db import make_engine
from merchant_node.ledger.expiry import ExpiryRun
from merchant_node.ledger.migrate import upgrade
from merchant_node.ledger.service import NodeLedger

PG_ADMIN_DEFAULT = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
EARNED = datetime(2025, 1, 1, tzinfo=UTC)
NOW = EARNED + timedelta(days=366)  # every lot expired at EARNED + 365 days + up to a day

# Rows are functions of their number; %(…)s are psycopg2 parameters, :… SQLite's (see _sqlite).
PG_SEED = [
    """INSERT INTO members (id, member_id, referral_code, enrolled_at, lifetime_earned, debt,
           checkin_streak)
       SELECT i, 'm-' || i, 'R' || i, %(earned)s, 0, 0, 0 FROM generate_series(1, %(m)s) AS i""",
    """INSERT INTO lots (id, member_pk, points, remaining, earned_at, expires_at,
           source_order_id, rule_id, rule_version, rate_version)
       SELECT i, 1 + (i - 1) %% %(m)s, p, p, %(earned)s,
           %(earned)s + interval '365 days' + (i %% 86400) * interval '1 second',
           'o-' || i, 'base_rate', %(rule)s, 1
       FROM (SELECT i, 1 + abs(hashtext('p' || i)) %% 500 AS p
             FROM generate_series(1, %(n)s) AS i) AS g""",
    """INSERT INTO journal_transactions (id, kind, member_pk, order_id, created_at,
           rate_version, rule_version)
       SELECT i, 'EARN', i, 'seed-' || i, %(earned)s, 1, %(rule)s
       FROM generate_series(1, %(m)s) AS i""",
    """INSERT INTO journal_lines (txn_id, account, member_pk, lot_id, points, rate_version,
           rule_version)
       SELECT member_pk, 'MEMBER_AVAILABLE', member_pk, id, remaining, 1, %(rule)s FROM lots""",
    """INSERT INTO journal_lines (txn_id, account, member_pk, lot_id, points, rate_version,
           rule_version)
       SELECT member_pk, 'ISSUANCE', NULL, NULL, -sum(remaining), 1, %(rule)s
       FROM lots GROUP BY member_pk""",
    "UPDATE members SET lifetime_earned = t.total FROM "
    "(SELECT member_pk, sum(points) AS total FROM lots GROUP BY member_pk) AS t "
    "WHERE members.id = t.member_pk",
    *(
        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
        for table in ("members", "lots", "journal_transactions", "journal_lines")
    ),
]
BASELINE = "UPDATE lots SET remaining = 0 WHERE remaining > 0 AND expires_at <= %(now)s"


@dataclass
class Measured:
    seconds: float
    result: ExpiryRun
    rss_before: float = 0.0
    rss_after: float = 0.0
    traced_mib: float = 0.0


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def open_ledger(url: str) -> NodeLedger:
    ledger = NodeLedger(make_engine(url, pool_size=2), clock=lambda: NOW)
    ledger.configure_rate("1", "1")
    return ledger


def run_expiry(url: str, batch: int, *, traced: bool = False) -> Measured:
    ledger = open_ledger(url)
    try:
        if traced:
            tracemalloc.start()
            began = time.perf_counter()
            result = ledger.run_expiry(now=NOW, batch=batch)
            seconds = time.perf_counter() - began
            peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
            return Measured(seconds, result, traced_mib=peak)
        before = rss_mib()
        began = time.perf_counter()
        result = ledger.run_expiry(now=NOW, batch=batch)
        seconds = time.perf_counter() - began
        return Measured(seconds, result, before, rss_mib())
    finally:
        ledger.engine.dispose()


def check(url: str, batch: int, lots: int, seeded_points: int, expired: ExpiryRun) -> str:
    """The laws after expiry, and a second run at the same instant that finds nothing."""
    ledger = open_ledger(url)
    try:
        assert (expired.lots_expired, expired.points_expired) == (lots, seeded_points), expired
        began = time.perf_counter()
        again = ledger.run_expiry(now=NOW, batch=batch)
        rerun = time.perf_counter() - began
        assert (again.lots_expired, again.points_expired, again.members) == (0, 0, 0), again
        began = time.perf_counter()
        violations = ledger.audit()
        audited = time.perf_counter() - began
        assert violations == [], violations[:5]
        return (
            f"audit: laws 1, 2, 4 hold ({audited:.1f} s); a second run did nothing ({rerun:.2f} s)"
        )
    finally:
        ledger.engine.dispose()


# -- PostgreSQL ------------------------------------------------------------------------------


@contextmanager
def pg_databases(admin_url: str) -> Iterator[Callable[[str | None], str]]:
    """Makes databases on demand (empty, or copies of another) and drops them all at the end."""
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    made: list[str] = []

    def make(template: str | None = None) -> str:
        name = f"cpx_expiry_bench_{uuid.uuid4().hex[:8]}"
        source = f' TEMPLATE "{sa.make_url(template).database}"' if template else ""
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"{source}')
        made.append(name)
        return admin.url.set(database=name).render_as_string(hide_password=False)

    try:
        yield make
    finally:
        with admin.connect() as conn:
            for name in made:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def pg_seed(url: str, lots: int, members: int) -> tuple[float, int, str]:
    engine = make_engine(url, pool_size=1)
    upgrade(engine)
    open_ledger(url).engine.dispose()  # rate version 1
    began = time.perf_counter()
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        # Loading a balanced journal wholesale, a member's lines in two statements: the
        # statement check would leave each entry to be summed at commit; the audit below checks
        # every law after expiry anyway.
        cur.execute("ALTER TABLE journal_lines DISABLE TRIGGER journal_lines_checked")
        params = {"n": lots, "m": members, "earned": EARNED, "rule": "base-1"}
        for statement in PG_SEED:
            cur.execute(statement, params)
        cur.execute("ALTER TABLE journal_lines ENABLE TRIGGER journal_lines_checked")
        cur.execute("SELECT sum(points) FROM lots")
        total = int(_one(cur))
        cur.execute("SHOW server_version")
        version = _one(cur)
        raw.commit()
    finally:
        raw.close()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("members", "lots", "journal_transactions", "journal_lines"):
            conn.exec_driver_sql(f"VACUUM ANALYZE {table}")
    engine.dispose()
    return time.perf_counter() - began, total, f"PostgreSQL {version}"


def _one(cur: Any) -> Any:
    row = cur.fetchone()
    assert row is not None
    return row[0]


def pg_baseline(url: str) -> tuple[float, int]:
    engine = make_engine(url, pool_size=1)
    raw = engine.raw_connection()
    try:
        began = time.perf_counter()
        cur = raw.cursor()
        cur.execute(BASELINE, {"now": NOW})
        updated = cur.rowcount
        raw.commit()
        return time.perf_counter() - began, updated
    finally:
        raw.close()
        engine.dispose()


# -- SQLite ----------------------------------------------------------------------------------


def sqlite_time(at: datetime) -> str:
    """How the ledger's UtcDateTime stores an instant in SQLite (compared as text)."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


SQLITE_NUMBERS = "WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < {n})"


def sqlite_seed(path: str, lots: int, members: int) -> tuple[float, int, str]:
    url = f"sqlite:///{path}"
    engine = make_engine(url, pool_size=1)
    upgrade(engine)
    engine.dispose()
    open_ledger(url).engine.dispose()
    began = time.perf_counter()
    earned = sqlite_time(EARNED)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN")
    db.execute(
        SQLITE_NUMBERS.format(n=members) + " INSERT INTO members (id, member_id, referral_code,"
        " enrolled_at, lifetime_earned, debt, checkin_streak)"
        " SELECT i, 'm-' || i, 'R' || i, ?, 0, 0, 0 FROM g",
        (earned,),
    )
    db.execute(
        SQLITE_NUMBERS.format(n=lots) + " INSERT INTO lots (id, member_pk, points, remaining,"
        " earned_at, expires_at, source_order_id, rule_id, rule_version, rate_version)"
        " SELECT i, 1 + (i - 1) % ?, 1 + (i * 7919) % 500, 1 + (i * 7919) % 500, ?,"
        " strftime('%Y-%m-%d %H:%M:%S', ?, '+365 days', '+' || (i % 86400) || ' seconds')"
        " || '.000000', 'o-' || i, 'base_rate', 'base-1', 1 FROM g",
        (members, earned, EARNED.strftime("%Y-%m-%d %H:%M:%S")),
    )
    db.execute(
        SQLITE_NUMBERS.format(n=members) + " INSERT INTO journal_transactions (id, kind,"
        " member_pk, order_id, created_at, rate_version, rule_version)"
        " SELECT i, 'EARN', i, 'seed-' || i, ?, 1, 'base-1' FROM g",
        (earned,),
    )
    db.execute(
        "INSERT INTO journal_lines (txn_id, account, member_pk, lot_id, points, rate_version,"
        " rule_version) SELECT member_pk, 'MEMBER_AVAILABLE', member_pk, id, remaining, 1,"
        " 'base-1' FROM lots"
    )
    db.execute(
        "INSERT INTO journal_lines (txn_id, account, member_pk, lot_id, points, rate_version,"
        " rule_version) SELECT member_pk, 'ISSUANCE', NULL, NULL, -sum(remaining), 1, 'base-1'"
        " FROM lots GROUP BY member_pk"
    )
    total = db.execute("SELECT sum(points) FROM lots").fetchone()[0]
    db.execute("COMMIT")
    db.execute("ANALYZE")
    db.close()
    return time.perf_counter() - began, int(total), f"SQLite {sqlite3.sqlite_version}"


def sqlite_baseline(path: str) -> tuple[float, int]:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    try:
        began = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        cur = db.execute(
            "UPDATE lots SET remaining = 0 WHERE remaining > 0 AND expires_at <= ?",
            (sqlite_time(NOW),),
        )
        db.execute("COMMIT")
        return time.perf_counter() - began, cur.rowcount
    finally:
        db.close()


# -- the run ---------------------------------------------------------------------------------


def report(
    name: str, loaded: float, lots: int, members: int, batch: int, baseline: tuple[float, int]
) -> Callable[[Measured, Measured, str], None]:
    def show(timed: Measured, traced: Measured, checked: str) -> None:
        r = timed.result
        print(f"\n== {name}: {lots:,} due lots of {members:,} members (loaded in {loaded:.1f} s)")
        print(f"{'':44}{'seconds':>9}{'lots/s':>11}")
        assert baseline[1] == lots, baseline
        print(
            f"{'baseline: UPDATE lots SET remaining = 0':44}{baseline[0]:9.2f}"
            f"{lots / baseline[0]:11,.0f}"
        )
        print(
            f"{f'expire_due (batches of {batch:,})':44}{timed.seconds:9.2f}"
            f"{lots / timed.seconds:11,.0f}"
        )
        print(f"ratio expire_due / baseline: {timed.seconds / baseline[0]:.1f}x")
        print(
            f"expire_due wrote {r.points_expired:,} points of {r.lots_expired:,} lots in "
            f"{r.batches} batches (a journal transaction each), {r.members:,} member write-downs"
        )
        print(
            f"peak Python allocations (tracemalloc, separate run): {traced.traced_mib:.1f} MiB; "
            f"peak RSS {timed.rss_before:.0f} MiB before expire_due, {timed.rss_after:.0f} after"
        )
        print(checked)

    return show


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--lots", type=int, default=1_000_000)
    parser.add_argument("--members", type=int, default=0, help="default: lots / 10")
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--sqlite", action="store_true", help="also on a SQLite file")
    parser.add_argument(
        "--postgres-url", default=os.environ.get("COALITION_TEST_PG", PG_ADMIN_DEFAULT)
    )
    parser.add_argument("--quick", action="store_true", help="for bench/all.py: 30,000 lots")
    args = parser.parse_args()
    if args.quick:
        args.lots = 30_000
    members = args.members or max(1, args.lots // 10)
    print(f"Python {platform.python_version()}, {os.cpu_count()} cores")

    with pg_databases(args.postgres_url) as make:
        source = make(None)
        loaded, total, version = pg_seed(source, args.lots, members)
        base, timed, traced = make(source), make(source), make(source)
        show = report(version, loaded, args.lots, members, args.batch, pg_baseline(base))
        result = run_expiry(timed, args.batch)
        show(
            result,
            run_expiry(traced, args.batch, traced=True),
            check(timed, args.batch, args.lots, total, result.result),
        )

    if args.sqlite:
        with tempfile.TemporaryDirectory() as tmp:
            source = os.path.join(tmp, "source.db")
            loaded, total, version = sqlite_seed(source, args.lots, members)
            copies = []
            for name in ("base", "timed", "traced"):
                shutil.copy(source, os.path.join(tmp, f"{name}.db"))
                copies.append(os.path.join(tmp, f"{name}.db"))
            show = report(
                version, loaded, args.lots, members, args.batch, sqlite_baseline(copies[0])
            )
            result = run_expiry(f"sqlite:///{copies[1]}", args.batch)
            show(
                result,
                run_expiry(f"sqlite:///{copies[2]}", args.batch, traced=True),
                check(f"sqlite:///{copies[1]}", args.batch, args.lots, total, result.result),
            )
    print(f"\npeak RSS of this process over the whole run: {rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
