"""Settling a period of a million clearing records on PostgreSQL, next to the plain SQL aggregate.

A fresh PostgreSQL database (dropped afterwards) gets the exchange's schema and, loaded in SQL
(INSERT … SELECT over generate_series), `--records` clearing records of one period among
`--merchants` merchants, plus a tenth as many on the days either side that settlement must skip.
Ids look like the exchange's ("a-" + 32 hex digits: random order, as uuid4 gives), values are one
fen per point with a 1.5% fee.

Then, in one run, each timed `--repeat` times (best and median shown):

* baseline: `SELECT issuer_id, acquirer_id, sum(value_fen) … WHERE period … GROUP BY` through a
  plain psycopg2 cursor;
* settlement: `settle_period` — the obligations read from the exchange's rollup of its records
  (district_flows, kept by a trigger as each record is written; the bench's load fires it), net
  positions, transfer plan, and the commitment root over the leaf hashes each record carries
  (written with the record; the bench computes them in SQL as it loads), read in commitment
  order while helper processes hash full subtrees;
* its phases alone, to show where the time goes, and the ways it was done before: the GROUP BY
  over the records, the root hashed in this process alone, the root from the records.

Peak memory is measured in a separate pass under tracemalloc (Python allocations; tracing slows
the code, so timings come from untraced runs), and the process's peak RSS is printed at the end.

    python bench/settlement_bench.py [--records 1000000] [--merchants 200] [--repeat 3]
        [--keep | --database NAME]   # keep the loaded database / settle one kept before
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from coalition_kernel.db import make_engine
from exchange.migrate import upgrade
from settlement import settle as settle_module
from settlement.commitment import _PREFIX, merkle_root, root_of_leaf_hashes
from settlement.netting import net_positions, transfer_plan
from settlement.obligations import gross_obligations, rolled_up_obligations
from settlement.periods import DAILY
from settlement.records import stream_leaf_hashes, stream_records
from settlement.settle import settle_period

PG_ADMIN_DEFAULT = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
PERIOD = "2026-11-24"
NEIGHBOURS = ("2026-11-23", "2026-11-25")
FEE_BPS = 150

# One row per authorization, every column a function of its number i. Merchants are 'm000'…;
# the acquirer is never the issuer. The period's records are i <= :n, the rest its neighbours'.
LOAD_AUTHORIZATIONS = """
INSERT INTO authorizations (authorization_id, acquirer_id, request_id, issuer_id, member_id,
    order_id, points, value_fen, fee_fen, rate_version, consent_code, status, created_at,
    updated_at)
SELECT 'a-' || md5(i::text), 'm' || lpad(acq::text, 3, '0'), 'r-' || i,
    'm' || lpad(iss::text, 3, '0'), 'mem-' || (i %% 50000), 'o-' || i,
    pts, pts, pts * %(fee_bps)s / 10000, 1, '000000', 'captured', ts, ts
FROM (
    SELECT i, iss, (iss + 1 + abs(hashtext('a' || i)) %% (%(m)s - 1)) %% %(m)s AS acq,
        1 + abs(hashtext('p' || i)) %% 5000 AS pts,
        timestamptz '2026-11-24 00:00+08' + (i %% 86400) * interval '1 second'
            + (CASE WHEN i <= %(n)s THEN 0 WHEN i %% 2 = 0 THEN -1 ELSE 1 END) * interval '1 day'
            AS ts
    FROM (SELECT i, abs(hashtext('i' || i)) %% %(m)s AS iss
          FROM generate_series(1, %(total)s) AS i) AS g
) AS rows
"""
# The leaf hash as the capture writes it (settlement.commitment.leaf_hash), computed in SQL:
# strings as 4-byte big-endian length + UTF-8, integers as 8-byte big-endian.
LOAD_CLEARING_RECORDS = """
INSERT INTO clearing_records (clearing_id, authorization_id, issuer_id, acquirer_id, member_id,
    order_id, points, value_fen, fee_fen, rate_version, settlement_period, authorized_at,
    captured_at, acquirer_envelope, issuer_envelope, leaf_hash)
SELECT r.*, sha256('\\x00'::bytea || %(prefix)s
    || int4send(octet_length(convert_to(settlement_period, 'UTF8')))
    || convert_to(settlement_period, 'UTF8')
    || int4send(octet_length(convert_to(authorization_id, 'UTF8')))
    || convert_to(authorization_id, 'UTF8')
    || int4send(octet_length(convert_to(clearing_id, 'UTF8'))) || convert_to(clearing_id, 'UTF8')
    || int4send(octet_length(convert_to(issuer_id, 'UTF8'))) || convert_to(issuer_id, 'UTF8')
    || int4send(octet_length(convert_to(acquirer_id, 'UTF8'))) || convert_to(acquirer_id, 'UTF8')
    || int8send(points) || int8send(value_fen) || int8send(fee_fen)
    || int8send(rate_version::bigint))
FROM (
    SELECT 'c-' || md5('c' || authorization_id) AS clearing_id, authorization_id, issuer_id,
        acquirer_id, member_id, order_id, points, value_fen, fee_fen, rate_version,
        to_char(created_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD') AS settlement_period,
        created_at AS authorized_at, created_at AS captured_at,
        '\\x00'::bytea AS acquirer_envelope, '\\x00'::bytea AS issuer_envelope
    FROM authorizations
) AS r
"""
BASELINE = """
SELECT issuer_id, acquirer_id, sum(value_fen) FROM clearing_records
WHERE settlement_period = %s GROUP BY issuer_id, acquirer_id
"""


@contextmanager
def fresh_database(admin_url: str, keep: bool = False) -> Iterator[str]:
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"cpx_settle_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        if keep:
            print(f"kept database {name}: settle it again with --database {name}")
        else:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@contextmanager
def existing_database(admin_url: str, name: str) -> Iterator[str]:
    yield sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def load(engine: sa.Engine, records: int, merchants: int) -> float:
    began = time.perf_counter()
    total = records + records // 10
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        params = {"n": records, "m": merchants, "total": total, "fee_bps": FEE_BPS}
        cur.execute(LOAD_AUTHORIZATIONS, params)
        cur.execute(LOAD_CLEARING_RECORDS, {"prefix": _PREFIX})
        raw.commit()
    finally:
        raw.close()
    # VACUUM refuses to run in a transaction; it sets hint bits and statistics once, here,
    # instead of during the first timed run.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE authorizations")
        conn.exec_driver_sql("VACUUM ANALYZE clearing_records")
        # Loading ran the rollup's trigger once per record: a million updates of its rows in
        # one go, whose dead versions autovacuum clears in a live exchange as they come.
        conn.exec_driver_sql("VACUUM ANALYZE district_flows")
    return time.perf_counter() - began


def baseline(engine: sa.Engine) -> int:
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute(BASELINE, (PERIOD,))
        return len(cur.fetchall())
    finally:
        raw.close()


def settle(engine: sa.Engine) -> int:
    return settle_period(engine, PERIOD).record_count


def aggregate_only(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return len(gross_obligations(conn, PERIOD))


def rollup_only(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return len(rolled_up_obligations(conn, PERIOD))


def netting_only(obligations: list[Any]) -> Callable[[sa.Engine], int]:
    def run(_: sa.Engine) -> int:
        return len(transfer_plan(net_positions(obligations)))

    return run


def root_only(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return len(merkle_root(stream_records(conn, PERIOD)))


def root_from_leaf_hashes(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return settle_module._root(conn, PERIOD, DAILY)[1]


def root_hashed_here(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return root_of_leaf_hashes(stream_leaf_hashes(conn, PERIOD))[1]


def stream_leaf_hashes_only(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return sum(len(chunk) for chunk in stream_leaf_hashes(conn, PERIOD))


def stream_only(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return sum(1 for _ in stream_records(conn, PERIOD))


def timed(work: Callable[[sa.Engine], int], engine: sa.Engine, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        work(engine)
        times.append(time.perf_counter() - began)
    return times


def traced_peak(work: Callable[[sa.Engine], int], engine: sa.Engine) -> float:
    tracemalloc.start()
    try:
        work(engine)
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--merchants", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--database",
        help="settle this existing database (loaded by an earlier run with --keep) instead",
    )
    parser.add_argument("--keep", action="store_true", help="keep the loaded database, name it")
    parser.add_argument(
        "--postgres-url", default=os.environ.get("COALITION_TEST_PG", PG_ADMIN_DEFAULT)
    )
    parser.add_argument(
        "--quick", action="store_true", help="for bench/all.py: 100,000 records, timed once"
    )
    args = parser.parse_args()
    if args.quick:
        args.records, args.repeat = 100_000, 1

    if args.database:
        database = existing_database(args.postgres_url, args.database)
    else:
        database = fresh_database(args.postgres_url, args.keep)
    with database as url:
        engine = make_engine(url, pool_size=2)
        upgrade(engine)
        loaded = 0.0 if args.database else load(engine, args.records, args.merchants)
        with engine.connect() as conn:
            version = conn.exec_driver_sql("SHOW server_version").scalar()
            obligations = gross_obligations(conn, PERIOD)
        report = settle_period(engine, PERIOD)
        assert report.record_count == args.records, report.record_count
        with engine.connect() as conn:  # the stored leaf hashes give the records' own root
            assert report.commitment_root == merkle_root(stream_records(conn, PERIOD)).hex()
            # and the rollup the records' own sums
            assert rolled_up_obligations(conn, PERIOD) == obligations
        assert sum(line.net_fen for line in report.lines) == 0
        parties = sum(1 for line in report.lines if line.net_fen)

        print(
            f"settlement of {args.records:,} clearing records among {args.merchants} merchants "
            f"(+{args.records // 10:,} on the neighbouring days, skipped)"
        )
        print(
            f"PostgreSQL {version}, Python {platform.python_version()}, {os.cpu_count()} cores; "
            f"loaded in {loaded:.1f} s; {len(obligations):,} issuer→acquirer pairs, "
            f"{len(report.transfers)} transfers for {parties} non-zero parties"
        )
        print(f"root {report.commitment_root}\n")

        cells: list[tuple[str, Callable[[sa.Engine], int], bool]] = [
            ("baseline: SQL aggregate, GROUP BY", baseline, True),
            ("settle_period (everything below)", settle, True),
            ("  obligations from the rollup", rollup_only, False),
            ("  net positions + transfer plan", netting_only(obligations), False),
            ("  commitment root from leaf hashes", root_from_leaf_hashes, False),
            ("    of which: stream leaf hashes", stream_leaf_hashes_only, False),
            ("before: GROUP BY over the records", aggregate_only, False),
            ("before: root hashed in this process", root_hashed_here, False),
            ("before: root from records (stream + hash)", root_only, False),
            ("    of which: stream records only", stream_only, False),
        ]
        print(f"{'':44}{'best s':>9}{'median s':>10}{'peak Python MiB':>17}")
        results: dict[str, float] = {}
        for label, work, traced in cells:
            times = timed(work, engine, args.repeat)
            peak = f"{traced_peak(work, engine):17.1f}" if traced else ""
            results[label] = min(times)
            print(f"{label:44}{min(times):9.3f}{statistics.median(times):10.3f}{peak}")
        ratio = results[cells[1][0]] / results[cells[0][0]]
        print(f"\nratio settle_period / baseline (best times): {ratio:.1f}x")
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS of this process over the whole run: {rss:.0f} MiB")
        engine.dispose()


if __name__ == "__main__":
    main()
