"""The audit log's hash chain catches any edit, removal or reordering of an entry."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from coalition_kernel.db import make_engine, run_in_transaction
from exchange import audit
from exchange.migrate import upgrade
from exchange.schema import audit_log

AT = datetime(2026, 1, 5, tzinfo=UTC)


@pytest.fixture
def engine(db_url):  # type: ignore[no-untyped-def]
    engine = make_engine(db_url)
    upgrade(engine)
    for i in range(5):
        run_in_transaction(
            engine, lambda c, i=i: audit.append(c, "in", "tea", f"msg{i}".encode(), "accepted", AT)
        )
    yield engine
    engine.dispose()


def tamper(engine, statement) -> None:  # type: ignore[no-untyped-def]
    """What an attacker with database access would do: get past the append-only trigger first."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER audit_log_append_only_update")
            conn.exec_driver_sql("DROP TRIGGER audit_log_append_only_delete")
        else:
            conn.exec_driver_sql("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        conn.execute(sa.text(statement) if isinstance(statement, str) else statement)


def test_an_untouched_chain_verifies(engine):
    assert run_in_transaction(engine, audit.verify_chain) == []
    assert run_in_transaction(engine, audit.head)[0] == 5


def test_the_log_refuses_edits(engine):
    with pytest.raises(sa.exc.DBAPIError), engine.begin() as conn:
        conn.execute(sa.update(audit_log).values(outcome="refused:X"))


@pytest.mark.parametrize(
    "statement,problem",
    [
        ("UPDATE audit_log SET outcome = 'refused:BAD' WHERE sequence = 3", "entry 3: its hash"),
        ("DELETE FROM audit_log WHERE sequence = 2", "entry 3: expected sequence 2"),
        ("UPDATE audit_log SET peer_id = 'noodles' WHERE sequence = 4", "entry 4: its hash"),
    ],
    ids=["edited outcome", "removed entry", "changed peer"],
)
def test_tampering_is_found(engine, statement, problem):
    tamper(engine, statement)
    problems = run_in_transaction(engine, audit.verify_chain)
    assert any(p.startswith(problem) for p in problems), problems


def test_a_rehashed_entry_still_breaks_the_link_to_the_next(engine):
    previous = run_in_transaction(
        engine,
        lambda c: c.execute(
            sa.select(audit_log.c.previous_hash).where(audit_log.c.sequence == 3)
        ).scalar_one(),
    )
    forged = audit.entry_hash(previous, 3, "in", "tea", "accepted", b"forged")
    tamper(
        engine,
        sa.update(audit_log)
        .where(audit_log.c.sequence == 3)
        .values(envelope=b"forged", entry_hash=forged),
    )
    problems = run_in_transaction(engine, audit.verify_chain)
    assert problems == ["entry 4: does not link to the entry before it"]


def test_a_transaction_writes_its_entries_in_one_insert_and_a_rolled_back_savepoint_drops_its_own(
    engine,
):
    """Entries are held until the commit and written together, chained from the head; those
    appended inside a savepoint that is rolled back are dropped with it, and a read in the same
    transaction sees what was appended before it."""
    inserts: list[int] = []

    def count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("INSERT INTO AUDIT_LOG"):
            inserts.append(1)

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        with engine.begin() as conn:
            audit.append(conn, "in", "tea", b"kept-1", "accepted", AT)
            with pytest.raises(RuntimeError), conn.begin_nested():
                audit.append(conn, "in", "tea", b"dropped", "accepted", AT)
                raise RuntimeError("undo this one")
            with conn.begin_nested():
                audit.append(conn, "out", "tea", b"kept-2", "answered", AT)
            audit.append(conn, "in", "noodles", b"kept-3", "accepted", AT)
        assert len(inserts) == 1
        with engine.begin() as conn:
            audit.append(conn, "in", "tea", b"kept-4", "accepted", AT)
            assert audit.head(conn)[0] == 9  # a read in the transaction writes what is held
            with pytest.raises(RuntimeError), conn.begin_nested():
                audit.append(conn, "in", "tea", b"dropped-too", "accepted", AT)
                assert audit.count(conn) == 10
                raise RuntimeError("undo the write and what is held")
            audit.append(conn, "in", "tea", b"kept-5", "accepted", AT)
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    assert run_in_transaction(engine, audit.verify_chain) == []
    entries = run_in_transaction(engine, lambda c: audit.read(c, after=5))
    assert [(e.sequence, e.envelope) for e in entries] == [
        (6, b"kept-1"),
        (7, b"kept-2"),
        (8, b"kept-3"),
        (9, b"kept-4"),
        (10, b"kept-5"),
    ]
