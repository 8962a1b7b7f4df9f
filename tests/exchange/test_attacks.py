"""A misbehaving party on the wire: forged, replayed, tampered, misaddressed and unauthorised
signed messages sent straight to the exchange's and the nodes' gRPC services.

Every attack must be refused with the right gRPC status and ErrorInfo reason, change no
business table (the exchange's registry, quotes, authorizations and clearing records; the
nodes' lots, holds, journal and consent uses) and, at the exchange, be written to the audit log
as refused. A last test drives a mixed workload through the POS API and checks that every
outcome a client sees is OK, a business refusal with a reason, UNAVAILABLE or DEADLINE_EXCEEDED.

One coalition serves the whole module (per database kind): each test works with its own
members, orders and, where it changes the registry, its own merchants.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta

import grpc
import pytest
import pytest_asyncio
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from google.protobuf.message import Message

from coalition.envelope.v1.envelope_pb2 import SignedEnvelope
from coalition.exchange.v1 import exchange_pb2 as xpb
from coalition.exchange.v1 import exchange_pb2_grpc
from coalition.issuer.v1 import issuer_pb2 as ipb
from coalition.issuer.v1 import issuer_pb2_grpc
from coalition.merchant.v1 import merchant_node_pb2 as pb
from coalition_kernel.envelope import EXCHANGE_ID, OPERATOR_ID, Signer
from coalition_kernel.errors import error_info_of
from coalition_kernel.keys import key_id
from exchange import audit
from exchange.redemption import Settings
from exchange.refusals import Limits as RefusalLimits
from exchange.schema import (
    authorizations,
    clearing_records,
    merchant_keys,
    merchant_rates,
    merchants,
    quotes,
)
from merchant_node.ledger.schema import (
    consent_uses,
    cross_redemptions,
    holds,
    journal_lines,
    journal_transactions,
    lots,
    members,
)
from tests.conftest import FakeClock, _fresh_pg_database
from tests.exchange.conftest import Coalition, raw_public, start_coalition

Code = grpc.StatusCode
EXCHANGE_TABLES = (
    authorizations,
    clearing_records,
    quotes,
    merchants,
    merchant_keys,
    merchant_rates,
)
NODE_TABLES = (holds, lots, journal_transactions, journal_lines, consent_uses, cross_redemptions)
CLOSED_PORT = "127.0.0.1:1"  # nothing listens there: an issuer that is down
UNPROVEN = {  # refusals before the signer is proven
    "WRONG_MESSAGE_TYPE",
    "SIGNER_NOT_ALLOWED",
    "UNKNOWN_SIGNER",
    "UNKNOWN_KEY",
    "KEY_NOT_YET_VALID",
    "KEY_EXPIRED",
    "BAD_SIGNATURE",
}


# -- one coalition per module and database kind ----------------------------------------------


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]
)
def module_databases(request, tmp_path_factory, pg_admin):  # type: ignore[no-untyped-def]
    """Like `new_database`, for the whole module: starting a coalition per test is too slow."""
    if request.param == "postgresql" and pg_admin is None:
        pytest.skip("PostgreSQL unreachable (set --postgres-url or COALITION_TEST_PG)")
    directory = tmp_path_factory.mktemp("attacks")
    made = []

    def make(name: str) -> str:
        if request.param == "sqlite":
            return f"sqlite:///{directory / f'{name}.db'}"
        database = _fresh_pg_database(pg_admin)
        made.append(database)
        return next(database)

    yield make
    for database in made:
        next(database, None)


@pytest_asyncio.fixture(scope="module")
async def coalition(module_databases) -> AsyncIterator[Coalition]:  # type: ignore[no-untyped-def]
    # Room for every unproven refusal this module's attacks cause (test_refusals.py tests the
    # rate limit itself).
    roomy = RefusalLimits(burst=10_000, per_second=1_000)
    async for running in start_coalition(
        module_databases, FakeClock(), Settings(issuer_timeout=3.0), refusal_limits=roomy
    ):
        yield running


# -- the state an attack must not change, and the log it must leave ---------------------------


def _dump(engine: sa.Engine, tables) -> dict[str, list[tuple]]:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return {
            t.name: sorted((tuple(row) for row in conn.execute(sa.select(t))), key=repr)
            for t in tables
        }


def business_state(c: Coalition) -> dict[str, list[tuple]]:
    state = {f"exchange.{k}": v for k, v in _dump(c.exchange.engine, EXCHANGE_TABLES).items()}
    for merchant_id, node in c.nodes.items():
        for name, rows in _dump(node.ledger.engine, NODE_TABLES).items():
            state[f"{merchant_id}.{name}"] = rows
    return state


class Watch:
    """The business tables and the audit log's head before an attack, to compare with after."""

    def __init__(self, c: Coalition) -> None:
        self.c = c
        self.before = business_state(c)
        with c.exchange.engine.connect() as conn:
            self.since = audit.head(conn)[0]

    def changes(self) -> dict[str, dict[str, list[tuple]]]:
        after = business_state(self.c)
        return {
            name: {
                "added": [r for r in after[name] if r not in self.before[name]],
                "removed": [r for r in self.before[name] if r not in after[name]],
            }
            for name in self.before
            if after[name] != self.before[name]
        }

    def assert_unchanged(self) -> None:
        assert self.changes() == {}

    def audit(self) -> list[audit.Entry]:
        with self.c.exchange.engine.connect() as conn:
            return audit.read(conn, after=self.since)

    def assert_refusal_logged(
        self, envelope: SignedEnvelope, reason: str, *, refusal_too: bool = True
    ) -> None:
        """The refused envelope is in the log, and so is its refusal: either on the entry of the
        envelope itself (refused on receipt) or on the answer sent back to its signer."""
        raw = envelope.SerializeToString()
        entries = self.audit()
        if reason in UNPROVEN:
            # Not filed under the id it claims, and not kept whole: a bounded record of it
            # (docs/protocol.md, Audit log).
            records = [
                xpb.RefusalRecord.FromString(e.envelope)
                for e in entries
                if e.direction == "in" and e.peer_id == "unverified"
            ]
            digest = hashlib.sha256(raw).digest()
            mine = [r for r in records if r.envelope_sha256 == digest]
            assert [(r.envelope_size, r.reason) for r in mine] == [(len(raw), reason)], records
            return
        received = [e for e in entries if e.direction == "in" and e.envelope == raw]
        assert received, entries
        if not refusal_too:
            return
        peer = envelope.signer_id
        outcomes = [
            e.outcome
            for e in entries
            if e.envelope == raw or (e.direction == "out" and e.peer_id == peer)
        ]
        assert f"refused:{reason}" in outcomes, outcomes


async def refusal(call: Awaitable[object]) -> tuple[grpc.StatusCode, str]:
    """The status and ErrorInfo reason of a call that must fail."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    info = error_info_of(caught.value)
    assert info is not None and info.reason, (caught.value.code(), caught.value.details())
    return caught.value.code(), info.reason


async def assert_attack_fails(
    c: Coalition,
    send: Callable[[], Awaitable[object]],
    envelope: SignedEnvelope | None,
    code: grpc.StatusCode,
    reason: str | set[str],
    *,
    refusal_logged: bool = True,
) -> str:
    """Sends one attack; asserts its refusal, that nothing changed and, for an `envelope` sent
    to the exchange, that it was logged as refused. Returns the reason given."""
    watch = Watch(c)
    got_code, got_reason = await refusal(send())
    reasons = {reason} if isinstance(reason, str) else reason
    assert got_code == code and got_reason in reasons, (got_code, got_reason)
    watch.assert_unchanged()
    if envelope is not None:
        watch.assert_refusal_logged(envelope, got_reason, refusal_too=refusal_logged)
    return got_reason


BUSINESS_REFUSALS = {
    Code.RESOURCE_EXHAUSTED,  # slow down (RATE_LIMITED, CONSENT_RATE_LIMITED)
    Code.INVALID_ARGUMENT,
    Code.NOT_FOUND,
    Code.ALREADY_EXISTS,
    Code.FAILED_PRECONDITION,
    Code.PERMISSION_DENIED,
    Code.UNAUTHENTICATED,
}


def classify(code: grpc.StatusCode | None, reason: str | None) -> str | None:
    """The class of an outcome, or None if a client cannot act on it."""
    if code is None:
        return "ok"
    if code in BUSINESS_REFUSALS:
        return "refusal" if reason else None
    if code == Code.UNAVAILABLE:
        return "transient"
    if code == Code.DEADLINE_EXCEEDED:
        return "ambiguous"
    return None


# -- acting as a party on the wire -----------------------------------------------------------


def signer_of(c: Coalition, merchant_id: str) -> Signer:
    return Signer(merchant_id, c[merchant_id].key, c.clock)


def seal(
    signer: Signer, message: Message, *, audience: str = EXCHANGE_ID, request_id: str = ""
) -> SignedEnvelope:
    return signer.seal(
        message, audience=audience, request_id=request_id or f"atk-{uuid.uuid4().hex}"
    )


def spec_signed_bytes(payload_type: str, payload: bytes) -> bytes:
    """What a signature covers, written from docs/protocol.md, not imported: a partner's view."""
    return b"COALITION-ENVELOPE-V1" + b"\x00" + payload_type.encode() + b"\x00" + payload


def resign(envelope: SignedEnvelope, payload: bytes, key: Ed25519PrivateKey) -> SignedEnvelope:
    """The envelope with another payload, validly signed by `key`."""
    return forge(
        envelope,
        payload=payload,
        signature=key.sign(spec_signed_bytes(envelope.payload_type, payload)),
    )


def forge(envelope: SignedEnvelope, **fields: object) -> SignedEnvelope:
    forged = SignedEnvelope()
    forged.CopyFrom(envelope)
    for name, value in fields.items():
        setattr(forged, name, value)
    return forged


async def to_exchange(c: Coalition, method: str, envelope: SignedEnvelope, *, timeout=10.0):  # type: ignore[no-untyped-def]
    async with grpc.aio.insecure_channel(c.exchange_target) as channel:
        stub = exchange_pb2_grpc.ExchangeServiceStub(channel)
        request = getattr(xpb, f"{method}Request")(envelope=envelope)
        return await getattr(stub, method)(request, timeout=timeout)


async def to_operator_service(c: Coalition, method: str, envelope: SignedEnvelope):  # type: ignore[no-untyped-def]
    async with grpc.aio.insecure_channel(c.exchange_target) as channel:
        stub = exchange_pb2_grpc.OperatorServiceStub(channel)
        request = getattr(xpb, f"{method}Request")(envelope=envelope)
        return await getattr(stub, method)(request, timeout=10)


async def to_issuer(c: Coalition, issuer_id: str, method: str, envelope: SignedEnvelope):  # type: ignore[no-untyped-def]
    async with grpc.aio.insecure_channel(c[issuer_id].target) as channel:
        stub = issuer_pb2_grpc.IssuerServiceStub(channel)
        request = getattr(ipb, f"{method}Request")(envelope=envelope)
        return await getattr(stub, method)(request, timeout=10)


async def member_with_points(c: Coalition, at: str = "tea", fen: int = 100_000) -> str:
    member_id = f"m-{uuid.uuid4().hex[:12]}"
    await c[at].client.enroll_member(member_id)
    await c[at].client.earn(member_id, f"seed-{member_id}", fen)  # 1 point per yuan
    return member_id


def fresh_code(
    c: Coalition, member_id: str, at: str = "tea", acquirer: str = "noodles", points: int = 100
) -> str:
    """The member's next one-time code for "up to `points` at `acquirer`" (a new 30-second
    step, so never one already spent)."""
    c.clock.advance(seconds=31)
    return c[at].wallet_code(member_id, c.clock, acquirer, points)


def wrong_code(
    c: Coalition, member_id: str, at: str = "tea", acquirer: str = "noodles", points: int = 100
) -> str:
    """A well-formed code the issuer accepts at no step around now."""
    valid = {
        c[at].wallet_code(
            member_id, FakeClock(c.clock.now + timedelta(seconds=s)), acquirer, points
        )
        for s in (-30, 0, 30)
    }
    return next(code for code in (f"{n:06d}" for n in range(10)) if code not in valid)


def authorize_command(
    member_id: str, code: str, *, issuer: str = "tea", points: int = 100
) -> xpb.AuthorizeCommand:
    return xpb.AuthorizeCommand(
        issuer_id=issuer,
        member_id=member_id,
        order_id=f"o-{uuid.uuid4().hex[:12]}",
        points=points,
        consent_code=code,
    )


async def new_merchant(c: Coalition, prefix: str) -> tuple[str, Ed25519PrivateKey]:
    """A merchant of its own (no node behind it: it only signs), to change the registry of."""
    merchant_id = f"{prefix}-{uuid.uuid4().hex[:8]}"
    key = Ed25519PrivateKey.generate()
    await c.operator.onboard(merchant_id, prefix.title(), raw_public(key), CLOSED_PORT)
    return merchant_id, key


def quote_command(issuer: str = "tea", points: int = 100) -> xpb.QuoteCommand:
    return xpb.QuoteCommand(issuer_id=issuer, points=points)


def holds_of(c: Coalition, member_id: str, at: str = "tea") -> list[tuple[str, int, str]]:
    with c[at].ledger.engine.connect() as conn:
        return [
            (h.hold_ref, h.points, h.status)
            for h in conn.execute(
                sa.select(holds)
                .join(members, members.c.id == holds.c.member_pk)
                .where(members.c.member_id == member_id)
            )
        ]


def authorizations_of(c: Coalition, member_id: str) -> list[tuple[str, str, int]]:
    with c.exchange.engine.connect() as conn:
        return [
            (a.authorization_id, a.status, a.points)
            for a in conn.execute(
                sa.select(authorizations).where(authorizations.c.member_id == member_id)
            )
        ]


# -- forged, unknown, revoked and not-yet-valid keys -----------------------------------------


async def test_a_forged_signature_is_refused_and_changes_nothing(coalition):
    c = coalition
    member = await member_with_points(c)
    code = fresh_code(c, member)
    genuine = seal(signer_of(c, "noodles"), authorize_command(member, code))
    random_bytes = forge(genuine, signature=uuid.uuid4().bytes * 4)
    other_key = Ed25519PrivateKey.generate()
    by_another_key = resign(genuine, genuine.payload, other_key)
    no_signature = forge(genuine, signature=b"")
    for forged in (random_bytes, by_another_key, no_signature):
        await assert_attack_fails(
            c,
            lambda f=forged: to_exchange(c, "Authorize", f),
            forged,
            Code.UNAUTHENTICATED,
            "BAD_SIGNATURE",
        )
    # The control: the genuine envelope, same code, is accepted (the code was never spent).
    await to_exchange(c, "Authorize", genuine)
    assert [h[1:] for h in holds_of(c, member)] == [(100, "pending")]


async def test_a_key_id_the_registry_does_not_know_is_refused(coalition):
    c = coalition
    member = await member_with_points(c)
    stranger = Signer("noodles", Ed25519PrivateKey.generate(), c.clock)
    envelope = seal(stranger, authorize_command(member, fresh_code(c, member)))
    await assert_attack_fails(
        c,
        lambda: to_exchange(c, "Authorize", envelope),
        envelope,
        Code.UNAUTHENTICATED,
        "UNKNOWN_KEY",
    )


async def test_a_revoked_key_is_refused(coalition):
    c = coalition
    merchant_id, old_key = await new_merchant(c, "revoked")
    signed_before = seal(Signer(merchant_id, old_key, c.clock), quote_command())
    await to_exchange(c, "GetQuote", signed_before)
    new_key = Ed25519PrivateKey.generate()
    await c.operator.rotate_key(merchant_id, raw_public(new_key), old_keys_valid_until=c.clock.now)
    signed_after = seal(Signer(merchant_id, old_key, c.clock), quote_command())
    # A new message with the old key, or one signed while the key was valid, sent again.
    for envelope in (signed_after, signed_before):
        await assert_attack_fails(
            c,
            lambda e=envelope: to_exchange(c, "GetQuote", e),
            envelope,
            Code.UNAUTHENTICATED,
            "KEY_EXPIRED",
        )
    # The control: the new key is accepted.
    await to_exchange(c, "GetQuote", seal(Signer(merchant_id, new_key, c.clock), quote_command()))


async def test_a_key_before_its_validity_starts_is_refused(coalition):
    c = coalition
    merchant_id, old_key = await new_merchant(c, "early")
    new_key = Ed25519PrivateKey.generate()
    starts = c.clock.now + timedelta(minutes=10)
    await c.operator.rotate_key(
        merchant_id, raw_public(new_key), old_keys_valid_until=starts, new_key_valid_from=starts
    )
    envelope = seal(Signer(merchant_id, new_key, c.clock), quote_command())
    await assert_attack_fails(
        c,
        lambda: to_exchange(c, "GetQuote", envelope),
        envelope,
        Code.UNAUTHENTICATED,
        "KEY_NOT_YET_VALID",
    )
    # The controls: the old key is still good now, and the new one once its window opens.
    await to_exchange(c, "GetQuote", seal(Signer(merchant_id, old_key, c.clock), quote_command()))
    c.clock.advance(minutes=10, seconds=1)
    await to_exchange(c, "GetQuote", seal(Signer(merchant_id, new_key, c.clock), quote_command()))


async def test_a_tampered_payload_is_refused(coalition):
    c = coalition
    member = await member_with_points(c)
    genuine = seal(signer_of(c, "noodles"), authorize_command(member, fresh_code(c, member)))
    payload = genuine.payload
    tampered = []
    for i in (0, len(payload) // 2, len(payload) - 1):
        flipped = bytearray(payload)
        flipped[i] ^= 0x01
        tampered.append(forge(genuine, payload=bytes(flipped)))
    more_points = xpb.AuthorizeCommand.FromString(payload)
    more_points.points = 900  # the same header, a bigger redemption
    tampered.append(forge(genuine, payload=more_points.SerializeToString()))
    for envelope in tampered:
        await assert_attack_fails(
            c,
            lambda e=envelope: to_exchange(c, "Authorize", e),
            envelope,
            Code.UNAUTHENTICATED,
            "BAD_SIGNATURE",
        )


# -- replays and request ids -----------------------------------------------------------------


async def test_a_replay_inside_the_window_gets_the_first_answer_and_acts_once(coalition):
    c = coalition
    member = await member_with_points(c)
    envelope = seal(signer_of(c, "noodles"), authorize_command(member, fresh_code(c, member)))
    first = await to_exchange(c, "Authorize", envelope)
    c.clock.advance(seconds=60)  # still inside the ±5 minute window
    watch = Watch(c)
    second = await to_exchange(c, "Authorize", envelope)
    assert second.SerializeToString() == first.SerializeToString()
    watch.assert_unchanged()
    assert [a[1:] for a in authorizations_of(c, member)] == [("authorized", 100)]
    assert [h[1:] for h in holds_of(c, member)] == [(100, "pending")]
    balance = await c["tea"].client.get_balance(member)
    assert (balance.available_points, balance.held_points) == (900, 100)


async def test_concurrent_copies_of_one_request_act_once(coalition):
    c = coalition
    member = await member_with_points(c)
    envelope = seal(signer_of(c, "noodles"), authorize_command(member, fresh_code(c, member)))
    answers = await asyncio.gather(*(to_exchange(c, "Authorize", envelope) for _ in range(4)))
    assert len({a.SerializeToString() for a in answers}) == 1
    assert [a[1:] for a in authorizations_of(c, member)] == [("authorized", 100)]
    assert [h[1:] for h in holds_of(c, member)] == [(100, "pending")]


async def test_a_replay_outside_the_window_is_refused_as_stale(coalition):
    c = coalition
    member = await member_with_points(c)
    envelope = seal(signer_of(c, "noodles"), authorize_command(member, fresh_code(c, member)))
    await to_exchange(c, "Authorize", envelope)
    c.clock.advance(minutes=5, seconds=1)
    await assert_attack_fails(
        c,
        lambda: to_exchange(c, "Authorize", envelope),
        envelope,
        Code.UNAUTHENTICATED,
        "STALE_MESSAGE",
    )
    # Never-seen messages dated outside the window are refused just the same.
    for skew in (timedelta(minutes=-6), timedelta(minutes=6)):
        at = c.clock.now + skew
        dated = Signer("noodles", c["noodles"].key, lambda at=at: at)
        stale = seal(dated, authorize_command(member, fresh_code(c, member)))
        await assert_attack_fails(
            c,
            lambda e=stale: to_exchange(c, "Authorize", e),
            stale,
            Code.UNAUTHENTICATED,
            "STALE_MESSAGE",
        )


async def test_the_same_request_id_with_a_different_body_is_refused(coalition):
    c = coalition
    member = await member_with_points(c)
    noodles = signer_of(c, "noodles")
    request_id = f"atk-{uuid.uuid4().hex}"
    first = authorize_command(member, fresh_code(c, member))
    await to_exchange(c, "Authorize", seal(noodles, first, request_id=request_id))
    bigger = xpb.AuthorizeCommand()
    bigger.CopyFrom(first)
    bigger.points = 200
    other_order = xpb.AuthorizeCommand()
    other_order.CopyFrom(first)
    other_order.order_id = "another-order"
    for body in (bigger, other_order):
        envelope = seal(noodles, body, request_id=request_id)
        await assert_attack_fails(
            c,
            lambda e=envelope: to_exchange(c, "Authorize", e),
            envelope,
            Code.ALREADY_EXISTS,
            "REQUEST_ID_REUSED",
            refusal_logged=False,  # see test_a_refusal_after_verification_is_audited_as_refused
        )
    # The same id on another method is another body too.
    (auth_id, _, _) = authorizations_of(c, member)[0]
    capture = seal(noodles, xpb.CaptureCommand(authorization_id=auth_id), request_id=request_id)
    await assert_attack_fails(
        c,
        lambda: to_exchange(c, "Capture", capture),
        capture,
        Code.ALREADY_EXISTS,
        "REQUEST_ID_REUSED",
        refusal_logged=False,
    )


@pytest.mark.parametrize("refused_as", ["REQUEST_ID_REUSED", "CONSENT_REQUIRED"])
async def test_a_refusal_after_verification_is_audited_as_refused(coalition, refused_as):
    c = coalition
    member = await member_with_points(c)
    noodles = signer_of(c, "noodles")
    if refused_as == "REQUEST_ID_REUSED":
        request_id = f"atk-{uuid.uuid4().hex}"
        first = authorize_command(member, fresh_code(c, member))
        await to_exchange(c, "Authorize", seal(noodles, first, request_id=request_id))
        first.points = 200
        envelope = seal(noodles, first, request_id=request_id)
        code = Code.ALREADY_EXISTS
    else:
        envelope = seal(noodles, authorize_command(member, ""))
        code = Code.INVALID_ARGUMENT
    await assert_attack_fails(
        c, lambda: to_exchange(c, "Authorize", envelope), envelope, code, refused_as
    )


# -- misaddressed and mislabelled messages ---------------------------------------------------


async def test_a_message_for_another_audience_is_refused(coalition):
    c = coalition
    member = await member_with_points(c)
    for audience in ("noodles", "tea", ""):
        envelope = seal(
            signer_of(c, "noodles"),
            authorize_command(member, fresh_code(c, member)),
            audience=audience,
        )
        await assert_attack_fails(
            c,
            lambda e=envelope: to_exchange(c, "Authorize", e),
            envelope,
            Code.PERMISSION_DENIED,
            "WRONG_AUDIENCE",
        )


async def test_a_message_of_one_type_is_never_taken_for_another(coalition):
    c = coalition
    member = await member_with_points(c)
    noodles = signer_of(c, "noodles")
    auth = await to_exchange(
        c, "Authorize", seal(noodles, authorize_command(member, fresh_code(c, member)))
    )
    auth_id = xpb.AuthorizeReceipt.FromString(auth.envelope.payload).authorization_id
    # A validly signed capture, sent where an authorization is expected.
    capture = seal(noodles, xpb.CaptureCommand(authorization_id=auth_id))
    await assert_attack_fails(
        c,
        lambda: to_exchange(c, "Authorize", capture),
        capture,
        Code.UNAUTHENTICATED,
        "WRONG_MESSAGE_TYPE",
    )
    # An AuthorizeCommand whose bytes also parse as a capture of that authorization (field 2
    # is issuer_id in one, authorization_id in the other), relabelled as a CaptureCommand.
    lookalike = seal(noodles, xpb.AuthorizeCommand(issuer_id=auth_id, member_id=member))
    assert xpb.CaptureCommand.FromString(lookalike.payload).authorization_id == auth_id
    relabelled = forge(lookalike, payload_type=xpb.CaptureCommand.DESCRIPTOR.full_name)
    for method, envelope in (("Capture", relabelled), ("Authorize", relabelled)):
        await assert_attack_fails(
            c,
            lambda m=method, e=envelope: to_exchange(c, m, e),
            envelope,
            Code.UNAUTHENTICATED,
            {"BAD_SIGNATURE", "WRONG_MESSAGE_TYPE"},
        )
    # The lookalike captured nothing.
    assert [a[1] for a in authorizations_of(c, member)] == ["authorized"]
    # No type at all.
    untyped = forge(capture, payload_type="")
    await assert_attack_fails(
        c,
        lambda: to_exchange(c, "Capture", untyped),
        untyped,
        Code.UNAUTHENTICATED,
        "WRONG_MESSAGE_TYPE",
    )


# -- one merchant acting as another ----------------------------------------------------------


async def test_noodles_cannot_sign_as_salon(coalition):
    c = coalition
    member = await member_with_points(c)
    noodles = signer_of(c, "noodles")
    salon_key_id = key_id(c["salon"].key.public_key())
    # noodles' key and key id, under salon's name (header and envelope both say salon).
    as_salon = Signer("salon", c["noodles"].key, c.clock)
    own_key_id = seal(as_salon, authorize_command(member, fresh_code(c, member)))
    # Salon's key id, noodles' signature.
    with_salons_key_id = forge(own_key_id, key_id=salon_key_id)
    # Signed by noodles as noodles, but the header claims salon sent it. (The exchange gets
    # past the signature to refuse it: `spec_signed_bytes` are the bytes it checks.)
    genuine = seal(noodles, authorize_command(member, fresh_code(c, member)))
    inner = xpb.AuthorizeCommand.FromString(genuine.payload)
    inner.header.sender_id = "salon"
    sender_mismatch = resign(genuine, inner.SerializeToString(), c["noodles"].key)
    for envelope, reason in (
        (own_key_id, "UNKNOWN_KEY"),
        (with_salons_key_id, "BAD_SIGNATURE"),
        (sender_mismatch, "SENDER_MISMATCH"),
    ):
        await assert_attack_fails(
            c,
            lambda e=envelope: to_exchange(c, "Authorize", e),
            envelope,
            Code.UNAUTHENTICATED,
            reason,
        )


async def test_noodles_cannot_capture_void_or_borrow_what_is_salons(coalition):
    c = coalition
    member = await member_with_points(c)
    auth = await c["salon"].client.authorize_cross(
        "tea",
        member,
        f"cut-{member}",
        points=100,
        consent_code=fresh_code(c, member, acquirer="salon"),
    )
    noodles = signer_of(c, "noodles")
    for method, command in (
        ("Capture", xpb.CaptureCommand(authorization_id=auth.authorization_id)),
        ("Void", xpb.VoidCommand(authorization_id=auth.authorization_id)),
    ):
        envelope = seal(noodles, command)
        await assert_attack_fails(
            c,
            lambda m=method, e=envelope: to_exchange(c, m, e),
            envelope,
            Code.PERMISSION_DENIED,
            "NOT_YOUR_AUTHORIZATION",
        )
    # Salon's quote is salon's price: noodles cannot authorize against it.
    quote = await c["salon"].client.quote_cross("tea", points=50)
    borrowed = authorize_command(member, fresh_code(c, member))
    borrowed.quote_id = quote.quote_id
    envelope = seal(noodles, borrowed)
    await assert_attack_fails(
        c,
        lambda: to_exchange(c, "Authorize", envelope),
        envelope,
        Code.NOT_FOUND,
        "QUOTE_NOT_FOUND",
    )
    # The control: salon itself captures it.
    captured = await c["salon"].client.capture_cross(auth.authorization_id)
    assert (captured.issuer_id, captured.points) == ("tea", 100)


# -- the member's consent --------------------------------------------------------------------


async def test_a_redemption_without_a_consent_code_is_refused(coalition):
    c = coalition
    member = await member_with_points(c)
    envelope = seal(signer_of(c, "noodles"), authorize_command(member, ""))
    watch = Watch(c)
    assert await refusal(to_exchange(c, "Authorize", envelope)) == (
        Code.INVALID_ARGUMENT,
        "CONSENT_REQUIRED",
    )
    watch.assert_unchanged()
    # The envelope received is in the log (its refusal is not: see
    # test_a_refusal_after_verification_is_audited_as_refused).
    raw = envelope.SerializeToString()
    assert any(e.direction == "in" and e.envelope == raw for e in watch.audit())
    # Through the POS API: the same refusal.
    watch = Watch(c)
    assert await refusal(
        c["noodles"].client.authorize_cross("tea", member, "o-no-code", points=100)
    ) == (Code.INVALID_ARGUMENT, "CONSENT_REQUIRED")
    watch.assert_unchanged()


def assert_only_a_failed_authorization(watch: Watch, reason: str) -> None:
    """What a refused hold leaves: the exchange's record of the failed attempt, nothing else."""
    changes = watch.changes()
    assert set(changes) == {"exchange.authorizations"}, changes
    (added,) = changes["exchange.authorizations"]["added"]
    assert changes["exchange.authorizations"]["removed"] == []
    row = dict(zip(authorizations.c.keys(), added, strict=True))
    assert (row["status"], row["failure_reason"]) == ("failed", reason)


async def test_a_wrong_consent_code_is_refused_by_the_issuer(coalition):
    c = coalition
    member, other = await member_with_points(c), await member_with_points(c)
    c.clock.advance(seconds=31)
    for code in (wrong_code(c, member), c["tea"].wallet_code(other, c.clock, "noodles", 100)):
        envelope = seal(signer_of(c, "noodles"), authorize_command(member, code))
        watch = Watch(c)
        assert await refusal(to_exchange(c, "Authorize", envelope)) == (
            Code.PERMISSION_DENIED,
            "CONSENT_INVALID",
        )
        assert_only_a_failed_authorization(watch, "CONSENT_INVALID")
        watch.assert_refusal_logged(envelope, "CONSENT_INVALID")
    assert holds_of(c, member) == []


async def test_a_consent_code_already_used_is_refused(coalition):
    c = coalition
    member = await member_with_points(c)
    code = fresh_code(c, member)
    await c["noodles"].client.authorize_cross("tea", member, "o-1", points=100, consent_code=code)
    # The same merchant again; or one it leaked the code to, for which it was never valid (the
    # code is bound to noodles).
    for acquirer, reason in (("noodles", "CONSENT_REUSED"), ("salon", "CONSENT_INVALID")):
        envelope = seal(signer_of(c, acquirer), authorize_command(member, code))
        watch = Watch(c)
        assert await refusal(to_exchange(c, "Authorize", envelope)) == (
            Code.PERMISSION_DENIED,
            reason,
        )
        assert_only_a_failed_authorization(watch, reason)
        watch.assert_refusal_logged(envelope, reason)
    assert [h[1:] for h in holds_of(c, member)] == [(100, "pending")]


# -- suspended merchants ---------------------------------------------------------------------


async def test_a_suspended_acquirer_is_refused(coalition):
    c = coalition
    member = await member_with_points(c)
    merchant_id, key = await new_merchant(c, "suspended")
    signer = Signer(merchant_id, key, c.clock)
    code = fresh_code(c, member, acquirer=merchant_id)
    answer = await to_exchange(c, "Authorize", seal(signer, authorize_command(member, code)))
    auth_id = xpb.AuthorizeReceipt.FromString(answer.envelope.payload).authorization_id
    await c.operator.set_status(merchant_id, active=False)
    for method, command in (
        ("Authorize", authorize_command(member, fresh_code(c, member, acquirer=merchant_id))),
        ("GetQuote", quote_command()),
        ("Capture", xpb.CaptureCommand(authorization_id=auth_id)),
        ("Void", xpb.VoidCommand(authorization_id=auth_id)),
    ):
        envelope = seal(signer, command)
        await assert_attack_fails(
            c,
            lambda m=method, e=envelope: to_exchange(c, m, e),
            envelope,
            Code.PERMISSION_DENIED,
            "MERCHANT_SUSPENDED",
        )
    # Its standing is told only to a caller who proves to be it.
    forged = forge(seal(signer, quote_command()), signature=bytes(64))
    await assert_attack_fails(
        c,
        lambda: to_exchange(c, "GetQuote", forged),
        forged,
        Code.UNAUTHENTICATED,
        "BAD_SIGNATURE",
    )
    # The control: reinstated, it may capture its sale.
    await c.operator.set_status(merchant_id, active=True)
    await to_exchange(c, "Capture", seal(signer, xpb.CaptureCommand(authorization_id=auth_id)))
    assert [h[1:] for h in holds_of(c, member)] == [(100, "posted")]


async def test_a_suspended_issuers_points_cannot_be_spent(coalition):
    c = coalition
    member = await member_with_points(c, at="salon")
    await c.operator.set_status("salon", active=False)
    try:
        noodles = signer_of(c, "noodles")
        for method, command in (
            (
                "Authorize",
                authorize_command(member, fresh_code(c, member, "salon"), issuer="salon"),
            ),
            ("GetQuote", quote_command("salon")),
        ):
            envelope = seal(noodles, command)
            await assert_attack_fails(
                c,
                lambda m=method, e=envelope: to_exchange(c, m, e),
                envelope,
                Code.PERMISSION_DENIED,
                "MERCHANT_SUSPENDED",
            )
    finally:
        await c.operator.set_status("salon", active=True)


# -- calls only the exchange or the operator may make ----------------------------------------


async def test_only_the_exchange_may_place_post_or_void_a_hold_at_an_issuer(coalition):
    c = coalition
    member = await member_with_points(c)
    noodles = signer_of(c, "noodles")
    place = ipb.PlaceHoldCommand(
        hold_id=f"h-{uuid.uuid4().hex}",
        member_id=member,
        points=500,
        consent_code=fresh_code(c, member),
        acquirer_id="noodles",
        ttl_seconds=900,
    )
    direct = seal(noodles, place, audience="tea")
    exchange_key_id = key_id(c.exchange.public_key)
    claims_exchange = seal(Signer(EXCHANGE_ID, c["noodles"].key, c.clock), place, audience="tea")
    with_exchange_key_id = forge(claims_exchange, key_id=exchange_key_id)
    for envelope, code, reason in (
        (direct, Code.PERMISSION_DENIED, "SIGNER_NOT_ALLOWED"),
        (claims_exchange, Code.UNAUTHENTICATED, "UNKNOWN_KEY"),
        (with_exchange_key_id, Code.UNAUTHENTICATED, "BAD_SIGNATURE"),
    ):
        await assert_attack_fails(
            c, lambda e=envelope: to_issuer(c, "tea", "PlaceHold", e), None, code, reason
        )
    assert holds_of(c, member) == []
    # A genuine hold, which noodles then tries to post (or void) itself, bypassing the exchange.
    auth = await c["noodles"].client.authorize_cross(
        "tea", member, f"o-{member}", points=100, consent_code=fresh_code(c, member)
    )
    for method, command in (
        ("PostHold", ipb.PostHoldCommand(hold_id=auth.authorization_id)),
        ("VoidHold", ipb.VoidHoldCommand(hold_id=auth.authorization_id)),
    ):
        envelope = seal(noodles, command, audience="tea")
        await assert_attack_fails(
            c,
            lambda m=method, e=envelope: to_issuer(c, "tea", m, e),
            None,
            Code.PERMISSION_DENIED,
            "SIGNER_NOT_ALLOWED",
        )
    assert [h[1:] for h in holds_of(c, member)] == [(100, "pending")]


async def test_an_operator_command_signed_by_a_merchant_is_refused(coalition):
    c = coalition
    noodles = signer_of(c, "noodles")
    suspend_salon = xpb.SetMerchantStatusCommand(
        merchant_id="salon", status=xpb.MERCHANT_STATUS_SUSPENDED
    )
    own_key_for_tea = xpb.RotateKeyCommand(
        merchant_id="tea", public_key=raw_public(Ed25519PrivateKey.generate())
    )
    cheaper_points = xpb.SetMerchantTermsCommand(
        merchant_id="tea", fen_per_point="100", fee_bps=-1, endpoint=""
    )
    for method, command in (
        ("SetMerchantStatus", suspend_salon),
        ("RotateKey", own_key_for_tea),
        ("SetMerchantTerms", cheaper_points),
    ):
        envelope = seal(noodles, command)
        await assert_attack_fails(
            c,
            lambda m=method, e=envelope: to_operator_service(c, m, e),
            envelope,
            Code.PERMISSION_DENIED,
            "SIGNER_NOT_ALLOWED",
        )
    # Claiming to be the operator: with the merchant's key id, then with the operator's.
    as_operator = seal(Signer(OPERATOR_ID, c["noodles"].key, c.clock), suspend_salon)
    operator_key_id = forge(as_operator, key_id=key_id(c.operator_key.public_key()))
    for envelope, reason in ((as_operator, "UNKNOWN_KEY"), (operator_key_id, "BAD_SIGNATURE")):
        await assert_attack_fails(
            c,
            lambda e=envelope: to_operator_service(c, "SetMerchantStatus", e),
            envelope,
            Code.UNAUTHENTICATED,
            reason,
        )


# -- the issuer's side of replay protection --------------------------------------------------


def sent_to_issuer(c: Coalition, issuer_id: str, hold_id: str) -> SignedEnvelope:
    """The exchange's signed PlaceHold for `hold_id`, as an eavesdropper would have seen it."""
    with c.exchange.engine.connect() as conn:
        entries = audit.read(conn)
    for e in entries:
        if e.direction == "out" and e.peer_id == issuer_id and e.outcome == "sent":
            envelope = SignedEnvelope.FromString(e.envelope)
            is_hold = envelope.payload_type == ipb.PlaceHoldCommand.DESCRIPTOR.full_name
            if is_hold and ipb.PlaceHoldCommand.FromString(envelope.payload).hold_id == hold_id:
                return envelope
    raise AssertionError(f"no PlaceHold for {hold_id} in the audit log")


async def test_an_exchange_hold_command_replayed_to_the_issuer_acts_once(coalition):
    c = coalition
    member = await member_with_points(c)
    auth = await c["noodles"].client.authorize_cross(
        "tea", member, f"o-{member}", points=100, consent_code=fresh_code(c, member)
    )
    place = sent_to_issuer(c, "tea", auth.authorization_id)
    watch = Watch(c)
    answer = await to_issuer(c, "tea", "PlaceHold", place)
    receipt = ipb.HoldReceipt.FromString(answer.envelope.payload)
    assert (receipt.hold_id, receipt.points) == (auth.authorization_id, 100)
    watch.assert_unchanged()
    # Replayed after the void, it does not hold the points again.
    await c["noodles"].client.void_cross(auth.authorization_id)
    watch = Watch(c)
    await to_issuer(c, "tea", "PlaceHold", place)
    watch.assert_unchanged()
    assert [h[1:] for h in holds_of(c, member)] == [(100, "voided")]
    # At another issuer it is misaddressed; later than the window, stale.
    await assert_attack_fails(
        c,
        lambda: to_issuer(c, "salon", "PlaceHold", place),
        None,
        Code.PERMISSION_DENIED,
        "WRONG_AUDIENCE",
    )
    c.clock.advance(minutes=5, seconds=1)
    await assert_attack_fails(
        c,
        lambda: to_issuer(c, "tea", "PlaceHold", place),
        None,
        Code.UNAUTHENTICATED,
        "STALE_MESSAGE",
    )


# -- odd bytes in the fields: a refusal, never a crash ---------------------------------------


async def test_nul_characters_in_the_envelope_are_refused_as_an_unknown_signer_or_key(
    request, coalition
):
    c = coalition
    genuine = seal(signer_of(c, "noodles"), quote_command())
    for envelope, reason in (
        (forge(genuine, signer_id="noodles\x00"), "UNKNOWN_SIGNER"),
        (forge(genuine, key_id=genuine.key_id + "\x00"), "UNKNOWN_KEY"),
    ):
        await assert_attack_fails(
            c,
            lambda e=envelope: to_exchange(c, "GetQuote", e),
            envelope,
            Code.UNAUTHENTICATED,
            reason,
        )


async def test_nul_characters_in_signed_fields_get_an_answer_a_client_can_act_on(
    request, coalition
):
    c = coalition
    member = await member_with_points(c)
    noodles = signer_of(c, "noodles")
    with_code = authorize_command(member, "12\x0034")
    with_quote = authorize_command(member, fresh_code(c, member))
    with_quote.quote_id = "q-\x00"
    direct = [
        ("GetQuote", seal(noodles, quote_command(), request_id="atk-\x00")),
        ("Authorize", seal(noodles, with_code)),
        ("Authorize", seal(noodles, with_quote)),
        ("Capture", seal(noodles, xpb.CaptureCommand(authorization_id="a-\x00"))),
        ("Void", seal(noodles, xpb.VoidCommand(authorization_id="a-\x00"))),
    ]
    outcomes = []
    for method, envelope in direct:
        try:
            await to_exchange(c, method, envelope)
            outcomes.append((method, None, None))
        except grpc.aio.AioRpcError as err:
            info = error_info_of(err)
            outcomes.append((method, err.code(), info.reason if info else None))
    assert [o for o in outcomes if classify(o[1], o[2]) not in ("ok", "refusal")] == []
    # Through the POS API: bad input is a refusal, not "the exchange is unreachable".
    pos = c["noodles"].client
    for kw in (
        dict(points=5, consent_code="12\x0034"),
        dict(quote_id="q-\x00", consent_code=fresh_code(c, member)),
    ):
        code, _ = await refusal(pos.authorize_cross("tea", member, f"o-{uuid.uuid4().hex}", **kw))
        assert code in BUSINESS_REFUSALS, code


async def test_a_signed_message_dated_outside_the_calendar_is_refused(coalition):
    c = coalition
    genuine = seal(signer_of(c, "noodles"), quote_command())
    for seconds in (2**62, -(2**62)):
        dated = xpb.QuoteCommand.FromString(genuine.payload)
        dated.header.issued_at.seconds = seconds
        envelope = resign(genuine, dated.SerializeToString(), c["noodles"].key)
        watch = Watch(c)
        code, reason = await refusal(to_exchange(c, "GetQuote", envelope))
        assert code in (Code.UNAUTHENTICATED, Code.INVALID_ARGUMENT), code
        watch.assert_unchanged()
        watch.assert_refusal_logged(envelope, reason)


# -- every outcome a client sees is one it can act on ----------------------------------------


async def test_every_outcome_a_client_sees_is_one_it_can_act_on(coalition):
    """A mixed workload through noodles' POS API (and a sloppy partner straight to the
    exchange). Every outcome must be OK, a business refusal with a reason, UNAVAILABLE or
    DEADLINE_EXCEEDED; and each must be the one its input calls for (a bad input is a refusal,
    not "unavailable", which a client would retry in vain)."""
    c = coalition
    member = await member_with_points(c)
    noodles = c["noodles"].client
    stub = noodles.stub
    key = noodles.auth  # the POS's API key, for the raw stub calls below
    AGREED = 1000  # noqa: N806 - the most points the member agreed to in this test
    await c.operator.onboard(
        "ghost", "Ghost", raw_public(Ed25519PrivateKey.generate()), CLOSED_PORT
    )  # an issuer whose node is down
    salons = await c["salon"].client.authorize_cross(
        "tea",
        member,
        "salon-sale",
        points=10,
        consent_code=fresh_code(c, member, acquirer="salon", points=10),
    )
    seen: list[tuple[str, str, grpc.StatusCode | None, str | None, str]] = []
    answers: dict[str, object] = {}

    async def observe(label: str, call: Awaitable[object], *expected: str) -> None:
        try:
            answers[label] = await call
            seen.append((label, "/".join(expected), None, None, ""))
        except grpc.aio.AioRpcError as err:
            info = error_info_of(err)
            reason = info.reason if info else None
            seen.append((label, "/".join(expected), err.code(), reason, err.details() or ""))

    def code() -> str:  # bound to "up to 1000 points at noodles", the POS says so (AGREED)
        return fresh_code(c, member, points=AGREED)

    def authorize(order: str, **kw):  # type: ignore[no-untyped-def]
        kw.setdefault("consent_code", code())
        kw.setdefault("consent_max_points", AGREED)
        return noodles.authorize_cross(kw.pop("issuer", "tea"), member, order, **kw)

    def pos_request(**kw) -> pb.AuthorizeCrossRedemptionRequest:  # type: ignore[no-untyped-def]
        fields = dict(
            request_id=str(uuid.uuid4()),
            issuer_id="tea",
            member_id=member,
            order_id=f"o-{uuid.uuid4().hex[:8]}",
            points=1,
            consent_code="123456",
            consent_max_points=AGREED,
        )
        return pb.AuthorizeCrossRedemptionRequest(**{**fields, **kw})

    ok, refused, transient, ambiguous = "ok", "refusal", "transient", "ambiguous"
    # Quotes.
    await observe("quote points", noodles.quote_cross("tea", points=100), ok)
    await observe("quote amount", noodles.quote_cross("tea", amount_fen=250), ok)
    await observe("quote ghost", noodles.quote_cross("ghost", points=10), ok)  # no issuer call
    for label, issuer, kw in (
        ("unknown issuer", "nobody", dict(points=10)),
        ("malformed issuer", "tea shop!", dict(points=10)),
        ("empty issuer", "", dict(points=10)),
        ("own points", "noodles", dict(points=10)),
        ("nothing", "tea", {}),
        ("negative", "tea", dict(points=-5)),
        ("huge", "tea", dict(points=2**62)),
    ):
        await observe(f"quote {label}", noodles.quote_cross(issuer, **kw), refused)
    # Authorizations.
    await observe("authorize", authorize("ok-1", points=100), ok)
    await observe("authorize by amount", authorize("ok-2", amount_fen=150), ok)
    quote = answers.get("quote points")
    if quote is not None:
        await observe("authorize quoted", authorize("ok-3", quote_id=quote.quote_id), ok)
    for label, kw in (
        ("no code", dict(points=10, consent_code="")),
        ("wrong code", dict(points=10, consent_code=wrong_code(c, member))),
        ("long code", dict(points=10, consent_code="1" * 11)),
        ("odd code", dict(points=10, consent_code="١٢٣٤٥٦")),
        ("too many points", dict(points=10**6)),
        ("unknown quote", dict(quote_id="q-nope")),
        ("unknown issuer", dict(issuer="nobody", points=1)),
        ("own points", dict(issuer="noodles", points=1)),
    ):
        await observe(f"authorize {label}", authorize(f"bad-{uuid.uuid4().hex[:8]}", **kw), refused)
    await observe(
        "authorize at a down issuer", authorize("down-1", issuer="ghost", points=1), transient
    )
    for label, request in (
        ("unknown member", pos_request(member_id="nobody")),
        ("empty request id", pos_request(request_id="")),
        ("long request id", pos_request(request_id="r" * 129)),
        ("malformed member", pos_request(member_id="m 1")),
        ("long order", pos_request(order_id="o" * 300)),
        ("nul in order", pos_request(order_id="o\x00")),
    ):
        await observe(
            f"authorize {label}",
            stub.AuthorizeCrossRedemption(request, timeout=10, metadata=key),
            refused,
        )
    reused, once = str(uuid.uuid4()), code()
    for label, order, points, expected in (
        ("authorize with an id", "id-1", 5, ok),
        ("authorize, the same id again", "id-1", 5, ok),
        ("authorize, the same id, another body", "id-2", 6, refused),
    ):
        call = authorize(order, points=points, consent_code=once, request_id=reused)
        await observe(label, call, expected)
    # Captures and voids, in every order.
    for name, steps in (
        ("authorize", ((ok, "capture"), (ok, "capture"), (refused, "void"))),
        ("authorize by amount", ((ok, "void"), (ok, "void"), (refused, "capture"))),
    ):
        auth = answers.get(name)
        for i, (expected, step) in enumerate(steps if auth is not None else ()):
            call = noodles.capture_cross if step == "capture" else noodles.void_cross
            await observe(f"{step} of {name!r} #{i}", call(auth.authorization_id), expected)
    for label, auth_id in (
        ("unknown", "a-nope"),
        ("empty", ""),
        ("malformed", "a nope"),
        ("salon's", salons.authorization_id),
    ):
        await observe(f"capture {label}", noodles.capture_cross(auth_id), refused)
        await observe(f"void {label}", noodles.void_cross(auth_id), refused)
    # Portfolios, with one issuer down.
    consents = {"tea": c["tea"].portfolio_code(member, c.clock, "noodles"), "ghost": "123456"}
    await observe("portfolio", noodles.get_portfolio(member, consents), ok)
    await observe("portfolio of nobody", noodles.get_portfolio("nobody"), refused)
    await observe("portfolio without consent", noodles.get_portfolio(member), refused)
    await observe(
        "portfolio of ''",
        stub.GetPortfolio(pb.GetPortfolioRequest(), timeout=10, metadata=key),
        refused,
    )
    # Deadlines too short to meet.
    quick = pb.QuoteCrossRedemptionRequest(issuer_id="tea", points=1)
    await observe(
        "quote, 1 ms", stub.QuoteCrossRedemption(quick, timeout=0.001, metadata=key), ambiguous
    )
    short = pos_request(order_id="short-deadline", points=7, consent_code=code())
    await observe(
        "authorize, 20 ms",
        stub.AuthorizeCrossRedemption(short, timeout=0.02, metadata=key),
        ambiguous,
        ok,
    )
    await observe(
        "authorize, retried", stub.AuthorizeCrossRedemption(short, timeout=10, metadata=key), ok
    )
    # Straight to the exchange, as a sloppy partner node might.
    signer = signer_of(c, "noodles")
    for label, envelope in (
        ("empty envelope", SignedEnvelope()),
        ("garbage payload", forge(seal(signer, quote_command()), payload=b"\xff\xff")),
        ("signed garbage", resign(seal(signer, quote_command()), b"\xff\xff", c["noodles"].key)),
    ):
        await observe(f"exchange: {label}", to_exchange(c, "GetQuote", envelope), refused)

    report = "\n".join(map(repr, seen))
    unacceptable = [s for s in seen if classify(s[2], s[3]) is None]
    assert unacceptable == [], report
    unexpected = [s for s in seen if classify(s[2], s[3]) not in s[1].split("/")]
    assert unexpected == [], report
    portfolio = answers["portfolio"]
    assert {(line.issuer_id, line.reachable) for line in portfolio.lines} >= {
        ("tea", True),
        ("ghost", False),
    }
