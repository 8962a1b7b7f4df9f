"""The console's heaviest page, a merchant's live figures (console/merchant_view.figures: today,
all-time totals, rates, 14 days of trend, campaign pools, active members today), over a shop of
10,000,000 orders on PostgreSQL: p50/p99 of the page query as the console runs it, next to the
same figures computed by scanning the orders (what a page view would cost without the rollups).

The shop's history is written straight in SQL (a year of orders, 30 % of them followed by a
redemption; 200,000 members), and its rollups as the triggers and the compaction leave them:
minutes × 64 shards for the last hour, hours before.

    python bench/console_bench.py [--orders 10000000] [--runs 200] [--quick]

The last line: p50 / p99 of the page against the scan's time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from coalition_kernel.db import make_engine  # noqa: E402
from console import merchant_view  # noqa: E402
from merchant_node.ledger.migrate import upgrade  # noqa: E402

PG_ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
NOW = datetime(2026, 12, 4, 6, 0, tzinfo=UTC)
DAYS = 365


def populate(engine: sa.Engine, orders: int, members: int) -> None:
    start = NOW - timedelta(days=DAYS)
    step = DAYS * 86_400 / orders  # seconds between orders
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO rate_versions VALUES (1, '1', '1', 'bench', %(at)s)", {"at": start}
        )
        # One bulk statement: its enrolments are counted once below, not row by row by the
        # trigger (200,000 updates of the same rows in one transaction grow their version chains).
        conn.exec_driver_sql("ALTER TABLE members DISABLE TRIGGER ledger_minutes_members")
        conn.exec_driver_sql(
            """INSERT INTO members (member_id, referral_code, enrolled_at, lifetime_earned, debt,
                   checkin_streak)
               SELECT 'm-' || i, 'R' || i, %(start)s, 0, 0, 0 FROM generate_series(1, %(n)s) i""",
            {"start": start, "n": members},
        )
        conn.exec_driver_sql("ALTER TABLE members ENABLE TRIGGER ledger_minutes_members")
        conn.exec_driver_sql(
            """INSERT INTO ledger_minutes (minute, kind, account, shard, lines, points)
               VALUES (%(m)s, 'ENROLL', '', 0, %(n)s, 0)""",
            {"m": int(start.timestamp()) // 60, "n": members},
        )
    # Orders in chunks of a million: one earning each, 10-500 yuan, member round robin.
    chunk = 1_000_000
    for lo in range(1, orders + 1, chunk):
        hi = min(orders, lo + chunk - 1)
        with engine.begin() as conn:
            conn.exec_driver_sql(
                """INSERT INTO earnings (order_id, member_pk, amount_fen, points, refunded_fen,
                       clawed_back, channel, breakdown, occurred_at, created_at, rate_version,
                       rule_version)
                   SELECT 'o-' || i, 1 + i %% %(members)s, 1000 + (i::bigint * 7919) %% 49000,
                          10 + (i::bigint * 7919) %% 490, 0, 0, 'POS', '[]', t, t, 1, 'bench'
                   FROM (SELECT i, %(start)s::timestamptz + make_interval(secs => i * %(step)s) t
                         FROM generate_series(%(lo)s, %(hi)s) i) s""",
                {"members": members, "start": start, "step": step, "lo": lo, "hi": hi},
            )
        print(f"  orders {hi:,} / {orders:,}", flush=True)
    # The rollups the triggers and compaction leave: hours, then minutes × shards in the last
    # hour (the members' rows were written by the trigger on members).
    recent = NOW - timedelta(hours=1)
    with engine.begin() as conn:
        # Every order issued its points; 3 in 10 were followed by a redemption of half of them.
        for kind, account, value, share in (
            ("EARN", "ISSUANCE", "-sum(points)", "true"),
            ("REDEEM", "REDEMPTION", "sum(points / 2)", "(i %% 10) < 3"),
        ):
            for old, bucket, shard in (
                (True, "floor(extract(epoch FROM occurred_at) / 3600) * 60", "0"),
                (False, "floor(extract(epoch FROM occurred_at) / 60)", "member_pk %% 64"),
            ):
                conn.exec_driver_sql(
                    f"""INSERT INTO ledger_minutes (minute, kind, account, shard, lines, points)
                        SELECT {bucket}, '{kind}', '{account}', {shard}, count(*), {value}
                        FROM (SELECT *, id AS i FROM earnings) e
                        WHERE {share} AND occurred_at {"<" if old else ">="} %(recent)s
                        GROUP BY 1, 4""",
                    {"recent": recent},
                )
        conn.exec_driver_sql("ANALYZE")


def scan_figures(engine: sa.Engine) -> None:
    """The same page's figures by scanning the orders: the cost the rollups avoid."""
    today = merchant_view.day_start(NOW)
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT sum(points), count(*) FROM earnings").one()
        conn.exec_driver_sql(
            """SELECT date_trunc('day', occurred_at), sum(points), count(*) FROM earnings
               WHERE occurred_at >= %(since)s GROUP BY 1""",
            {"since": today - timedelta(days=13)},
        ).all()


def timed(fn, runs: int) -> list[float]:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return sorted(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--members", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="200,000 orders, 50 runs")
    parser.add_argument("--postgres-url", default=PG_ADMIN)
    args = parser.parse_args()
    if args.quick:
        args.orders, args.members, args.runs = 200_000, 20_000, 50
    admin = sa.create_engine(args.postgres_url, isolation_level="AUTOCOMMIT")
    name = f"cpx_bench_console_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine = make_engine(admin.url.set(database=name).render_as_string(hide_password=False))
    try:
        upgrade(engine)
        print(f"console page over {args.orders:,} orders, {args.members:,} members, PostgreSQL")
        started = time.perf_counter()
        populate(engine, args.orders, args.members)
        print(f"  written in {time.perf_counter() - started:.0f} s")
        with engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT count(*) FROM ledger_minutes").scalar()
        print(f"  rollup rows: {rows:,}")
        figures = merchant_view.figures(engine, "bench", NOW)
        print(f"  today: {figures['today']['earns']:,} earns, "
              f"{figures['today']['active_members']:,} active members; "
              f"all time issued {figures['totals']['issued']:,}")  # fmt: skip
        page = timed(lambda: merchant_view.figures(engine, "bench", NOW), args.runs)
        scan = timed(lambda: scan_figures(engine), max(3, args.runs // 20))
        p50, p99 = statistics.median(page), page[min(len(page) - 1, int(len(page) * 0.99))]
        print(f"page query: p50 {p50:.1f} ms, p99 {p99:.1f} ms over {args.runs} runs")
        print(f"scan of the orders (no rollups): p50 {statistics.median(scan):.0f} ms")
        print(
            f"console page p50 {p50:.1f} ms / p99 {p99:.1f} ms over {args.orders:,} orders "
            f"(scanning instead: {statistics.median(scan):.0f} ms, "
            f"{statistics.median(scan) / p50:.0f}x slower)"
        )
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


if __name__ == "__main__":
    main()
