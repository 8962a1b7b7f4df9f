"""Issue 10, hole 1: anyone holding no key cannot fill the exchange's disk.

A request refused before its signature is proven leaves a bounded record in the audit log (its
digest, size, claimed signer and key, type, reason, peer), never its bytes; past a per-peer
rate the caller is refused RATE_LIMITED and only counted; past a daily cap per peer, counted
only. The tally per peer and day reports it. What a proven signer sends is still logged whole.
"""

from __future__ import annotations

import argparse
import hashlib
import os
from collections.abc import AsyncIterator

import grpc
import pytest_asyncio
import sqlalchemy as sa

from coalition.envelope.v1.envelope_pb2 import SignedEnvelope
from coalition.exchange.v1 import exchange_pb2 as xpb
from coalition.exchange.v1 import exchange_pb2_grpc
from coalition_cli import exchange_cmd
from coalition_kernel.envelope import EXCHANGE_ID, Signer
from coalition_kernel.errors import error_info_of
from coalition_kernel.keys import key_id
from exchange import audit, refusals
from exchange.runtime import ExchangeConfig
from exchange.schema import audit_log, inbound_requests, refusal_tally
from tests.exchange.conftest import Coalition, start_coalition

FORGED_BYTES = 3_900_000  # just under gRPC's 4 MiB default body limit, as in the report
GROWTH_BOUND = 1024 * 1024  # what 100 such envelopes may add to the database, all told
LIMITS = refusals.Limits(burst=20, per_second=0.5, daily_records=1000)


@pytest_asyncio.fixture
async def coalition(new_database, clock) -> AsyncIterator[Coalition]:  # type: ignore[no-untyped-def]
    async for running in start_coalition(new_database, clock, refusal_limits=LIMITS):
        yield running


def database_bytes(engine: sa.Engine) -> int:
    """The database's size as the engine sees it (SQLite: pages in use, WAL included)."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            return int(
                conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar()
            )
        pages = conn.execute(sa.text("PRAGMA page_count")).scalar()
        size = conn.execute(sa.text("PRAGMA page_size")).scalar()
        return int(pages) * int(size)


def forged(c: Coalition, payload: bytes) -> SignedEnvelope:
    """An envelope claiming to be tea's, with tea's real key id and a random signature."""
    return SignedEnvelope(
        payload=payload,
        payload_type=xpb.QuoteCommand.DESCRIPTOR.full_name,
        signer_id="tea",
        key_id=key_id(c["tea"].key.public_key()),
        signature=os.urandom(64),
    )


async def send(c: Coalition, envelope: SignedEnvelope) -> tuple[grpc.StatusCode, str]:
    async with grpc.aio.insecure_channel(c.exchange_target) as channel:
        stub = exchange_pb2_grpc.ExchangeServiceStub(channel)
        try:
            await stub.GetQuote(xpb.GetQuoteRequest(envelope=envelope), timeout=30)
        except grpc.aio.AioRpcError as err:
            info = error_info_of(err)
            return err.code(), info.reason if info else ""
    raise AssertionError("a forged envelope was accepted")


def inbound_count(c: Coalition) -> int:
    with c.exchange.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(inbound_requests)).scalar())


def tally(c: Coalition) -> list[sa.Row]:
    with c.exchange.engine.connect() as conn:
        return conn.execute(sa.select(refusal_tally)).all()


async def test_a_hundred_forged_39_mb_envelopes_grow_the_exchange_database_by_under_1_mib(
    coalition,
):
    c = coalition
    before = database_bytes(c.exchange.engine)
    requests_before = inbound_count(c)
    outcomes = []
    for _ in range(100):
        outcomes.append(await send(c, forged(c, os.urandom(FORGED_BYTES))))
    grown = database_bytes(c.exchange.engine) - before
    assert grown < GROWTH_BOUND, f"the database grew by {grown} bytes"
    # Refused for their size before any signature work; past the burst, rate-limited.
    assert set(outcomes) <= {
        (grpc.StatusCode.INVALID_ARGUMENT, "ENVELOPE_TOO_LARGE"),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "RATE_LIMITED"),
    }, outcomes
    assert (grpc.StatusCode.RESOURCE_EXHAUSTED, "RATE_LIMITED") in outcomes
    (row,) = tally(c)
    assert row.peer == "127.0.0.1"
    assert row.logged + row.counted_only + row.rate_limited == 100
    assert row.logged >= 20 and row.rate_limited >= 1
    assert row.bytes >= 100 * FORGED_BYTES  # reported, though not kept
    with c.exchange.engine.connect() as conn:
        assert audit.verify_chain(conn) == []
        kept = conn.execute(
            sa.select(audit_log.c.envelope).where(audit_log.c.peer_id == "unverified")
        ).scalars()
        records = [xpb.RefusalRecord.FromString(raw) for raw in kept]
    assert inbound_count(c) == requests_before  # nothing stored under the claimed id
    assert len(records) == row.logged
    assert all(r.envelope_size > FORGED_BYTES and r.claimed_signer_id == "tea" for r in records)
    assert {r.reason for r in records} == {"ENVELOPE_TOO_LARGE"}


async def test_a_forged_signature_is_kept_as_a_digest_and_the_genuine_signer_is_never_limited(
    coalition,
):
    c = coalition
    small = forged(c, xpb.QuoteCommand(issuer_id="noodles", points=1).SerializeToString())
    assert await send(c, small) == (grpc.StatusCode.UNAUTHENTICATED, "BAD_SIGNATURE")
    with c.exchange.engine.connect() as conn:
        (entry,) = [e for e in audit.read(conn) if e.peer_id == "unverified"]
    record = xpb.RefusalRecord.FromString(entry.envelope)
    raw = small.SerializeToString()
    assert record.envelope_sha256 == hashlib.sha256(raw).digest()
    assert (record.envelope_size, record.reason) == (len(raw), "BAD_SIGNATURE")
    assert (record.claimed_signer_id, record.payload_type) == ("tea", small.payload_type)
    assert record.peer.startswith("ipv4:127.0.0.1:")
    assert entry.outcome == "refused:BAD_SIGNATURE"
    # Exhaust the peer's bucket, then tea's genuine signed request from the same address passes:
    # only refusals before a proven signature spend tokens.
    for _ in range(int(LIMITS.burst) + 5):
        await send(c, small)
    assert await send(c, small) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "RATE_LIMITED")
    signer = Signer("tea", c["tea"].key, c.clock)
    genuine = signer.seal(
        xpb.QuoteCommand(issuer_id="noodles", points=10), audience=EXCHANGE_ID, request_id="q-1"
    )
    async with grpc.aio.insecure_channel(c.exchange_target) as channel:
        stub = exchange_pb2_grpc.ExchangeServiceStub(channel)
        answer = await stub.GetQuote(xpb.GetQuoteRequest(envelope=genuine), timeout=10)
    assert answer.envelope.signer_id == EXCHANGE_ID
    with c.exchange.engine.connect() as conn:
        whole = conn.execute(
            sa.select(audit_log.c.envelope).where(audit_log.c.peer_id == "tea")
        ).scalars()
        assert genuine.SerializeToString() in list(whole)  # a proven signer's bytes are kept


async def test_past_the_daily_cap_a_peer_s_refusals_are_only_counted(
    new_database, clock, tmp_path, capsys
):
    capped = refusals.Limits(burst=1000, per_second=1000, daily_records=5)
    async for c in start_coalition(new_database, clock, refusal_limits=capped):
        envelope = forged(c, b"\x0a\x00")
        for _ in range(12):
            assert await send(c, envelope) == (grpc.StatusCode.UNAUTHENTICATED, "BAD_SIGNATURE")
        (row,) = tally(c)
        assert (row.logged, row.counted_only, row.rate_limited) == (5, 7, 0)
        with c.exchange.engine.connect() as conn:
            assert len([e for e in audit.read(conn) if e.peer_id == "unverified"]) == 5
            assert refusals.report(conn, clock.now.date().isoformat())[0]["counted_only"] == 7
        # The operator's report: `coalition exchange audit refusals --config … --day …`.
        config = tmp_path / "exchange.toml"
        ExchangeConfig(database_url=c.exchange.engine.url.render_as_string(False)).save(config)
        day = clock.now.date().isoformat()
        assert exchange_cmd._refusals(argparse.Namespace(config=config, day=day)) == 0
        printed = capsys.readouterr().out
        assert f"on {day} (UTC): 1 peers" in printed
        assert "127.0.0.1" in printed and "counted only      7" in printed
        clock.advance(days=1)  # a new UTC day: a new allowance
        await send(c, envelope)
        assert sorted((r.day, r.logged) for r in tally(c))[-1] == (
            clock.now.date().isoformat(),
            1,
        )


def test_peers_are_keyed_by_address_without_port_and_ipv6_by_its_64():
    assert refusals.peer_key("ipv4:10.1.2.3:5555") == "10.1.2.3"
    assert refusals.peer_key("ipv6:[2001:db8:1:2:3:4:5:6]:443") == "2001:db8:1:2::/64"
    assert refusals.peer_key("unix:/tmp/s") == "unix:/tmp/s"
    assert len(refusals.peer_key("ipv4:" + "9" * 500 + ":1")) == 64


def test_the_token_bucket_refills_at_its_rate():
    now = [0.0]
    buckets = refusals.TokenBuckets(refusals.Limits(burst=2, per_second=1), clock=lambda: now[0])
    assert [buckets.take("a") for _ in range(3)] == [True, True, False]
    assert buckets.take("b")  # per peer
    now[0] += 1.0
    assert buckets.take("a") and not buckets.take("a")
