"""Crash and retry safety: faults between every two steps of a cross redemption leave a state
that a retry or the recovery sweep finishes exactly once, and law 5 holds afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import grpc
import pytest
import pytest_asyncio
import sqlalchemy as sa

from coalition.envelope.v1.envelope_pb2 import SignedEnvelope
from coalition_kernel.db import run_in_transaction
from coalition_kernel.errors import Unavailable, error_info_of
from exchange import audit
from exchange.issuers import GrpcIssuerGateway
from exchange.runtime import ExchangeApp
from exchange.schema import authorizations, clearing_records
from merchant_node.ledger.schema import cross_redemptions, holds
from tests.exchange.conftest import Coalition, start_coalition


class FaultyIssuers(GrpcIssuerGateway):
    """The real gateway, with faults on demand: `before` fails a call without sending it (a crash
    before the step); `lose_answer` sends it, lets the issuer act, then loses the answer (a crash
    after the step, before the exchange recorded it)."""

    def __init__(self) -> None:
        super().__init__()
        self.before: set[str] = set()
        self.lose_answer: set[str] = set()

    async def call(
        self, endpoint: str, method: str, envelope: SignedEnvelope, timeout: float
    ) -> SignedEnvelope:
        if method in self.before:
            raise Unavailable("ISSUER_UNAVAILABLE", f"injected: {method} never sent")
        answer = await super().call(endpoint, method, envelope, timeout)
        if method in self.lose_answer:
            raise Unavailable("ISSUER_UNAVAILABLE", f"injected: {method} answer lost")
        return answer


@pytest_asyncio.fixture
async def faulty(new_database, clock) -> AsyncIterator[tuple[Coalition, FaultyIssuers]]:  # type: ignore[no-untyped-def]
    issuers = FaultyIssuers()
    async for running in start_coalition(new_database, clock, issuers=issuers):
        yield running, issuers


async def authorize(c: Coalition, order: str, points: int = 100, request_id: str | None = None):  # type: ignore[no-untyped-def]
    c.clock.advance(seconds=31)
    code = c["tea"].wallet_code("m1", c.clock, "noodles", points)
    return await c["noodles"].client.authorize_cross(
        "tea", "m1", order, points=points, consent_code=code, request_id=request_id
    )


async def setup_member(c: Coalition) -> None:
    await c["tea"].client.enroll_member("m1")
    await c["tea"].client.earn("m1", "seed", 100_000)


def rows(engine, table, *where):  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return conn.execute(sa.select(table).where(*where)).all()


def assert_three_way_match(c: Coalition) -> None:
    records = {
        r.authorization_id: (r.points, r.value_fen)
        for r in rows(c.exchange.engine, clearing_records)
    }
    posted = {
        h.hold_ref: h.points
        for h in rows(c["tea"].ledger.engine, holds, holds.c.status == "posted")
    }
    receivable = {
        r.authorization_id: (r.points, r.value_fen)
        for r in rows(
            c["noodles"].ledger.engine, cross_redemptions, cross_redemptions.c.status == "captured"
        )
    }
    assert receivable == records
    assert posted == {a: p for a, (p, _) in records.items()}
    assert c["tea"].ledger.audit() == []
    assert run_in_transaction(c.exchange.engine, audit.verify_chain) == []


async def expect_unavailable(call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error_info_of(err.value).reason == "ISSUER_UNAVAILABLE"


async def test_a_hold_whose_answer_was_lost_is_finished_by_the_acquirers_retry(faulty):
    c, issuers = faulty
    await setup_member(c)
    issuers.lose_answer.add("PlaceHold")
    await expect_unavailable(authorize(c, "o1", request_id="auth-1"))
    assert [h.status for h in rows(c["tea"].ledger.engine, holds)] == ["pending"]
    issuers.lose_answer.clear()
    # The POS retries with the same request id (a fresh code is not needed: the issuer replays).
    code_was_used = c["tea"].wallet_code("m1", c.clock, "noodles", 100)
    retried = await c["noodles"].client.authorize_cross(
        "tea", "m1", "o1", points=100, consent_code=code_was_used, request_id="auth-1"
    )
    assert len(rows(c["tea"].ledger.engine, holds)) == 1  # held once
    await c["noodles"].client.capture_cross(retried.authorization_id)
    assert_three_way_match(c)


async def test_the_recovery_sweep_releases_holds_of_authorizations_stuck_pending(faulty):
    c, issuers = faulty
    await setup_member(c)
    issuers.lose_answer.add("PlaceHold")
    await expect_unavailable(authorize(c, "o1"))
    issuers.lose_answer.clear()
    c.clock.advance(seconds=31)
    done = await c.exchange.redemptions.recover()
    assert done["failed"] == 1
    assert [h.status for h in rows(c["tea"].ledger.engine, holds)] == ["voided"]
    assert [a.status for a in rows(c.exchange.engine, authorizations)] == ["failed"]
    assert (await c["tea"].client.get_balance("m1")).available_points == 1000
    assert_three_way_match(c)


async def test_an_unreachable_issuer_gives_unavailable_and_holds_nothing(faulty):
    c, issuers = faulty
    await setup_member(c)
    issuers.before.add("PlaceHold")
    await expect_unavailable(authorize(c, "o1"))
    c.clock.advance(seconds=31)
    issuers.before.clear()
    await c.exchange.redemptions.recover()
    assert rows(c["tea"].ledger.engine, holds) == []
    assert [a.status for a in rows(c.exchange.engine, authorizations)] == ["failed"]


@pytest.mark.parametrize("fault", ["before", "lose_answer"])
async def test_a_capture_interrupted_at_the_issuer_is_finished_exactly_once(faulty, fault):
    c, issuers = faulty
    await setup_member(c)
    auth = await authorize(c, "o1")
    getattr(issuers, fault).add("PostHold")
    await expect_unavailable(
        c["noodles"].client.capture_cross(auth.authorization_id, request_id="cap-1")
    )
    getattr(issuers, fault).clear()
    assert rows(c.exchange.engine, clearing_records) == []
    # The exchange restarts (a new process over the same database) and its sweep finishes it.
    old = c.exchange
    restarted = ExchangeApp(
        old.engine,
        old.signer.private_key,
        c.operator_key.public_key(),
        clock=c.clock,
        recovery_interval=None,
    )
    c.clock.advance(seconds=31)
    assert (await restarted.redemptions.recover())["posted"] == 1
    assert (await restarted.redemptions.recover())["posted"] == 0
    await restarted.issuers.close()
    restarted.offload.shutdown()
    # The acquirer's retry of its capture gets the record and books its receivable, once.
    for _ in range(2):
        res = await c["noodles"].client.capture_cross(auth.authorization_id, request_id="cap-1")
        assert res.points == 100
    assert len(rows(c.exchange.engine, clearing_records)) == 1
    assert_three_way_match(c)


async def test_a_void_interrupted_at_the_issuer_is_finished_by_the_sweep(faulty):
    c, issuers = faulty
    await setup_member(c)
    auth = await authorize(c, "o1")
    issuers.lose_answer.add("VoidHold")
    await expect_unavailable(c["noodles"].client.void_cross(auth.authorization_id))
    issuers.lose_answer.clear()
    c.clock.advance(seconds=31)
    assert (await c.exchange.redemptions.recover())["voided"] == 1
    assert [a.status for a in rows(c.exchange.engine, authorizations)] == ["voided"]
    assert (await c["tea"].client.get_balance("m1")).available_points == 1000
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await c["noodles"].client.capture_cross(auth.authorization_id)
    assert error_info_of(err.value).reason == "AUTHORIZATION_VOIDED"


async def test_a_node_that_is_down_gives_unavailable_quickly(faulty):
    c, _ = faulty
    await setup_member(c)
    await c.operator.set_terms("tea", endpoint="127.0.0.1:1")  # nothing listens there
    import time

    started = time.monotonic()
    await expect_unavailable(authorize(c, "o1"))
    assert time.monotonic() - started < 5
    assert timedelta(seconds=0) <= timedelta(seconds=time.monotonic() - started)
