"""The nodes' signed statements of a settlement period (IssuerService GetStatement) against the
exchange's clearing records: one period on both sides of every capture, whatever the faults,
paged without loss, refused to anyone but the exchange, and any altered booking shown."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import grpc
import pytest
import pytest_asyncio
import sqlalchemy as sa
from google.protobuf.message import Message

from coalition.envelope.v1.envelope_pb2 import SignedEnvelope
from coalition.issuer.v1 import issuer_pb2 as ipb
from coalition.issuer.v1 import issuer_pb2_grpc
from coalition_kernel.db import run_in_transaction
from coalition_kernel.envelope import EXCHANGE_ID, Signer
from coalition_kernel.errors import InvalidArgument, error_info_of
from coalition_kernel.keys import key_id
from exchange import audit, registry
from exchange.schema import authorizations, clearing_records
from exchange.statements import fetch_statement
from merchant_node.ledger.schema import cross_redemptions, holds
from merchant_node.ledger.schema import metadata as node_tables
from settlement.reconcile import Mismatch, NodeStatement, reconcile
from settlement.records import stream_records
from tests.exchange.conftest import MERCHANTS, Coalition, start_coalition
from tests.exchange.test_recovery import FaultyIssuers

DAY = "2026-01-05"  # the fake clock starts at 09:00 UTC, 17:00 in Asia/Shanghai
NEXT_DAY = "2026-01-06"
Code = grpc.StatusCode


@pytest_asyncio.fixture
async def faulty(new_database, clock) -> AsyncIterator[tuple[Coalition, FaultyIssuers]]:  # type: ignore[no-untyped-def]
    issuers = FaultyIssuers()
    async for running in start_coalition(new_database, clock, issuers=issuers):
        yield running, issuers


# -- helpers ---------------------------------------------------------------------------------


async def member_at(c: Coalition, issuer_id: str, fen: int = 100_000) -> str:
    member_id = f"m-{issuer_id}"
    await c[issuer_id].client.enroll_member(member_id)
    await c[issuer_id].client.earn(member_id, f"seed-{member_id}", fen)
    return member_id


async def authorize(c: Coalition, issuer_id: str, acquirer_id: str, points: int) -> str:
    c.clock.advance(seconds=31)  # a fresh one-time code each time
    code = c[issuer_id].wallet_code(f"m-{issuer_id}", c.clock, acquirer_id, points)
    auth = await c[acquirer_id].client.authorize_cross(
        issuer_id, f"m-{issuer_id}", f"o-{uuid.uuid4().hex[:8]}", points=points, consent_code=code
    )
    return auth.authorization_id


async def capture(c: Coalition, issuer_id: str, acquirer_id: str, points: int) -> str:
    auth_id = await authorize(c, issuer_id, acquirer_id, points)
    await c[acquirer_id].client.capture_cross(auth_id)
    return auth_id


async def statements(c: Coalition, period: str) -> list[NodeStatement]:
    return [await c.exchange.redemptions.statement(m, period) for m in MERCHANTS]


def mismatches(c: Coalition, period: str, found: list[NodeStatement]) -> tuple[Mismatch, ...]:
    with c.exchange.engine.connect() as conn:
        records = list(stream_records(conn, period))
    return reconcile(records, found).mismatches


def period_of_hold(c: Coalition, issuer_id: str, auth_id: str) -> str | None:
    with c[issuer_id].ledger.engine.connect() as conn:
        return conn.execute(
            sa.select(holds.c.settlement_period).where(holds.c.hold_ref == auth_id)
        ).scalar_one()


def period_of_record(c: Coalition, auth_id: str) -> str:
    with c.exchange.engine.connect() as conn:
        return conn.execute(
            sa.select(clearing_records.c.settlement_period).where(
                clearing_records.c.authorization_id == auth_id
            )
        ).scalar_one()


def seal_for(
    c: Coalition, merchant_id: str, command: Message, signer: Signer | None = None
) -> SignedEnvelope:
    signer = signer or c.exchange.signer
    return signer.seal(command, audience=merchant_id, request_id=f"t-{uuid.uuid4().hex}")


async def to_node(c: Coalition, merchant_id: str, method: str, envelope: SignedEnvelope):  # type: ignore[no-untyped-def]
    async with grpc.aio.insecure_channel(c[merchant_id].target) as channel:
        stub = issuer_pb2_grpc.IssuerServiceStub(channel)
        request = getattr(ipb, f"{method}Request")(envelope=envelope)
        return await getattr(stub, method)(request, timeout=10)


async def refused(call) -> tuple[grpc.StatusCode, str]:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    info = error_info_of(caught.value)
    assert info is not None, caught.value.details()
    return caught.value.code(), info.reason


def node_state(c: Coalition, merchant_id: str) -> dict[str, list[tuple]]:  # type: ignore[type-arg]
    with c[merchant_id].ledger.engine.connect() as conn:
        return {
            t.name: sorted((tuple(r) for r in conn.execute(sa.select(t))), key=repr)
            for t in node_tables.sorted_tables
        }


def statement_pages_logged(c: Coalition, merchant_id: str) -> list[str]:
    """The outcomes of the statement pages the exchange sent `merchant_id` and got back."""
    with c.exchange.engine.connect() as conn:
        entries = audit.read(conn, peer_id=merchant_id)
    return [
        f"{e.direction}:{e.outcome}"
        for e in entries
        if e.envelope
        and SignedEnvelope.FromString(e.envelope).payload_type.startswith("coalition.issuer.v1.St")
    ]


# -- one period on both sides ----------------------------------------------------------------


async def test_every_nodes_statement_reconciles_after_a_mixed_workload(coalition):
    c = coalition
    for issuer_id in MERCHANTS:
        await member_at(c, issuer_id)
    captured, left_out = [], []
    for round_ in range(3):
        for i, issuer_id in enumerate(MERCHANTS):
            acquirer_id = MERCHANTS[(i + 1 + round_ % 2) % 3]
            auth_id = await authorize(c, issuer_id, acquirer_id, 10 + round_ * 7 + i)
            if (round_ + i) % 3 == 0:
                await c[acquirer_id].client.void_cross(auth_id)
                left_out.append(auth_id)
            else:
                await c[acquirer_id].client.capture_cross(auth_id)
                captured.append(auth_id)
    lapsed = await authorize(c, "tea", "salon", 5)
    c.clock.advance(minutes=16)  # past the hold's 15 minutes
    code, reason = await refused(c["salon"].client.capture_cross(lapsed))
    assert (code, reason) == (Code.FAILED_PRECONDITION, "HOLD_EXPIRED")
    left_out.append(lapsed)
    c.clock.advance(hours=7)  # 00:40 in Shanghai: the next day's period
    tomorrow = await capture(c, "noodles", "tea", 3)

    today = await statements(c, DAY)
    assert mismatches(c, DAY, today) == ()
    holds_listed = {h.hold_ref for s in today for h in s.posted_holds}
    receivables_listed = {r.authorization_id for s in today for r in s.receivables}
    assert holds_listed == receivables_listed == set(captured)
    assert all(s.posted_holds and s.receivables for s in today)  # every node on both sides
    assert not holds_listed & {*left_out, tomorrow}
    next_day = await statements(c, NEXT_DAY)
    assert mismatches(c, NEXT_DAY, next_day) == ()
    assert [h.hold_ref for s in next_day for h in s.posted_holds] == [tomorrow]
    assert {period_of_hold(c, "noodles", tomorrow), period_of_record(c, tomorrow)} == {NEXT_DAY}
    # Every page was signed by the node, verified and logged; the chain is intact.
    assert statement_pages_logged(c, "tea") == ["out:sent", "in:accepted"] * 4
    assert run_in_transaction(c.exchange.engine, audit.verify_chain) == []


@pytest.mark.parametrize("finished_by", ["acquirers_retry", "recovery"])
async def test_a_capture_whose_post_answer_was_lost_keeps_its_first_period_on_both_sides(
    faulty, finished_by
):
    c, issuers = faulty
    c.clock.now = datetime(2026, 1, 5, 15, 58, tzinfo=UTC)  # 23:58 in Shanghai
    await member_at(c, "tea")
    auth_id = await authorize(c, "tea", "noodles", 100)
    c.clock.now = datetime(2026, 1, 5, 15, 59, 59, tzinfo=UTC)  # the capture starts on DAY
    issuers.lose_answer.add("PostHold")
    code, reason = await refused(c["noodles"].client.capture_cross(auth_id, request_id="cap-1"))
    assert (code, reason) == (Code.UNAVAILABLE, "ISSUER_UNAVAILABLE")
    assert period_of_hold(c, "tea", auth_id) == DAY  # the issuer posted it, stamped DAY
    issuers.lose_answer.clear()
    c.clock.advance(minutes=1)  # past midnight, and past the sweep's 30 s
    if finished_by == "recovery":
        assert (await c.exchange.redemptions.recover())["posted"] == 1
    record = await c["noodles"].client.capture_cross(auth_id, request_id="cap-1")
    assert record.points == 100
    assert period_of_record(c, auth_id) == period_of_hold(c, "tea", auth_id) == DAY
    assert mismatches(c, DAY, await statements(c, DAY)) == ()
    assert mismatches(c, NEXT_DAY, await statements(c, NEXT_DAY)) == ()
    assert (await c.exchange.redemptions.statement("tea", NEXT_DAY)).posted_holds == ()


async def test_a_capture_claimed_before_periods_were_stored_is_still_finished(faulty):
    c, issuers = faulty
    await member_at(c, "tea")
    auth_id = await authorize(c, "tea", "noodles", 100)
    issuers.before.add("PostHold")  # the post never leaves: the capture stays 'capturing'
    await refused(c["noodles"].client.capture_cross(auth_id, request_id="cap-1"))
    issuers.before.clear()
    with c.exchange.engine.begin() as conn:  # as a row written before the period column
        conn.execute(sa.update(authorizations).values(settlement_period=None))
    c.clock.advance(seconds=31)
    assert (await c.exchange.redemptions.recover())["posted"] == 1
    await c["noodles"].client.capture_cross(auth_id, request_id="cap-1")  # books the receivable
    assert period_of_record(c, auth_id) == DAY  # computed when the record was written
    with c.exchange.engine.connect() as conn:
        assert conn.execute(sa.select(authorizations.c.settlement_period)).scalar_one() == DAY
    # The post went without a period, as an older exchange's may already have gone: the node
    # books it in none, and reconciliation shows it rather than losing it.
    assert period_of_hold(c, "tea", auth_id) is None
    assert mismatches(c, DAY, await statements(c, DAY)) == (
        Mismatch("tea", "issuer", "missing_at_node", auth_id),
    )


# -- paging ----------------------------------------------------------------------------------


async def test_a_statement_is_paged_without_losing_or_repeating_an_entry(coalition):
    c = coalition
    await member_at(c, "tea")
    points = {await capture(c, "tea", "noodles", 10 + i): 10 + i for i in range(7)}
    captured = sorted(points)  # by code point, as the nodes list them
    sent: list[tuple[int, str]] = []

    async def recording_ask(merchant, method, command, request_id):  # type: ignore[no-untyped-def]
        sent.append((command.side, command.after_id))
        return await c.exchange.redemptions._ask(merchant, method, command, request_id)

    async def fetch(merchant_id: str, limit: int) -> NodeStatement:
        sent.clear()
        with c.exchange.engine.connect() as conn:
            merchant = registry.load(conn, merchant_id)
        return await fetch_statement(recording_ask, merchant, DAY, limit=limit)

    whole = await c.exchange.redemptions.statement("tea", DAY)
    assert [(h.hold_ref, h.points) for h in whole.posted_holds] == [
        (a, points[a]) for a in captured
    ]
    paged = await fetch("tea", 2)
    assert paged == whole
    issuer, acquirer = ipb.STATEMENT_SIDE_ISSUER, ipb.STATEMENT_SIDE_ACQUIRER
    assert sent == [
        (issuer, ""),
        (issuer, captured[1]),
        (issuer, captured[3]),
        (issuer, captured[5]),
        (acquirer, ""),
    ]
    assert await fetch("tea", 7) == whole  # exactly one full page: no empty page after it
    assert sent == [(issuer, ""), (acquirer, "")]
    noodles = await fetch("noodles", 3)
    assert [(r.authorization_id, r.issuer_id, r.points) for r in noodles.receivables] == [
        (a, "tea", points[a]) for a in captured
    ]
    assert sent == [(issuer, ""), (acquirer, ""), (acquirer, captured[2]), (acquirer, captured[5])]
    salon = await c.exchange.redemptions.statement("salon", DAY)
    assert mismatches(c, DAY, [whole, noodles, salon]) == ()


# -- refusals --------------------------------------------------------------------------------


async def test_a_statement_request_not_signed_by_the_exchange_is_refused_and_changes_nothing(
    coalition,
):
    c = coalition
    await member_at(c, "tea")
    await capture(c, "tea", "noodles", 10)
    command = ipb.StatementCommand(settlement_period=DAY, side=ipb.STATEMENT_SIDE_ISSUER)
    noodles = Signer("noodles", c["noodles"].key, c.clock)
    claims_exchange = seal_for(c, "tea", command, Signer(EXCHANGE_ID, c["noodles"].key, c.clock))
    forged = SignedEnvelope()
    forged.CopyFrom(claims_exchange)
    forged.key_id = key_id(c.exchange.public_key)
    for_salon = seal_for(c, "salon", command)
    before = node_state(c, "tea")
    for envelope, code, reason in (
        (seal_for(c, "tea", command, noodles), Code.PERMISSION_DENIED, "SIGNER_NOT_ALLOWED"),
        (claims_exchange, Code.UNAUTHENTICATED, "UNKNOWN_KEY"),
        (forged, Code.UNAUTHENTICATED, "BAD_SIGNATURE"),
        (for_salon, Code.PERMISSION_DENIED, "WRONG_AUDIENCE"),
    ):
        assert await refused(to_node(c, "tea", "GetStatement", envelope)) == (code, reason)
    assert node_state(c, "tea") == before
    # The exchange's own request is answered, signed by tea, for the exchange.
    answer = await to_node(c, "tea", "GetStatement", seal_for(c, "tea", command))
    receipt = ipb.StatementReceipt.FromString(answer.envelope.payload)
    assert (answer.envelope.signer_id, receipt.header.audience) == ("tea", EXCHANGE_ID)
    assert [e.points for e in receipt.entries] == [10]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"settlement_period": ""}, "MISSING_FIELD"),
        ({"settlement_period": "2026-02-30"}, "MALFORMED_PERIOD"),
        ({"settlement_period": "2026-1-5"}, "MALFORMED_PERIOD"),
        ({"settlement_period": "2026-W02"}, "MALFORMED_PERIOD"),
        ({"settlement_period": "２０２６-01-05"}, "MALFORMED_PERIOD"),
        ({"side": ipb.STATEMENT_SIDE_UNSPECIFIED}, "UNKNOWN_SIDE"),
        ({"side": 7}, "UNKNOWN_SIDE"),
        ({"limit": 10_001}, "LIMIT_OUT_OF_RANGE"),
        ({"limit": -1}, "LIMIT_OUT_OF_RANGE"),
        ({"after_id": "a b"}, "MALFORMED_ID"),
    ],
)
async def test_a_bad_statement_request_is_invalid_argument(coalition, fields, reason):
    c = coalition
    command = ipb.StatementCommand(settlement_period=DAY, side=ipb.STATEMENT_SIDE_ACQUIRER)
    for name, value in fields.items():
        setattr(command, name, value)
    got = await refused(to_node(c, "tea", "GetStatement", seal_for(c, "tea", command)))
    assert got == (Code.INVALID_ARGUMENT, reason)


async def test_the_largest_page_is_allowed_and_the_exchange_checks_the_period_first(coalition):
    c = coalition
    command = ipb.StatementCommand(
        settlement_period=DAY, side=ipb.STATEMENT_SIDE_ISSUER, limit=10_000
    )
    answer = await to_node(c, "tea", "GetStatement", seal_for(c, "tea", command))
    receipt = ipb.StatementReceipt.FromString(answer.envelope.payload)
    assert (list(receipt.entries), receipt.next_after_id) == ([], "")
    with pytest.raises(InvalidArgument) as err:
        await c.exchange.redemptions.statement("tea", "2026-13-01")
    assert err.value.reason == "MALFORMED_PERIOD"
    assert statement_pages_logged(c, "tea") == []  # nothing was sent


async def test_a_post_is_stamped_once_with_its_period_and_a_bad_period_is_refused(coalition):
    c = coalition
    await member_at(c, "tea")
    auth_id = await authorize(c, "tea", "noodles", 10)
    before = node_state(c, "tea")
    bad = ipb.PostHoldCommand(hold_id=auth_id, settlement_period="2026-01-32")
    got = await refused(to_node(c, "tea", "PostHold", seal_for(c, "tea", bad)))
    assert got == (Code.INVALID_ARGUMENT, "MALFORMED_PERIOD")
    assert node_state(c, "tea") == before
    post = ipb.PostHoldCommand(hold_id=auth_id, settlement_period=DAY)
    for _ in range(2):  # the same request id and body: the first answer, acting once
        envelope = c.exchange.signer.seal(post, audience="tea", request_id="post-1")
        answer = await to_node(c, "tea", "PostHold", envelope)
        assert ipb.HoldReceipt.FromString(answer.envelope.payload).status == ipb.HOLD_STATUS_POSTED
    other = ipb.PostHoldCommand(hold_id=auth_id, settlement_period=NEXT_DAY)
    envelope = c.exchange.signer.seal(other, audience="tea", request_id="post-1")
    got = await refused(to_node(c, "tea", "PostHold", envelope))
    assert got == (Code.ALREADY_EXISTS, "REQUEST_ID_REUSED")
    assert period_of_hold(c, "tea", auth_id) == DAY
    assert c["tea"].ledger.audit() == []


# -- what reconciliation finds ---------------------------------------------------------------


async def test_a_nodes_altered_booking_shows_up_as_an_altered_mismatch(coalition):
    c = coalition
    await member_at(c, "tea")
    auth_id = await capture(c, "tea", "noodles", 40)
    kept = await capture(c, "tea", "noodles", 50)
    with c["tea"].ledger.engine.begin() as conn:
        conn.execute(sa.update(holds).where(holds.c.hold_ref == auth_id).values(points=41))
    with c["noodles"].ledger.engine.begin() as conn:
        conn.execute(
            sa.update(cross_redemptions)
            .where(cross_redemptions.c.authorization_id == kept)
            .values(value_fen=1)
        )
    assert mismatches(c, DAY, await statements(c, DAY)) == (
        Mismatch("noodles", "acquirer", "altered", kept, "value_fen", 50, 1),
        Mismatch("tea", "issuer", "altered", auth_id, "points", 40, 41),
    )
