"""A ledger on PostgreSQL carries on after its pooled connections were dropped (a server restart,
an idle timeout), without a ping on every checkout (coalition_kernel/db.py): a connection found
lost before its commit was sent is replaced and the work run again; one lost while committing is
UNAVAILABLE (the outcome is unknown), never run twice."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from coalition_kernel import db
from coalition_kernel.errors import Unavailable
from coalition_kernel.group_commit import GroupCommit
from merchant_node.ledger.commands import Earn, Enroll, Redeem
from merchant_node.ledger.service import NodeLedger
from tests.conftest import FakeClock, open_test_ledger

pytestmark = pytest.mark.postgresql


@pytest.fixture
def pg_ledger(pg_url: str, clock: FakeClock) -> Iterator[NodeLedger]:
    ledger = open_test_ledger(pg_url, clock, pool_size=4)
    yield ledger
    ledger.engine.dispose()


def _drop_connections(admin: sa.Engine, engine: sa.Engine) -> int:
    """Terminates every server backend of the ledger's database (as a restart would)."""
    with admin.connect() as conn:
        return len(
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": engine.url.database},
            ).all()
        )


def _warm_pool(ledger: NodeLedger, member: str, n: int = 4) -> None:
    """Every pooled connection used just now (so none is old enough to be pinged)."""
    conns = [ledger.engine.connect() for _ in range(n)]
    for conn in conns:
        conn.execute(sa.text("SELECT 1"))
        conn.close()
    ledger.balance(member)


def test_busy_pool_dropped_recovers_without_an_error(
    pg_ledger: NodeLedger, pg_admin: sa.Engine
) -> None:
    pg_ledger.enroll(Enroll("e-1", "m-1"))
    pg_ledger.earn(Earn("r-1", "m-1", "o-1", 10_000, "POS", None))
    _warm_pool(pg_ledger, "m-1")
    assert _drop_connections(pg_admin, pg_ledger.engine) >= 1

    earned = pg_ledger.earn(Earn("r-2", "m-1", "o-2", 5_000, "POS", None))
    assert earned.points_earned == 50
    assert pg_ledger.redeem(Redeem("r-3", "m-1", "o-3", points=30)).points_redeemed == 30
    assert pg_ledger.balance("m-1").available_points == 100 + 50 - 30
    assert pg_ledger.audit() == []


def test_idle_pool_dropped_is_pinged_and_replaced(
    pg_ledger: NodeLedger, pg_admin: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg_ledger.enroll(Enroll("e-1", "m-1"))
    _warm_pool(pg_ledger, "m-1")
    _drop_connections(pg_admin, pg_ledger.engine)
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)  # every pooled one counts as idle
    # A plain connection (no retry around it) gets a live one: the ping found the dead ones.
    for _ in range(3):
        with pg_ledger.engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1


def test_group_committed_requests_recover(pg_ledger: NodeLedger, pg_admin: sa.Engine) -> None:
    pg_ledger.enroll(Enroll("e-1", "m-1"))
    group = GroupCommit(pg_ledger.engine, name="lost-connections")
    pg_ledger.use_group_commit(group)
    try:
        pg_ledger.earn(Earn("r-1", "m-1", "o-1", 10_000, "POS", None))
        _warm_pool(pg_ledger, "m-1")
        _drop_connections(pg_admin, pg_ledger.engine)
        assert pg_ledger.earn(Earn("r-2", "m-1", "o-2", 5_000, "POS", None)).points_earned == 50
    finally:
        pg_ledger.use_group_commit()
        group.close()
    assert pg_ledger.balance("m-1").available_points == 150


def test_lost_while_committing_is_unavailable_and_not_rerun(
    pg_ledger: NodeLedger, pg_admin: sa.Engine
) -> None:
    runs = []

    def work(conn: sa.Connection) -> None:
        runs.append(1)
        conn.execute(sa.text("SELECT 1"))
        _drop_connections(pg_admin, pg_ledger.engine)  # the COMMIT meets a dead connection

    with pytest.raises(Unavailable):
        db.run_in_transaction(pg_ledger.engine, work)
    assert runs == [1]


def test_lost_twice_is_unavailable(pg_ledger: NodeLedger, pg_admin: sa.Engine) -> None:
    runs = []

    def work(conn: sa.Connection) -> None:
        runs.append(1)
        _drop_connections(pg_admin, pg_ledger.engine)
        conn.execute(sa.text("SELECT 1"))

    with pytest.raises(Unavailable):
        db.run_in_transaction(pg_ledger.engine, work)
    assert runs == [1, 1]
