"""The queries on a real exchange database (SQLite, then PostgreSQL): the SQL aggregate equals
the Python reference, records stream in commitment order, and a whole period settles."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import given

from coalition_kernel.db import make_engine
from exchange.migrate import upgrade
from exchange.schema import authorizations, clearing_records
from settlement.commitment import BatchTree, leaf_hash
from settlement.netting import net_positions
from settlement.obligations import gross_obligations
from settlement.periods import Calendar
from settlement.records import ClearingRecord, records_query, stream_records
from settlement.settle import settle_period, snapshot_options
from tests.settlement.support import clearing_records as random_records
from tests.settlement.support import examples, reference_obligations

T = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def exchange_db(db_url: str) -> Iterator[sa.Engine]:
    """A migrated exchange database, empty."""
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def insert(engine: sa.Engine, records: Iterable[ClearingRecord], hashed: bool = False) -> None:
    """The rows the exchange would have written: a captured authorization per record (the
    foreign key) and the record, with its leaf hash when `hashed` (as a capture writes it;
    without, as a record loaded by hand). Inserts only: both tables are append-only."""
    records = list(records)
    if not records:
        return
    auths = [
        dict(
            authorization_id=r.authorization_id,
            acquirer_id=r.acquirer_id,
            request_id=f"rq-{r.authorization_id}",
            issuer_id=r.issuer_id,
            member_id="m1",
            order_id=f"o-{r.authorization_id}",
            points=r.points,
            value_fen=r.value_fen,
            fee_fen=r.fee_fen,
            rate_version=r.rate_version,
            consent_code="000000",
            status="captured",
            created_at=T,
            updated_at=T,
        )
        for r in records
    ]
    rows = [
        dict(
            r._asdict(),
            member_id="m1",
            order_id=f"o-{r.authorization_id}",
            authorized_at=T,
            captured_at=T,
            acquirer_envelope=b"a",
            issuer_envelope=b"i",
            leaf_hash=leaf_hash(r) if hashed else None,
        )
        for r in records
    ]
    with engine.begin() as conn:
        conn.execute(sa.insert(authorizations), auths)
        conn.execute(sa.insert(clearing_records), rows)


_days = itertools.count()


def moved(records: list[ClearingRecord], tag: str, *periods: str) -> list[ClearingRecord]:
    """The records under fresh ids (unique in the shared database), spread over `periods`."""
    return [
        r._replace(
            authorization_id=f"{tag}{r.authorization_id}",
            clearing_id=f"c-{tag}{r.authorization_id}",
            settlement_period=periods[i % len(periods)],
        )
        for i, r in enumerate(records)
    ]


@examples(share=4)
@given(records=random_records(max_size=40), around=random_records(max_size=10))
def test_the_sql_aggregate_equals_the_python_reference(
    exchange_db: sa.Engine, records: list[ClearingRecord], around: list[ClearingRecord]
) -> None:
    # Examples share the database: each takes a fresh day, with records on the days either
    # side of it that must not be counted.
    day = date(2026, 1, 2) + timedelta(days=3 * next(_days))
    before, after = (day - timedelta(days=1)).isoformat(), (day + timedelta(days=1)).isoformat()
    tag = uuid.uuid4().hex[:8]
    mine = moved(records, tag, day.isoformat())
    insert(exchange_db, mine + moved(around, tag + "n", before, after))
    with exchange_db.connect() as conn:
        assert gross_obligations(conn, day.isoformat()) == reference_obligations(mine)
        streamed = list(stream_records(conn, day.isoformat()))
    assert streamed == sorted(mine, key=lambda r: r.authorization_id)


def test_a_weekly_period_gathers_its_seven_day_stamps(exchange_db: sa.Engine) -> None:
    week = Calendar(cycle="weekly")
    first, _ = week.days("2026-W48")
    records = [
        ClearingRecord(
            f"a{d}",
            f"c{d}",
            "tea",
            "noodles",
            1,
            100 + d,
            d + 1,
            1,
            (first + timedelta(days=d)).isoformat(),
        )
        for d in range(-1, 8)
    ]
    insert(exchange_db, records)
    inside = records[1:8]
    with exchange_db.connect() as conn:
        assert gross_obligations(conn, "2026-W48", week) == reference_obligations(inside)
        assert list(stream_records(conn, "2026-W48", week)) == inside


def test_a_period_settles_end_to_end(exchange_db: sa.Engine) -> None:
    records = [
        ClearingRecord(
            f"a-{i:03d}", f"c-{i}", issuer, acquirer, 10 + i, 1000 + i, i, 1, "2026-11-24"
        )
        for i, (issuer, acquirer) in enumerate(
            itertools.product(["tea", "noodles", "salon"], repeat=2)
        )
    ]
    insert(exchange_db, records)
    report = settle_period(exchange_db, "2026-11-24")
    assert report.record_count == len(records)
    assert report.commitment_root == BatchTree(records).root.hex()
    assert {line.party: line.net_fen for line in report.lines} == net_positions(records)
    assert settle_period(exchange_db, "2026-11-24") == report  # read-only: same answer again
    empty = settle_period(exchange_db, "2026-11-25")
    assert (empty.record_count, empty.lines, empty.transfers) == (0, (), ())


def test_postgresql_streams_in_code_point_order_whatever_the_database_collation(
    pg_admin: sa.Engine | None,
) -> None:
    """Under a locale collation (ICU en-US) "a-b" < "aB" < "ab" < "a_b"; code points say
    "aB" < "a-b" < "a_b" < "ab". The commitment needs the latter, so the query says COLLATE "C"."""
    if pg_admin is None:
        pytest.skip("PostgreSQL unreachable")
    name = f"cpx_test_icu_{uuid.uuid4().hex[:8]}"
    with pg_admin.connect() as conn:
        try:
            conn.exec_driver_sql(
                f"CREATE DATABASE \"{name}\" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
            )
        except sa.exc.DBAPIError as exc:
            pytest.skip(f"no ICU collation on this server: {exc}")
    engine = make_engine(pg_admin.url.set(database=name).render_as_string(hide_password=False))
    try:
        upgrade(engine)
        ids = ["ab", "a_b", "aB", "a-b", "A", "a.b", "b", "a:b"]
        insert(
            engine,
            [
                ClearingRecord(i, f"c{n}", "tea", "noodles", 1, 1, 0, 1, "2026-11-24")
                for n, i in enumerate(ids)
            ],
        )
        with engine.connect() as conn:
            assert [r.authorization_id for r in stream_records(conn, "2026-11-24")] == sorted(ids)
            locale_order = (
                conn.execute(
                    sa.select(clearing_records.c.authorization_id).order_by(
                        clearing_records.c.authorization_id
                    )
                )
                .scalars()
                .all()
            )
        assert locale_order != sorted(ids)  # the trap the query avoids is real here
    finally:
        engine.dispose()
        with pg_admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_postgresql_query_sorts_by_byte_order() -> None:
    from sqlalchemy.dialects import postgresql

    sql = str(
        records_query("2026-11-24", dialect="postgresql").compile(dialect=postgresql.dialect())
    )
    assert 'COLLATE "C"' in sql


def test_settling_a_period_does_not_block_the_exchanges_writers(exchange_db):
    """Settlement reads a whole period in one snapshot; meanwhile captures go on (on SQLite a
    read transaction takes no write lock), and the snapshot does not see them."""

    def records(ids: range) -> list[ClearingRecord]:
        return [
            ClearingRecord(f"a-{i}", f"c-{i}", "tea", "noodles", 10, 10, 0, 1, "2026-01-01")
            for i in ids
        ]

    insert(exchange_db, records(range(3)))
    options = snapshot_options(exchange_db)
    with exchange_db.connect().execution_options(**options) as reader, reader.begin():
        first = reader.execute(sa.select(sa.func.count()).select_from(clearing_records))
        assert first.scalar_one() == 3
        # A writer commits while the read transaction is open, without waiting for it.
        insert(exchange_db, records(range(3, 5)))
        again = reader.execute(sa.select(sa.func.count()).select_from(clearing_records))
        assert again.scalar_one() == 3  # the same snapshot
    with exchange_db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(clearing_records)).scalar() == 5
