"""Nightly member facts + segments on PostgreSQL, next to a plain SQL GROUP BY computing RFM
over the same rows in the same run.

A fresh PostgreSQL database (dropped afterwards) gets the node's schema and, loaded in SQL
(INSERT … SELECT over generate_series), `--members` members and `--orders` earnings spread over
two years (member i gets orders i, i+M, …; amounts and times are functions of the order number),
one order line per order in one of 8 categories, and every fifth order part-paid with points (a
redemption on the same order). Then, in this order, each timed:

* baseline: `CREATE TABLE rfm AS SELECT member_pk, MAX(occurred_at), COUNT(*),
  SUM(amount_fen - refunded_fen) FROM earnings GROUP BY member_pk` (one statement, psycopg2);
* facts: merchant_node.marketing.facts.compute_facts for every member (recency, frequency and
  spend over 30/90/365 days, points behaviour, campaign response, evening share, categories),
  each member's row written once (on PostgreSQL computed into a temporary table by CREATE TABLE
  AS, which may use parallel workers as the baseline's does, then upserted);
* segments: merchant_node.marketing.segments_sql.place_members with the default definitions
  (RFM by thresholds, 6 segments, 4 tags, churn causes).

Both run twice: the first night (empty tables: every row inserted, each checked against
members by its foreign key) and the next night (as of a day later: last night's rows updated
in place, as every night after the first), each after its own baseline run. The ratio is
(facts + segments) / baseline. Peak RSS is this process's high-water mark
(getrusage): the work runs inside PostgreSQL, so it shows the Python side stays flat; the
server's memory is bounded by its work_mem (printed).

    python bench/marketing_bench.py [--members 1000000] [--orders 10000000] [--quick]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa  # noqa: E402

from coalition_kernel.db import make_engine, run_in_transaction  # noqa: E402
from merchant_node.ledger.migrate import upgrade  # noqa: E402
from merchant_node.marketing.definitions import default_definitions  # noqa: E402
from merchant_node.marketing.facts import FactsScope, compute_facts  # noqa: E402
from merchant_node.marketing.segments_sql import place_members  # noqa: E402

PG_ADMIN_DEFAULT = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
NOW = datetime(2026, 12, 1, tzinfo=UTC)
SPAN_SECONDS = 2 * 365 * 86400  # orders spread over the two years before NOW

SEED = [
    """INSERT INTO rate_versions (version, points_per_yuan, fen_per_point, rule_version,
           effective_from) VALUES (1, '1', '1', 'bench', %(start)s)""",
    """INSERT INTO members (id, member_id, referral_code, enrolled_at, lifetime_earned, debt,
           checkin_streak)
       SELECT i, 'm-' || i, 'R' || i, %(start)s, 0, 0, 0 FROM generate_series(1, %(m)s) AS i""",
    # Order i: member 1 + i mod M; time spread by a multiplicative hash so members' orders are
    # irregular; amount 10-510 yuan.
    """INSERT INTO earnings (id, order_id, member_pk, amount_fen, points, refunded_fen,
           clawed_back, channel, breakdown, occurred_at, created_at, rate_version, rule_version)
       SELECT i, 'o-' || i, 1 + i %% %(m)s, 1000 + (i::bigint * 7919) %% 50000, 10, 0, 0,
           'POS', '[]',
           %(now)s - make_interval(
               secs => ((i::bigint * 2654435761) %% %(span)s)::double precision),
           %(now)s, 1, 'bench'
       FROM generate_series(1, %(n)s) AS i""",
    """INSERT INTO order_lines (order_id, member_pk, sku, category, amount_fen, occurred_at)
       SELECT order_id, member_pk, 'sku', 'cat-' || (id %% 8), amount_fen, occurred_at
       FROM earnings""",
    """INSERT INTO redemptions (order_id, member_pk, points, value_fen, returned, created_at,
           rate_version)
       SELECT order_id, member_pk, 5, 5, 0, occurred_at, 1 FROM earnings WHERE id %% 5 = 0""",
    "ANALYZE",
]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _baseline(engine: sa.Engine) -> float:
    """Seconds of the plain GROUP BY computing RFM (a new table, as PostgreSQL may compute a
    CREATE TABLE AS with parallel workers)."""
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("DROP TABLE IF EXISTS rfm_baseline")
        raw.commit()
        t0 = time.perf_counter()
        cur.execute(
            "CREATE TABLE rfm_baseline AS SELECT member_pk, MAX(occurred_at) AS last_at, "
            "COUNT(*) AS orders, SUM(amount_fen - refunded_fen) AS spend "
            "FROM earnings GROUP BY member_pk"
        )
        raw.commit()
        return time.perf_counter() - t0
    finally:
        raw.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=10_000_000)
    parser.add_argument("--quick", action="store_true", help="20,000 members, 200,000 orders")
    parser.add_argument(
        "--pg-admin", default=os.environ.get("COALITION_BENCH_PG", PG_ADMIN_DEFAULT)
    )
    args = parser.parse_args()
    if args.quick:
        args.members, args.orders = 20_000, 200_000
    admin = sa.create_engine(args.pg_admin, isolation_level="AUTOCOMMIT")
    name = f"coalition_marketing_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = args.pg_admin.rsplit("/", 1)[0] + f"/{name}"
    engine = make_engine(url, pool_size=2)
    try:
        upgrade(engine)
        params = {"m": args.members, "n": args.orders, "now": NOW, "span": SPAN_SECONDS}
        params["start"] = datetime(2024, 1, 1, tzinfo=UTC)
        started = time.perf_counter()
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            # A bulk load: the ledger's row triggers (journal laws, the console's per-minute
            # rollups) are for live traffic; rows here are loaded as a restore would.
            cur.execute("SET session_replication_role = replica")
            for statement in SEED:
                cur.execute(statement, params)
            raw.commit()
            cur.execute("SHOW work_mem")
            work_mem = cur.fetchone()[0]
        finally:
            raw.close()
        seeded = time.perf_counter() - started
        print(
            f"PostgreSQL, {args.members:,} members, {args.orders:,} orders (+ as many order "
            f"lines, {args.orders // 5:,} redemptions), seeded in {seeded:.0f} s; "
            f"work_mem {work_mem}; {platform.python_implementation()} {platform.python_version()}"
        )

        baseline = _baseline(engine)

        rss_before = _rss_mb()
        definitions = default_definitions()
        print(f"baseline GROUP BY RFM          {baseline:8.1f} s")
        for night, as_of in (("first night", NOW), ("next night", NOW + timedelta(days=1))):
            if night == "next night":
                baseline = _baseline(engine)
                print(f"baseline GROUP BY RFM, again   {baseline:8.1f} s")
            t0 = time.perf_counter()
            facts = run_in_transaction(engine, lambda c, a=as_of: compute_facts(c, FactsScope(a)))
            facts_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            placed = run_in_transaction(
                engine, lambda c, a=as_of: place_members(c, definitions, 0, a)
            )
            segments_s = time.perf_counter() - t0
            assert facts == placed == args.members
            ours = facts_s + segments_s
            print(f"{night}: facts (every member) {facts_s:8.1f} s")
            print(f"{night}: segments, tags, causes {segments_s:6.1f} s")
            print(f"{night}: facts + segments     {ours:8.1f} s   ratio {ours / baseline:.2f}x")
        rss_after = _rss_mb()
        with engine.connect() as conn:
            counts = conn.execute(
                sa.text("SELECT segment, COUNT(*) FROM member_segments GROUP BY 1 ORDER BY 1")
            ).all()
        print(
            f"peak RSS of this process       {rss_before:8.0f} MB before, {rss_after:.0f} MB after"
        )
        print("segments: " + ", ".join(f"{s} {n:,}" for s, n in counts))
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
