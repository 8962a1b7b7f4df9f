"""The node through its real gRPC server on a loopback port: statuses, reasons, idempotency."""

from __future__ import annotations

import asyncio

import grpc
import pytest
import sqlalchemy as sa
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from coalition.merchant.v1 import merchant_node_pb2 as pb
from coalition_kernel.errors import error_info_of
from merchant_node.ledger.schema import metadata


def dump(ledger, *, skip=("idempotency",)):  # type: ignore[no-untyped-def]
    """Every row of every ledger table, to prove a refused call changed nothing."""
    with ledger.engine.connect() as conn:
        return {
            t.name: conn.execute(sa.select(t).order_by(*t.primary_key.columns)).all()
            for t in metadata.sorted_tables
            if t.name not in skip
        }


async def refused(call, code: grpc.StatusCode, reason: str) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    assert err.value.code() == code, err.value.details()
    info = error_info_of(err.value)
    assert info is not None and info.reason == reason, (info, err.value.details())
    assert err.value.details()  # a message a partner can act on
    return err.value.details()


@pytest.fixture
async def client(node):  # type: ignore[no-untyped-def]
    async with node.client() as c:
        await c.enroll_member("m1")
        await c.earn("m1", "seed", 10_000)  # 100 points
        yield c


async def test_enroll_earn_redeem_balance_and_history_over_the_wire(client):
    res = await client.earn(
        "m1",
        "o1",
        5_050,
        line_items=[pb.LineItem(sku="tea", category="drink", quantity=2, unit_price_fen=2_525)],
    )
    assert (res.points_earned, res.available_points) == (50, 150)
    assert res.breakdown[0].rule_id == "base_rate"
    red = await client.redeem("m1", "o2", amount_fen=40)
    assert (red.points_redeemed, red.value_fen, red.available_points) == (40, 40, 110)
    bal = await client.get_balance("m1", expiring_within_days=400)
    assert (bal.available_points, bal.held_points, bal.expiring_points) == (110, 0, 110)
    assert (bal.lifetime_earned_points, bal.available_value_fen) == (150, 110)
    hist = await client.list_history("m1", page_size=10)
    assert [e.kind for e in hist.entries] == [
        pb.ENTRY_KIND_REDEEM,
        pb.ENTRY_KIND_EARN,
        pb.ENTRY_KIND_EARN,
    ]
    assert [e.available_delta for e in hist.entries] == [-40, 50, 100]


async def test_refund_over_the_wire_claws_back_and_returns_points(client):
    await client.redeem("m1", "o2", points=30)
    res = await client.refund("o2", full=True)
    assert (res.points_returned, res.available_points) == (30, 100)
    res = await client.refund("seed", amount_fen=5_000)
    assert (res.points_clawed_back, res.available_points) == (50, 50)


async def test_replayed_request_returns_first_answer_and_changes_nothing(client, node):
    first = await client.earn("m1", "o1", 5_000, request_id="req-1")
    before = dump(node.ledger, skip=())
    again = await client.earn("m1", "o1", 5_000, request_id="req-1")
    assert again == first
    assert dump(node.ledger, skip=()) == before


async def test_same_request_id_with_a_different_body_is_refused(client, node):
    await client.earn("m1", "o1", 5_000, request_id="req-1")
    before = dump(node.ledger, skip=())
    await refused(
        client.earn("m1", "o1", 6_000, request_id="req-1"),
        grpc.StatusCode.ALREADY_EXISTS,
        "REQUEST_ID_REUSED",
    )
    assert dump(node.ledger, skip=()) == before


async def test_a_refused_request_stays_refused_after_the_balance_changes(client):
    await refused(
        client.redeem("m1", "big", points=150, request_id="redeem-1"),
        grpc.StatusCode.FAILED_PRECONDITION,
        "INSUFFICIENT_POINTS",
    )
    await client.earn("m1", "o1", 10_000)  # now 200 points: enough
    await refused(
        client.redeem("m1", "big", points=150, request_id="redeem-1"),
        grpc.StatusCode.FAILED_PRECONDITION,
        "INSUFFICIENT_POINTS",
    )
    assert (await client.get_balance("m1")).available_points == 200


BAD_EARNS = [
    ("negative amount", dict(amount_fen=-1), "AMOUNT_OUT_OF_RANGE"),
    ("zero amount", dict(amount_fen=0), "AMOUNT_OUT_OF_RANGE"),
    ("overflowing amount", dict(amount_fen=2**63 - 1), "AMOUNT_OUT_OF_RANGE"),
    ("empty request id", dict(request_id=""), "MISSING_FIELD"),
    ("overlong request id", dict(request_id="r" * 129), "FIELD_TOO_LONG"),
    ("empty order id", dict(order_id=""), "MISSING_FIELD"),
    ("overlong order id", dict(order_id="o" * 65), "FIELD_TOO_LONG"),
    ("overlong member id", dict(member_id="m" * 65), "FIELD_TOO_LONG"),
    ("id with spaces", dict(order_id="order 1"), "MALFORMED_ID"),
    ("unknown channel", dict(channel=42), "UNKNOWN_CHANNEL"),
    (
        "line items above the amount",
        dict(line_items=[pb.LineItem(sku="x", quantity=3, unit_price_fen=5_000)]),
        "LINE_ITEMS_EXCEED_AMOUNT",
    ),
    (
        "line item of zero quantity",
        dict(line_items=[pb.LineItem(sku="x", quantity=0, unit_price_fen=1)]),
        "AMOUNT_OUT_OF_RANGE",
    ),
]


@pytest.mark.parametrize(
    "field_values,reason", [(v, r) for _, v, r in BAD_EARNS], ids=[n for n, _, _ in BAD_EARNS]
)
async def test_bad_earn_input_is_invalid_argument_and_changes_nothing(
    client, node, field_values, reason
):
    request = dict(
        request_id="bad-1", member_id="m1", order_id="o1", amount_fen=10_000, channel=pb.CHANNEL_POS
    )
    request.update(field_values)
    before = dump(node.ledger, skip=())
    await refused(
        client.stub.Earn(pb.EarnRequest(**request), metadata=client.auth),
        grpc.StatusCode.INVALID_ARGUMENT,
        reason,
    )
    assert dump(node.ledger, skip=()) == before


@pytest.mark.parametrize(
    "seconds,nanos,reason",
    [
        (-62135596800 - 1, 0, "MALFORMED_TIMESTAMP"),
        (10, 2_000_000_000, "MALFORMED_TIMESTAMP"),
        (4_102_444_800 * 10, 0, "MALFORMED_TIMESTAMP"),
        (0, 0, "MALFORMED_TIMESTAMP"),
    ],
    ids=["before year 1", "nanos out of range", "far future", "1970"],
)
async def test_malformed_timestamps_are_invalid_argument(client, node, seconds, nanos, reason):
    req = pb.EarnRequest(request_id="ts-1", member_id="m1", order_id="o1", amount_fen=100)
    req.occurred_at.seconds, req.occurred_at.nanos = seconds, nanos
    before = dump(node.ledger, skip=())
    await refused(
        client.stub.Earn(req, metadata=client.auth), grpc.StatusCode.INVALID_ARGUMENT, reason
    )
    assert dump(node.ledger, skip=()) == before


async def test_purchases_dated_in_the_future_or_too_long_ago_are_refused(client, node, clock):
    from datetime import timedelta

    for when, reason in [
        (clock.now + timedelta(hours=1), "OCCURRED_AT_IN_FUTURE"),
        (clock.now - timedelta(days=31), "OCCURRED_AT_TOO_OLD"),
    ]:
        await refused(
            client.earn("m1", "o1", 100, occurred_at=when), grpc.StatusCode.INVALID_ARGUMENT, reason
        )
    res = await client.earn("m1", "o1", 10_000, occurred_at=clock.now - timedelta(days=3))
    assert res.expires_at.ToDatetime().date() == (clock.now + timedelta(days=362)).date()


async def test_business_refusals_carry_their_reason_and_change_nothing_but_the_record(client, node):
    cases = [
        (client.earn("ghost", "o1", 100), grpc.StatusCode.NOT_FOUND, "MEMBER_NOT_FOUND"),
        (
            client.redeem("m1", "o2", points=101),
            grpc.StatusCode.FAILED_PRECONDITION,
            "INSUFFICIENT_POINTS",
        ),
        (
            client.refund("seed", amount_fen=10_001),
            grpc.StatusCode.FAILED_PRECONDITION,
            "REFUND_EXCEEDS_ORDER",
        ),
        (client.refund("nope", full=True), grpc.StatusCode.NOT_FOUND, "ORDER_NOT_FOUND"),
        (client.earn("m1", "seed", 100), grpc.StatusCode.ALREADY_EXISTS, "ORDER_ALREADY_EARNED"),
        (client.enroll_member("m1"), grpc.StatusCode.ALREADY_EXISTS, "MEMBER_ALREADY_ENROLLED"),
        (client.get_balance("ghost"), grpc.StatusCode.NOT_FOUND, "MEMBER_NOT_FOUND"),
        (
            client.list_history("m1", page_token="garbage!"),
            grpc.StatusCode.INVALID_ARGUMENT,
            "BAD_PAGE_TOKEN",
        ),
        (
            client.list_history("m1", page_size=101),
            grpc.StatusCode.INVALID_ARGUMENT,
            "PAGE_SIZE_OUT_OF_RANGE",
        ),
        (client.redeem("m1", "o3"), grpc.StatusCode.INVALID_ARGUMENT, "MISSING_FIELD"),
        (client.refund("seed"), grpc.StatusCode.INVALID_ARGUMENT, "MISSING_FIELD"),
    ]
    before = dump(node.ledger)
    for call, code, reason in cases:
        await refused(call, code, reason)
    assert dump(node.ledger) == before


@pytest.mark.parametrize(
    "body",
    [b"\xff\xff\xff", b"\x0a\x05ab", b"\x22\x80"],
    ids=["garbage", "truncated string", "truncated varint"],
)
async def test_garbage_or_truncated_bodies_are_invalid_argument(node, body):
    async with grpc.aio.insecure_channel(node.target) as channel:
        call = channel.unary_unary("/coalition.merchant.v1.MerchantNodeService/Earn")
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call(body)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info_of(err.value).reason == "MALFORMED_REQUEST"


async def test_health_and_reflection_are_served(node):
    async with grpc.aio.insecure_channel(node.target) as channel:
        health = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="coalition.merchant.v1.MerchantNodeService")
        )
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        async for answer in stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")])
        ):
            names = {s.name for s in answer.list_services_response.service}
            break
    assert "coalition.merchant.v1.MerchantNodeService" in names


async def test_a_call_whose_deadline_passes_before_commit_changes_nothing(client, node):
    """The member is locked by another writer for longer than the call's deadline allows."""
    import threading

    from merchant_node.ledger.schema import members

    before = dump(node.ledger, skip=())
    locked, release = threading.Event(), threading.Event()

    def hold_member_lock() -> None:
        with node.ledger.engine.begin() as conn:  # SQLite: BEGIN IMMEDIATE; PostgreSQL: FOR UPDATE
            conn.execute(sa.select(members).where(members.c.member_id == "m1").with_for_update())
            locked.set()
            release.wait(5)

    blocker = threading.Thread(target=hold_member_lock)
    blocker.start()
    locked.wait(5)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await client.stub.Earn(
                pb.EarnRequest(request_id="late", member_id="m1", order_id="o1", amount_fen=100),
                metadata=client.auth,
                timeout=0.3,
            )
        assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        await asyncio.sleep(0.2)
        release.set()
        blocker.join()
    await asyncio.sleep(0.5)  # let the server finish the call it was waiting on
    assert dump(node.ledger, skip=()) == before
    # Nothing was decided, so the same request id may still go ahead.
    assert (await client.earn("m1", "o1", 100, request_id="late")).points_earned == 1
