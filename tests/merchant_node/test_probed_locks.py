"""What the member's lock reads in the same statement (ledger/store.py) may be older than the
lock on PostgreSQL: the row a concurrent holder of the lock committed meanwhile is refused by its
unique key instead, with the same answer (HOLD_EXISTS, ORDER_ALREADY_REDEEMED)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from coalition_kernel.errors import AlreadyExists
from merchant_node.ledger.commands import Earn, Enroll, PlaceHold, Redeem
from merchant_node.ledger.schema import holds, members, redemptions
from merchant_node.ledger.service import NodeLedger
from tests.conftest import FakeClock, open_test_ledger

pytestmark = pytest.mark.postgresql


@pytest.fixture
def pg_ledger(pg_url: str, clock: FakeClock) -> Iterator[NodeLedger]:
    ledger = open_test_ledger(pg_url, clock, pool_size=4)
    ledger.enroll(Enroll("e-1", "m-1"))
    ledger.earn(Earn("r-1", "m-1", "o-1", 10_000, "POS", None))
    yield ledger
    ledger.engine.dispose()


def _while_locked(ledger: NodeLedger, call: Callable[[], Any], row: Callable[[int], Any]) -> Any:
    """Runs `call` while another transaction holds the member's lock, and commits `row(pk)`
    there once `call` waits for the lock: `call`'s probe was read before that row existed."""
    outcome: list[Any] = []
    with ledger.engine.connect() as conn, conn.begin():
        pk = conn.execute(
            sa.select(members.c.id).where(members.c.member_id == "m-1").with_for_update()
        ).scalar_one()
        thread = threading.Thread(target=lambda: outcome.append(_catch(call)))
        thread.start()
        thread.join(1.0)  # it is waiting for the lock now (or, on a slow machine, soon)
        conn.execute(row(pk))
    thread.join(30)
    return outcome[0]


def _catch(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except AlreadyExists as err:
        return err


def test_a_hold_placed_meanwhile_under_the_same_reference_is_hold_exists(
    pg_ledger: NodeLedger, clock: FakeClock
) -> None:
    now = clock.now
    answer = _while_locked(
        pg_ledger,
        lambda: pg_ledger.place_hold(
            PlaceHold("x:h-1", "h1", "m-1", 10, 600), require_consent=False
        ),
        lambda pk: sa.insert(holds).values(
            hold_ref="h1",
            member_pk=pk,
            points=5,
            status="voided",
            created_at=now,
            expires_at=now + timedelta(minutes=10),
            rate_version=1,
        ),
    )
    assert isinstance(answer, AlreadyExists) and answer.reason == "HOLD_EXISTS"
    assert pg_ledger.balance("m-1").held_points == 0


def test_an_order_redeemed_meanwhile_is_order_already_redeemed(
    pg_ledger: NodeLedger, clock: FakeClock
) -> None:
    now = clock.now
    answer = _while_locked(
        pg_ledger,
        lambda: pg_ledger.redeem(Redeem("r-2", "m-1", "o-2", points=10)),
        lambda pk: sa.insert(redemptions).values(
            order_id="o-2",
            member_pk=pk,
            points=1,
            value_fen=1,
            returned=0,
            created_at=now,
            rate_version=1,
        ),
    )
    assert isinstance(answer, AlreadyExists) and answer.reason == "ORDER_ALREADY_REDEEMED"
    assert pg_ledger.balance("m-1").available_points == 100
