"""The operator's affinity read (exchange/affinity.affinity: distinct members, redemptions, points
and value per issuer → acquirer, suppression, lifts, suggestions) over a district's clearing
records on PostgreSQL, next to the plainest GROUP BY over the same window in the same run
(records and value per pair, no distinct members): the ratio is what the figures cost beyond a
scan of the window.

The district is written straight in SQL: `--shops` shops, `--records` captured cross-shop
redemptions over 90 days by `--members` members per issuer, each spending at a shop chosen by a
skewed hash (so some pairs are strong, some under k).

    python bench/affinity_bench.py [--records 1000000] [--shops 40] [--members 5000] [--runs 5]
        [--quick]  (for bench/all.py: 50,000 records, 1,000 members, 3 runs)

The last line: the affinity read's median against the baseline's median, as a ratio.
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
from exchange import affinity  # noqa: E402
from exchange.migrate import upgrade  # noqa: E402

PG_ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
NOW = datetime(2026, 12, 4, 6, 0, tzinfo=UTC)
DAYS = 90


def populate(engine: sa.Engine, records: int, shops: int, members: int) -> None:
    start = NOW - timedelta(days=DAYS)
    params = {"n": records, "shops": shops, "members": members, "start": start, "days": DAYS}
    # Record i: issuer i mod shops; its member a hash of i; the acquirer one of the next few
    # shops (how many depends on the issuer), so flows differ in strength and some fall under k.
    rows = """
        SELECT i,
               'shop' || lpad(mod(i, %(shops)s)::text, 3, '0') AS issuer_id,
               'shop' || lpad(mod(mod(i, %(shops)s) + 1
                                  + mod(abs(hashint4(i)), 2 * mod(mod(i, %(shops)s), 4) + 2),
                                  %(shops)s)::text, 3, '0') AS acquirer_id,
               'm' || mod(abs(hashint4(i * 31)), %(members)s) AS member_id,
               %(start)s + (i::float8 / %(n)s) * make_interval(days => %(days)s) AS at
        FROM generate_series(1, %(n)s) AS i"""
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE clearing_records DISABLE TRIGGER district_flows_add")
        conn.exec_driver_sql(
            f"""INSERT INTO authorizations (authorization_id, acquirer_id, request_id, issuer_id,
                   member_id, order_id, points, value_fen, fee_fen, rate_version, consent_code,
                   status, created_at, updated_at)
                SELECT 'a' || i, acquirer_id, 'r' || i, issuer_id, member_id, 'o' || i, 10, 10,
                       0, 1, '000000', 'captured', at, at FROM ({rows}) r""",
            params,
        )
        conn.exec_driver_sql(
            f"""INSERT INTO clearing_records (clearing_id, authorization_id, issuer_id,
                   acquirer_id, member_id, order_id, points, value_fen, fee_fen, rate_version,
                   settlement_period, authorized_at, captured_at, acquirer_envelope,
                   issuer_envelope)
                SELECT 'c' || i, 'a' || i, issuer_id, acquirer_id, member_id, 'o' || i, 10, 10,
                       0, 1, to_char(at, 'YYYY-MM-DD'), at, at, '', '' FROM ({rows}) r""",
            params,
        )
        conn.exec_driver_sql("ANALYZE clearing_records")


def baseline(conn: sa.Connection, start: datetime) -> int:
    c = sa.table(
        "clearing_records", sa.column("issuer_id"), sa.column("acquirer_id"),
        sa.column("value_fen"), sa.column("captured_at"),
    )  # fmt: skip
    q = (
        sa.select(c.c.issuer_id, c.c.acquirer_id, sa.func.count(), sa.func.sum(c.c.value_fen))
        .where(c.c.captured_at >= start, c.c.captured_at < NOW)
        .group_by(c.c.issuer_id, c.c.acquirer_id)
    )
    return len(conn.execute(q).all())


def timed(work) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--shops", type=int, default=40, help="at least 10")
    parser.add_argument("--members", type=int, default=5_000)
    parser.add_argument("--days", type=int, default=30, help="the window read")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--postgres-url", default=os.environ.get("COALITION_TEST_PG", PG_ADMIN))
    parser.add_argument("--quick", action="store_true", help="a short run, for bench/all.py")
    args = parser.parse_args()
    if args.quick:  # smaller defaults; what is given explicitly stays
        for name, default, quick in (
            ("records", 1_000_000, 50_000), ("members", 5_000, 1_000), ("runs", 5, 3)
        ):  # fmt: skip
            if getattr(args, name) == default:
                setattr(args, name, quick)

    admin = sa.create_engine(args.postgres_url, isolation_level="AUTOCOMMIT")
    name = f"cpx_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine = make_engine(admin.url.set(database=name).render_as_string(hide_password=False))
    try:
        upgrade(engine)
        t = timed(lambda: populate(engine, args.records, args.shops, args.members))
        print(f"populated {args.records:,} clearing records, {args.shops} shops in {t:.1f} s")
        start = NOW - timedelta(days=args.days)
        base, aff = [], []
        with engine.connect() as conn:
            found = affinity.affinity(conn, NOW, args.days)  # warm the cache, and report
            pairs = baseline(conn, start)
            for _ in range(args.runs):  # interleaved, so both see the same machine load
                base.append(timed(lambda: baseline(conn, start)))
                aff.append(timed(lambda: affinity.affinity(conn, NOW, args.days)))
        print(
            f"window {args.days} days: {pairs} pairs, {len(found.flows)} shown, "
            f"{found.suppressed_flows} suppressed (k {found.min_members}), "
            f"{len(found.suggestions)} suggestions"
        )
        b, a = statistics.median(base), statistics.median(aff)
        print(f"baseline GROUP BY (records, value): median {b * 1000:.0f} ms over {args.runs}")
        print(f"affinity (distinct members, lifts): median {a * 1000:.0f} ms over {args.runs}")
        print(f"affinity / baseline = {a / b:.2f}x")
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


if __name__ == "__main__":
    main()
