"""Set-based expiry of the whole ledger (merchant_node/ledger/expiry.py), on SQLite and
PostgreSQL: batches, lapsed holds, idempotency, the breakage report, a race with redeems on
PostgreSQL and a property over random lots and run times."""

from __future__ import annotations

import os
import random
import threading
import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coalition_kernel.errors import FailedPrecondition
from merchant_node.ledger.commands import Earn, Enroll, PlaceHold, Redeem
from merchant_node.ledger.expiry import day_range
from merchant_node.ledger.schema import holds, journal_lines, journal_transactions, lots
from merchant_node.ledger.service import NodeLedger
from tests.conftest import FakeClock, open_test_ledger

EXAMPLES = int(os.environ.get("COALITION_HYPOTHESIS_EXAMPLES", "40"))
START = FakeClock().now
TTL = timedelta(days=365)  # open_test_ledger's policy


def enroll(ledger: NodeLedger, member: str) -> None:
    ledger.enroll(Enroll(f"enroll-{member}", member))


def earn(ledger: NodeLedger, member: str, order: str, points: int) -> None:
    ledger.earn(Earn(f"earn-{order}", member, order, points * 100, "POS", None))


def count(ledger: NodeLedger, table: sa.Table) -> int:
    with ledger.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def breakage(ledger: NodeLedger) -> int:
    with ledger.engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(journal_lines.c.points), 0)).where(
                journal_lines.c.account == "BREAKAGE"
            )
        ).scalar_one()


def test_many_lots_across_members_expire_in_several_batches_and_keep_the_laws(ledger, clock):
    members = [f"m{i}" for i in range(12)]
    for m in members:
        enroll(ledger, m)
    for day in range(5):  # lots of days 0-2 will be due, of days 3-4 not yet
        for i, m in enumerate(members):
            earn(ledger, m, f"{m}-d{day}", 10 + i + day)
        clock.advance(days=1)
    clock.now = START + TTL + timedelta(days=2, seconds=1)
    due = sum(10 + i + day for i in range(12) for day in range(3))

    run = ledger.run_expiry(batch=7)

    assert (run.lots_expired, run.points_expired) == (36, due)
    assert run.batches == 6  # 36 due lots, 7 a batch
    assert run.members_busy == 0
    assert breakage(ledger) == due
    for i, m in enumerate(members):
        assert ledger.balance(m).available_points == (10 + i + 3) + (10 + i + 4)
    history, _ = ledger.history("m3", page_size=100)
    expired = [e.available_delta for e in history if e.kind == "EXPIRE"]
    assert sum(expired) == -(13 + 14 + 15)  # each member sees its own expiries
    assert ledger.audit() == []

    txns = count(ledger, journal_transactions)
    again = ledger.run_expiry(batch=7)
    assert (again.lots_expired, again.points_expired, again.members) == (0, 0, 0)
    assert ledger.expire_due() == 0
    assert count(ledger, journal_transactions) == txns


def test_lapsed_holds_are_released_set_based_and_their_due_points_expire(ledger, clock):
    for m in ("a", "b", "c"):
        enroll(ledger, m)
        earn(ledger, m, f"{m}-old", 100)
    clock.now = START + TTL - timedelta(minutes=5)
    for m in ("a", "b", "c"):
        earn(ledger, m, f"{m}-new", 50)
    # a's hold reserves its old lot (earliest expiry first) and lapses with it; b's only lapses.
    ledger.place_hold(PlaceHold("h-a", "hold-a", "a", 80, ttl_seconds=3600), require_consent=False)
    ledger.place_hold(PlaceHold("h-b", "hold-b", "b", 30, ttl_seconds=60), require_consent=False)
    ledger.place_hold(PlaceHold("h-c", "hold-c", "c", 10, ttl_seconds=3600), require_consent=False)
    clock.advance(minutes=2)  # b's hold lapsed; no lot is due yet

    run = ledger.run_expiry(batch=1)
    assert (run.holds_lapsed, run.points_released, run.lots_expired) == (1, 30, 0)
    assert ledger.balance("b").available_points == 150
    clock.advance(minutes=4)  # the old lots are due, and so is a's hold with them

    run = ledger.run_expiry(batch=1)
    assert (run.holds_lapsed, run.points_released) == (2, 90)
    # a: 80 held points went back to the old lot and expired with its other 20.
    assert (run.lots_expired, run.points_expired) == (3, 300)  # every old lot whole again
    with ledger.engine.connect() as conn:
        statuses = dict(conn.execute(sa.select(holds.c.hold_ref, holds.c.status)).all())
    assert set(statuses.values()) == {"expired"}
    for m in ("a", "b", "c"):
        assert ledger.balance(m).available_points == 50
    with pytest.raises(FailedPrecondition, match="lapsed"):
        ledger.post_hold("post-a", "hold-a")
    assert ledger.audit() == []
    assert ledger.run_expiry().members == 0


def test_a_hold_not_yet_lapsed_is_left_pending(ledger, clock):
    enroll(ledger, "a")
    earn(ledger, "a", "o1", 100)
    ledger.place_hold(PlaceHold("h", "hold", "a", 40, ttl_seconds=600), require_consent=False)
    clock.advance(minutes=5)
    assert ledger.run_expiry().holds_lapsed == 0
    assert ledger.post_hold("post", "hold").status == "posted"
    assert ledger.audit() == []


def test_breakage_report_gives_points_per_day_and_their_value_per_rate_version(ledger, clock):
    enroll(ledger, "a")
    earn(ledger, "a", "o1", 100)  # rate version 1: 1 fen a point
    ledger.configure_rate("1", "3/2")  # rate version 2: 1.5 fen a point
    earn(ledger, "a", "o2", 33)
    clock.advance(days=1)
    earn(ledger, "a", "o3", 7)
    clock.now = START + TTL + timedelta(hours=1)  # 2027-01-05 18:00 in Shanghai
    ledger.run_expiry()
    clock.advance(days=1)
    ledger.run_expiry()

    start, end = day_range(date(2027, 1, 1), date(2027, 1, 31), "Asia/Shanghai")
    report = ledger.breakage_report(start, end)
    assert [
        (line.period, line.rate_version, line.points, line.value_fen) for line in report.lines
    ] == [
        ("2027-01-05", 1, 100, 100),
        ("2027-01-05", 2, 33, 49),  # 49.5 fen, rounded down
        ("2027-01-06", 2, 7, 10),
    ]
    assert (report.points, report.value_fen) == (140, 159)
    assert report.points_by_period() == {"2027-01-05": 133, "2027-01-06": 7}
    monthly = ledger.breakage_report(start, end, by="month")
    assert monthly.points_by_period() == {"2027-01": 140}
    assert ledger.breakage_report(*day_range(date(2027, 2, 1), date(2027, 2, 2), "UTC")).lines == []


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    earned=st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 200), st.integers(1, 300)),
        min_size=1,
        max_size=10,
    ),
    runs=st.lists(st.integers(300, 700), min_size=1, max_size=4),
    batch=st.integers(1, 4),
)
def test_a_run_expires_exactly_the_remaining_points_of_the_due_lots(
    ledger, clock, earned, runs, batch
):  # type: ignore[no-untyped-def]
    """Members earn lots on random days; expiry runs on random later days in batches of a
    random size. Each run writes off exactly what was left on the lots due at its time, and
    a second run at the same time writes off nothing."""
    prefix = uuid.uuid4().hex[:8]
    members = [f"{prefix}-{m}" for m in range(3)]
    clock.now = START
    for m in members:
        enroll(ledger, m)
    for n, (m, day, points) in enumerate(sorted(earned, key=lambda e: e[1])):
        clock.now = START + timedelta(days=day, seconds=n)
        earn(ledger, members[m], f"{prefix}-o{n}", points)
    with ledger.engine.connect() as conn:
        pks = [
            r.member_pk
            for r in conn.execute(
                sa.select(lots.c.member_pk).where(lots.c.source_order_id.like(f"{prefix}-%"))
            )
        ]

    def expired() -> int:
        with ledger.engine.connect() as conn:
            return -conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(journal_lines.c.points), 0))
                .join(journal_transactions, journal_transactions.c.id == journal_lines.c.txn_id)
                .where(
                    journal_transactions.c.kind == "EXPIRE",
                    journal_lines.c.account == "MEMBER_AVAILABLE",
                    journal_lines.c.member_pk.in_(pks),
                )
            ).scalar_one()

    def remaining(now: datetime) -> tuple[int, int]:
        """Points left on this example's due lots, and the smallest remaining of any lot."""
        with ledger.engine.connect() as conn:
            ours = lots.c.member_pk.in_(pks)
            due = conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(lots.c.remaining), 0)).where(
                    ours, lots.c.expires_at <= now
                )
            ).scalar_one()
            lowest = conn.execute(sa.select(sa.func.min(lots.c.remaining)).where(ours)).scalar()
        return due, lowest

    for day in sorted(runs):
        clock.now = START + timedelta(days=day)
        due, _ = remaining(clock.now)
        before = expired()
        ledger.run_expiry(batch=batch)
        assert expired() - before == due
        left, lowest = remaining(clock.now)
        assert left == 0 and lowest >= 0
        assert ledger.run_expiry(batch=batch).points_expired == 0
    assert ledger.audit() == []


@pytest.mark.postgresql
def test_expiry_racing_redeems_and_holds_expires_each_lot_once_on_postgresql(pg_url):
    """Redeems and holds on the same members as concurrent expiry runs: every due lot expires
    exactly once (by the sweep or by the request's own), nothing goes negative, no deadlock."""
    clock = FakeClock()
    ledger = open_test_ledger(pg_url, clock, pool_size=12)
    try:
        members = [f"m{i}" for i in range(60)]
        for m in members:
            enroll(ledger, m)
            earn(ledger, m, f"{m}-old", 100)
        clock.advance(days=200)
        for m in members:
            earn(ledger, m, f"{m}-new", 1000)
        clock.now = START + TTL + timedelta(seconds=1)  # the old lots are due, the new ones live
        errors: list[BaseException] = []
        refused: list[str] = []

        def requests(seed: int) -> None:
            rng = random.Random(seed)
            try:
                for n in range(40):
                    m = rng.choice(members)
                    try:
                        if n % 4:
                            ledger.redeem(Redeem(f"r{seed}-{n}", m, f"r{seed}-{n}", points=7))
                        else:
                            cmd = PlaceHold(f"h{seed}-{n}", f"h{seed}-{n}", m, 5, ttl_seconds=60)
                            ledger.place_hold(cmd, require_consent=False)
                    except FailedPrecondition as err:
                        refused.append(err.reason)
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                errors.append(exc)

        def sweeps() -> None:
            try:
                for _ in range(6):
                    ledger.run_expiry(batch=5)
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=requests, args=(s,)) for s in range(4)]
        threads += [threading.Thread(target=sweeps) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in threads)
        assert errors == []
        assert refused == []  # 1000 live points each: plenty

        ledger.run_expiry()
        with ledger.engine.connect() as conn:
            old = conn.execute(
                sa.select(sa.func.sum(lots.c.remaining)).where(lots.c.source_order_id.like("%-old"))
            ).scalar_one()
            lowest = conn.execute(sa.select(sa.func.min(lots.c.remaining))).scalar_one()
        assert old == 0 and lowest >= 0
        assert breakage(ledger) == 100 * len(members)  # each old lot once, whoever expired it
        assert ledger.audit() == []
    finally:
        ledger.engine.dispose()


# -- one journal transaction per batch, and the journal checks that make it cheap (0015) -----


def expire_entries(ledger: NodeLedger) -> Sequence[sa.Row]:
    with ledger.engine.connect() as conn:
        return conn.execute(
            sa.select(journal_transactions.c.id, journal_transactions.c.member_pk)
            .where(journal_transactions.c.kind == "EXPIRE")
            .order_by(journal_transactions.c.id)
        ).all()


def test_a_batch_writes_one_journal_transaction_for_all_its_members(ledger, clock):
    members = [f"m{i}" for i in range(9)]
    for m in members:
        enroll(ledger, m)
    for day in range(2):
        for i, m in enumerate(members):
            earn(ledger, m, f"{m}-d{day}", 20 + i)
        clock.advance(days=1)
    clock.now = START + TTL + timedelta(days=2)

    run = ledger.run_expiry(batch=5)  # 18 due lots: 4 batches

    assert (run.batches, run.lots_expired) == (4, 18)
    assert run.members == 5 + 4 + 5 + 4  # each batch's lots are of distinct members here
    entries = expire_entries(ledger)
    assert len(entries) == 4 and {e.member_pk for e in entries} == {None}
    with ledger.engine.connect() as conn:
        lines = conn.execute(
            sa.select(
                journal_lines.c.txn_id,
                journal_lines.c.account,
                sa.func.count(),
                sa.func.sum(journal_lines.c.points),
            )
            .where(journal_lines.c.txn_id.in_([e.id for e in entries]))
            .group_by(journal_lines.c.txn_id, journal_lines.c.account)
        ).all()
    per_txn: dict[int, int] = {}
    for txn, account, n, points in lines:
        per_txn[txn] = per_txn.get(txn, 0) + points
        assert n == 1 if account == "BREAKAGE" else account == "MEMBER_AVAILABLE"
    assert set(per_txn.values()) == {0}  # each balances
    for i, m in enumerate(members):
        history, _ = ledger.history(m, page_size=100)
        assert [e.available_delta for e in history if e.kind == "EXPIRE"] == [-(20 + i)] * 2
    assert ledger.audit() == []
    assert ledger.run_expiry(batch=5).batches == 0
    assert len(expire_entries(ledger)) == 4


def _new_txn(conn: sa.Connection, ledger: NodeLedger) -> int:
    return conn.execute(
        sa.insert(journal_transactions)
        .values(kind="EXPIRE", created_at=ledger.clock(), rate_version=1, rule_version="x")
        .returning(journal_transactions.c.id)
    ).scalar_one()


def _line(
    txn: int,
    points: int,
    account: str = "BREAKAGE",
    member_pk: int | None = None,
    lot_id: int | None = None,
) -> dict[str, object]:
    return dict(
        txn_id=txn,
        account=account,
        member_pk=member_pk,
        lot_id=lot_id,
        points=points,
        rate_version=1,
        rule_version="x",
    )


def _refs(ledger: NodeLedger) -> tuple[int, int]:
    with ledger.engine.connect() as conn:
        row = conn.execute(sa.select(lots.c.member_pk, lots.c.id)).first()
    assert row is not None
    return row.member_pk, row.id


@pytest.mark.parametrize("missing", ["txn_id", "member_pk", "lot_id"])
def test_a_journal_line_naming_a_missing_transaction_member_or_lot_is_refused(ledger, missing):
    """What journal_lines' foreign keys refused (dropped in node migration 0015 for their cost)
    is still refused, on both databases, and nothing of the statement is written."""
    enroll(ledger, "a")
    earn(ledger, "a", "o1", 100)
    member_pk, lot_id = _refs(ledger)
    before = count(ledger, journal_lines)
    with pytest.raises(sa.exc.IntegrityError), ledger.engine.begin() as conn:
        txn = _new_txn(conn, ledger)
        refs = {"txn_id": txn, "member_pk": member_pk, "lot_id": lot_id, missing: 10**9}
        conn.execute(
            sa.insert(journal_lines),
            [
                _line(refs["txn_id"], -5, "MEMBER_AVAILABLE", refs["member_pk"], refs["lot_id"]),
                _line(refs["txn_id"], 5),
            ],
        )
    assert count(ledger, journal_lines) == before
    assert ledger.audit() == []


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_transaction_written_in_several_statements_is_summed_at_commit_on_postgresql(ledger):
    """Balanced over two statements: committed, nothing left pending. A line appended later to a
    committed transaction that unbalances it: refused at commit, nothing written."""
    with ledger.engine.begin() as conn:
        txn = _new_txn(conn, ledger)
        conn.execute(sa.insert(journal_lines).values(**_line(txn, -7)))
        conn.execute(sa.insert(journal_lines).values(**_line(txn, 7)))
    with ledger.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM journal_unbalanced")).scalar() == 0
    with (
        pytest.raises(sa.exc.IntegrityError, match="does not balance"),
        ledger.engine.begin() as conn,
    ):
        conn.execute(sa.insert(journal_lines).values(**_line(txn, 3)))
    with (
        pytest.raises(sa.exc.IntegrityError, match="does not balance"),
        ledger.engine.begin() as conn,
    ):  # unbalanced by one statement, made whole by none
        conn.execute(sa.insert(journal_lines).values(**_line(txn, 3)))
        conn.execute(sa.insert(journal_lines).values(**_line(txn, -2)))
    assert count(ledger, journal_lines) == 2
    assert ledger.audit() == []


def test_the_audit_reports_a_line_whose_member_is_missing(ledger):
    """The audit checks what the foreign keys did, on what is stored (the database's own check
    is bypassed here as an insider would)."""
    enroll(ledger, "a")
    earn(ledger, "a", "o1", 100)
    with ledger.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("ALTER TABLE journal_lines DISABLE TRIGGER journal_lines_checked")
        else:
            conn.exec_driver_sql("DROP TRIGGER journal_lines_references")
        txn = _new_txn(conn, ledger)
        conn.execute(
            sa.insert(journal_lines),
            [_line(txn, -5), _line(txn, 5, "MEMBER_DEBT", member_pk=10**9)],
        )
    found = ledger.audit()
    assert len(found) == 1 and "refers to a missing transaction, member or lot" in found[0]


def test_migration_0015_goes_down_to_the_foreign_keys_and_up_again_keeping_the_journal(
    ledger, clock
):
    """Down to 0014 (foreign keys and the per-line balance trigger back, every line kept), the
    ledger still works there, and up to head again with the schema the code declares."""
    from alembic import command
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from merchant_node.ledger.migrate import alembic_config
    from merchant_node.ledger.schema import metadata

    def migrate(step: str, target: str) -> None:
        cfg = alembic_config()
        with ledger.engine.connect() as conn:
            cfg.attributes["connection"] = conn
            getattr(command, step)(cfg, target)
            conn.commit()

    for m in ("a", "b"):
        enroll(ledger, m)
        earn(ledger, m, f"{m}-1", 100)
    clock.now = START + TTL + timedelta(days=1)
    assert ledger.run_expiry().lots_expired == 2
    lines = count(ledger, journal_lines)

    migrate("downgrade", "0014")
    with ledger.engine.connect() as conn:
        fks = sa.inspect(conn).get_foreign_keys("journal_lines")
    assert {fk["constrained_columns"][0] for fk in fks} == {"txn_id", "member_pk", "lot_id"}
    assert count(ledger, journal_lines) == lines
    earn(ledger, "a", "a-2", 50)
    assert ledger.audit() == []

    migrate("upgrade", "head")
    with ledger.engine.connect() as conn:
        assert sa.inspect(conn).get_foreign_keys("journal_lines") == []
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    earn(ledger, "b", "b-2", 70)
    clock.now += TTL
    assert ledger.run_expiry().points_expired == 120
    assert count(ledger, journal_lines) == lines + 2 + 2 + 3
    assert ledger.audit() == []
