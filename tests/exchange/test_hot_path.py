"""The exchange's hot path (issue 12): keys and standing from memory, yet a rotation or a
suspension made through any exchange process is seen by the very next request of every other;
a redemption in a handful of transactions; audit entries chained per batch without a gap.

Two ExchangeApps over one database stand for two exchange processes: each has its own registry
cache, its own group committer and its own gRPC server."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import grpc
import pytest
import pytest_asyncio
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from grpc import StatusCode as Code

from coalition.envelope.v1.envelope_pb2 import SignedEnvelope
from coalition.exchange.v1 import exchange_pb2 as xpb
from coalition.exchange.v1 import exchange_pb2_grpc
from coalition_kernel.db import make_engine
from coalition_kernel.envelope import EXCHANGE_ID, Signer
from coalition_kernel.errors import error_info_of
from coalition_kernel.group_commit import GroupCommit
from exchange import audit
from exchange.migrate import upgrade
from exchange.runtime import ExchangeApp
from exchange.schema import audit_log
from tests.exchange.conftest import Coalition, raw_public

CLOSED_PORT = "127.0.0.1:1"


@pytest_asyncio.fixture
async def other(coalition: Coalition) -> AsyncIterator[str]:
    """A second exchange process over the coalition's exchange database; its target."""
    engine = make_engine(coalition.exchange.engine.url.render_as_string(hide_password=False))
    app = ExchangeApp(
        engine,
        Ed25519PrivateKey.generate(),
        coalition.operator_key.public_key(),
        clock=coalition.clock,
        recovery_interval=None,
    )
    port = await app.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await app.stop(1)
        engine.dispose()


async def quote_at(target: str, signer: Signer) -> xpb.QuoteReceipt:
    envelope = signer.seal(
        xpb.QuoteCommand(issuer_id="tea", points=100),
        audience=EXCHANGE_ID,
        request_id=f"hot-{uuid.uuid4().hex}",
    )
    async with grpc.aio.insecure_channel(target) as channel:
        stub = exchange_pb2_grpc.ExchangeServiceStub(channel)
        answer = await stub.GetQuote(xpb.GetQuoteRequest(envelope=envelope), timeout=10)
    return xpb.QuoteReceipt.FromString(answer.envelope.payload)


async def refused_at(target: str, signer: Signer) -> tuple[Code, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await quote_at(target, signer)
    info = error_info_of(caught.value)
    assert info is not None
    return caught.value.code(), info.reason


async def new_merchant(c: Coalition) -> tuple[str, Ed25519PrivateKey]:
    merchant_id = f"hot-{uuid.uuid4().hex[:8]}"
    key = Ed25519PrivateKey.generate()
    await c.operator.onboard(merchant_id, "Hot", raw_public(key), CLOSED_PORT)
    return merchant_id, key


async def test_a_key_revoked_through_one_exchange_is_refused_by_the_next_request_at_another(
    coalition: Coalition, other: str
) -> None:
    c = coalition
    merchant_id, old_key = await new_merchant(c)
    old = Signer(merchant_id, old_key, c.clock)
    assert (await quote_at(other, old)).points == 100  # the other process has it cached
    new_key = Ed25519PrivateKey.generate()
    await c.operator.rotate_key(
        merchant_id,
        raw_public(new_key),
        old_keys_valid_until=c.clock.now,
        new_key_valid_from=c.clock.now,
    )
    assert await refused_at(other, old) == (Code.UNAUTHENTICATED, "KEY_EXPIRED")
    assert (await quote_at(other, Signer(merchant_id, new_key, c.clock))).points == 100
    # And the process that rotated it agrees.
    assert await refused_at(c.exchange_target, old) == (Code.UNAUTHENTICATED, "KEY_EXPIRED")


async def test_a_key_added_through_one_exchange_is_accepted_by_the_next_request_at_another(
    coalition: Coalition, other: str
) -> None:
    c = coalition
    merchant_id, old_key = await new_merchant(c)
    assert (await quote_at(other, Signer(merchant_id, old_key, c.clock))).points == 100
    new_key = Ed25519PrivateKey.generate()
    await c.operator.rotate_key(merchant_id, raw_public(new_key), new_key_valid_from=c.clock.now)
    assert (await quote_at(other, Signer(merchant_id, new_key, c.clock))).points == 100


async def test_a_merchant_suspended_through_one_exchange_is_refused_by_the_next_request_at_another(
    coalition: Coalition, other: str
) -> None:
    c = coalition
    merchant_id, key = await new_merchant(c)
    signer = Signer(merchant_id, key, c.clock)
    assert (await quote_at(other, signer)).points == 100
    await c.operator.set_status(merchant_id, active=False)
    assert await refused_at(other, signer) == (Code.PERMISSION_DENIED, "MERCHANT_SUSPENDED")
    await c.operator.set_status(merchant_id, active=True)
    assert (await quote_at(other, signer)).points == 100
    # An issuer suspended by hand in SQL (no operator call) is refused just the same.
    with c.exchange.engine.begin() as conn:
        conn.execute(sa.text("UPDATE merchants SET status = 'suspended' WHERE merchant_id = 'tea'"))
    assert await refused_at(other, signer) == (Code.PERMISSION_DENIED, "MERCHANT_SUSPENDED")


@contextmanager
def counting(engine: sa.Engine) -> Iterator[Counter[str]]:
    """Counts the engine's transactions and its statements by verb and table."""
    seen: Counter[str] = Counter()

    def begin(conn):  # type: ignore[no-untyped-def]
        seen["transactions"] += 1

    def statement(conn, cursor, sql, params, context, executemany):  # type: ignore[no-untyped-def]
        words = sql.split()
        verb = words[0].upper()
        table = ""
        for marker in ("FROM", "INTO", "UPDATE"):
            if marker in (w.upper() for w in words):
                i = [w.upper() for w in words].index(marker)
                table = words[i + 1] if marker != "UPDATE" else words[1]
                break
        seen[f"{verb} {table}".strip()] += 1

    sa.event.listen(engine, "begin", begin)
    sa.event.listen(engine, "before_cursor_execute", statement)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "begin", begin)
        sa.event.remove(engine, "before_cursor_execute", statement)


async def redeem(c: Coalition, member: str, order: str) -> None:
    c.clock.advance(seconds=31)
    code = c["tea"].wallet_code(member, c.clock, "noodles", 10)
    auth = await c["noodles"].client.authorize_cross(
        "tea", member, order, points=10, consent_code=code
    )
    await c["noodles"].client.capture_cross(auth.authorization_id)


async def test_a_redemption_takes_four_exchange_transactions_and_reads_no_registry_table(
    coalition: Coalition,
) -> None:
    c = coalition
    await c["tea"].client.enroll_member("m1")
    await c["tea"].client.earn("m1", "seed", 100_000)
    await redeem(c, "m1", "warm-up")
    with counting(c.exchange.engine) as seen:
        await redeem(c, "m1", "counted")
    # Authorize: (verify, log, replay check, record it pending, log the hold request) then
    # (log the issuer's answer, record it authorized, store and log the answer); capture the same.
    assert seen["transactions"] == 4, seen
    # 30 statements on PostgreSQL (44 before savepoints were kept to the staged step's and the
    # audit entries written one INSERT per transaction): per transaction the registry
    # fingerprint, the chain's lock (PostgreSQL only) and head and its entries' INSERT; the
    # staged step's savepoint in each first transaction; the authorization's writes (a capture
    # claims it and marks it captured with an UPDATE each, no SELECT first) and its one read
    # (Authorize's retry check), the request's replay check and store.
    statements = sum(n for k, n in seen.items() if k not in ("transactions", "BEGIN"))
    postgresql = c.exchange.engine.dialect.name == "postgresql"
    assert statements == (30 if postgresql else 26), seen
    assert (seen["SAVEPOINT"], seen["RELEASE"], seen["INSERT audit_log"]) == (2, 2, 4), seen
    assert (seen["SELECT authorizations"], seen["UPDATE authorizations"]) == (1, 3), seen
    registry_reads = {k: n for k, n in seen.items() if k.split()[-1].strip('"') in REGISTRY}
    assert registry_reads == {}, seen
    with c.exchange.engine.connect() as conn:
        assert audit.verify_chain(conn) == []


REGISTRY = {"merchants", "merchant_keys", "merchant_rates"}


def test_an_entry_rolled_back_in_a_batch_leaves_no_gap_in_the_chain(new_database) -> None:  # type: ignore[no-untyped-def]
    """Within one group commit the entries are held and chained from the head at the commit;
    an item whose savepoint is rolled back after appending must leave no entry, and the next
    item no gap in the chain."""
    engine = make_engine(new_database("exchange"))
    upgrade(engine)
    committer = GroupCommit(engine, name="test-audit")
    gate = threading.Event()
    at = datetime(2026, 1, 5, tzinfo=UTC)

    def blocker(conn: sa.Connection) -> None:
        gate.wait(10)
        audit.append(conn, "in", "tea", b"first", "accepted", at)

    def good(name: str):  # type: ignore[no-untyped-def]
        return lambda conn: audit.append(conn, "in", "tea", name.encode(), "accepted", at)

    def bad(conn: sa.Connection) -> None:
        audit.append(conn, "in", "tea", b"vanishes", "accepted", at)
        raise RuntimeError("this item fails after appending")

    class Kept(Exception):
        pass

    def kept(conn: sa.Connection) -> None:
        audit.append(conn, "in", "tea", b"kept", "refused:X", at)
        raise Kept()

    try:
        first = committer.submit(blocker)  # holds the committer while the batch queues
        futures = [
            committer.submit(good("a")),
            committer.submit(bad),
            committer.submit(good("b")),
            committer.submit(kept, keep=(Kept,)),
            committer.submit(bad),
            committer.submit(good("c")),
        ]
        gate.set()
        first.result(10)
        outcomes = []
        for future in futures:
            try:
                outcomes.append(future.result(10))
            except (RuntimeError, Kept) as err:
                outcomes.append(type(err).__name__)
        assert outcomes == [None, "RuntimeError", None, "Kept", "RuntimeError", None]
        with engine.connect() as conn:
            assert audit.verify_chain(conn) == []
            entries = conn.execute(
                sa.select(audit_log.c.sequence, audit_log.c.envelope).order_by(audit_log.c.sequence)
            ).all()
            assert [tuple(e) for e in entries] == [
                (1, b"first"),
                (2, b"a"),
                (3, b"b"),
                (4, b"kept"),
                (5, b"c"),
            ]
        assert committer.stats.largest >= 6  # the six queued behind the first: one batch
    finally:
        committer.close()
        engine.dispose()


async def test_a_refusal_at_the_first_step_is_stored_and_replayed_and_writes_nothing_else(
    coalition: Coalition,
) -> None:
    """Refused in the request's first transaction (the member agreed to fewer points): no
    authorization row, the refusal stored under the request id and replayed to a retry."""
    c = coalition
    await c["tea"].client.enroll_member("m2")
    await c["tea"].client.earn("m2", "seed", 100_000)
    c.clock.advance(seconds=31)
    key = c["noodles"].key
    signer = Signer("noodles", key, c.clock)
    command = xpb.AuthorizeCommand(
        issuer_id="tea",
        member_id="m2",
        order_id="o-1",
        points=50,
        consent_code=c["tea"].wallet_code("m2", c.clock, "noodles", 10),
        consent_max_points=10,
    )
    envelope = signer.seal(command, audience=EXCHANGE_ID, request_id="refused-once")
    for _ in range(2):
        code, reason = await _authorize_refused(c.exchange_target, envelope)
        assert (code, reason) == (Code.PERMISSION_DENIED, "CONSENT_EXCEEDED")
    with c.exchange.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM authorizations")).scalar() == 0
        assert audit.verify_chain(conn) == []


async def _authorize_refused(target: str, envelope: SignedEnvelope) -> tuple[Code, str]:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = exchange_pb2_grpc.ExchangeServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Authorize(xpb.AuthorizeRequest(envelope=envelope), timeout=10)
    info = error_info_of(caught.value)
    assert info is not None
    return caught.value.code(), info.reason
