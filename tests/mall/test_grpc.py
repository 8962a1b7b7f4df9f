"""The mall's gRPC services on the node's server: who may call what, two tills at once."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from coalition.merchant.v1 import mall_pb2 as pb
from coalition.merchant.v1 import mall_pb2_grpc
from coalition_kernel.errors import error_info_of
from tests.mall.support import (
    STAFF,
    available,
    coupon_item,
    member_md,
    member_with_points,
    start_mall,
)


async def refused(call, code: grpc.StatusCode) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    assert err.value.code() == code, err.value
    return error_info_of(err.value).reason


@pytest.mark.asyncio
async def test_coupon_redeemed_at_two_tills_at_once_one_wins(ledger):
    member_with_points(ledger, "m1", 20_000)
    async with start_mall(ledger, http=False) as running:
        running.mall.upsert_item("up-1", coupon_item(stock=20), "admin")
        async with grpc.aio.insecure_channel(running.target) as channel:
            stub = mall_pb2_grpc.MallServiceStub(channel)
            for n in range(10):
                order = (
                    await stub.BuyItem(
                        pb.BuyItemRequest(request_id=f"b-{n}", item_id="tea-coupon"),
                        metadata=member_md(running.mall, "m1"),
                    )
                ).order
                code = order.coupon_codes[0]

                async def redeem(till: str, code: str = code, n: int = n) -> str:
                    req = pb.RedeemCouponRequest(request_id=f"{till}-{n}", code=code, till_id=till)
                    try:
                        res = await stub.RedeemCoupon(req, metadata=STAFF)
                        return pb.CouponStatus.Name(res.coupon.status)
                    except grpc.aio.AioRpcError as err:
                        return error_info_of(err).reason

                results = sorted(await asyncio.gather(redeem("till-1"), redeem("till-2")))
                assert results == ["COUPON_ALREADY_REDEEMED", "COUPON_STATUS_REDEEMED"]


@pytest.mark.asyncio
async def test_every_method_authenticates_its_caller(ledger):
    member_with_points(ledger, "m1", 1000)
    async with (
        start_mall(ledger, http=False) as running,
        grpc.aio.insecure_channel(running.target) as channel,
    ):
        admin = mall_pb2_grpc.MallAdminServiceStub(channel)
        member = mall_pb2_grpc.MallServiceStub(channel)
        for method, request in [
            (admin.UpsertItem, pb.UpsertItemRequest(request_id="u")),
            (admin.ListItems, pb.ListItemsRequest()),
            (admin.IssueMemberToken, pb.IssueMemberTokenRequest(member_id="m1")),
            (admin.GetMallReport, pb.GetMallReportRequest()),
            (member.ConfirmPayment, pb.ConfirmPaymentRequest(request_id="p")),
            (member.RedeemCoupon, pb.RedeemCouponRequest(request_id="r")),
        ]:
            bad = (("authorization", "Bearer nope"),)
            assert (
                await refused(method(request, metadata=bad), grpc.StatusCode.UNAUTHENTICATED)
                == "BAD_ADMIN_TOKEN"
            )
        # A member token opens member methods only.
        md = member_md(running.mall, "m1")
        assert (
            await refused(
                admin.ListItems(pb.ListItemsRequest(), metadata=md),
                grpc.StatusCode.UNAUTHENTICATED,
            )
            == "BAD_ADMIN_TOKEN"
        )
        for method, request in [
            (member.BrowseItems, pb.BrowseItemsRequest()),
            (member.BuyItem, pb.BuyItemRequest(request_id="b", item_id="x")),
            (member.GetMyBalance, pb.GetMyBalanceRequest()),
            (member.Draw, pb.DrawRequest(request_id="d", lottery_id="x")),
        ]:
            assert (
                await refused(method(request), grpc.StatusCode.UNAUTHENTICATED)
                == "MISSING_CREDENTIAL"
            )
        token = await admin.IssueMemberToken(
            pb.IssueMemberTokenRequest(member_id="m1"), metadata=STAFF
        )
        bal = await member.GetMyBalance(
            pb.GetMyBalanceRequest(), metadata=(("authorization", f"Bearer {token.token}"),)
        )
        assert (bal.member_id, bal.available_points) == ("m1", 1000)


@pytest.mark.asyncio
async def test_admin_upserts_through_grpc_validated_and_reported(ledger):
    member_with_points(ledger, "m1", 5000)
    async with (
        start_mall(ledger, http=False) as running,
        grpc.aio.insecure_channel(running.target) as channel,
    ):
        admin = mall_pb2_grpc.MallAdminServiceStub(channel)
        member = mall_pb2_grpc.MallServiceStub(channel)
        bad = pb.Item(
            item_id="c", kind=pb.ITEM_KIND_COUPON, title="x", price_points=10, stock_total=5
        )
        assert (
            await refused(
                admin.UpsertItem(pb.UpsertItemRequest(request_id="u0", item=bad), metadata=STAFF),
                grpc.StatusCode.INVALID_ARGUMENT,
            )
            == "BAD_ITEM"
        )
        good = pb.Item(
            item_id="c",
            kind=pb.ITEM_KIND_COUPON,
            title="¥5",
            price_points=500,
            stock_total=5,
            coupon_value_fen=500,
            coupon_valid_days=30,
        )
        made = await admin.UpsertItem(
            pb.UpsertItemRequest(request_id="u1", item=good), metadata=STAFF
        )
        assert (made.item.stock_left, made.item.active) == (5, True)
        md = member_md(running.mall, "m1")
        await member.BuyItem(
            pb.BuyItemRequest(request_id="b1", item_id="c", quantity=2), metadata=md
        )
        order = (await member.ListMyOrders(pb.ListMyOrdersRequest(), metadata=md)).orders[0]
        await member.RedeemCoupon(
            pb.RedeemCouponRequest(request_id="r1", code=order.coupon_codes[0], till_id="t1"),
            metadata=STAFF,
        )
        report = await admin.GetMallReport(pb.GetMallReportRequest(), metadata=STAFF)
        assert [(i.item_id, i.sold, i.points_taken, i.stock_left) for i in report.items] == [
            ("c", 2, 1000, 3)
        ]
        assert (
            report.coupons_issued,
            report.coupons_redeemed,
            report.coupon_liability_fen,
        ) == (2, 1, 500)
    assert available(ledger, "m1") == 4000


@pytest.mark.asyncio
async def test_every_mall_method_refuses_garbage_clearly_and_changes_nothing(ledger):
    import sqlalchemy as sa

    from merchant_node.ledger.schema import metadata as node_tables

    member_with_points(ledger, "m1", 1000)

    def dump():  # type: ignore[no-untyped-def]
        with ledger.engine.connect() as conn:
            return {
                t.name: sorted(map(tuple, conn.execute(sa.select(t)).all()), key=repr)
                for t in node_tables.sorted_tables
            }

    async with start_mall(ledger, http=False) as running:
        before = dump()
        seen = 0
        async with grpc.aio.insecure_channel(running.target) as channel:
            for service in pb.DESCRIPTOR.services_by_name.values():
                for method in service.methods:
                    call = channel.unary_unary(
                        f"/{service.full_name}/{method.name}",
                        request_serializer=None,
                        response_deserializer=None,
                    )
                    metadata = (*STAFF, *member_md(running.mall, "m1"))
                    with pytest.raises(grpc.aio.AioRpcError) as err:
                        await call(b"\xff\xff\xff", metadata=metadata)
                    info = error_info_of(err.value)
                    assert err.value.code() in (
                        grpc.StatusCode.INVALID_ARGUMENT,
                        grpc.StatusCode.UNAUTHENTICATED,
                        grpc.StatusCode.PERMISSION_DENIED,
                    ), (method.full_name, err.value.code())
                    assert info is not None and info.reason, method.full_name
                    seen += 1
        assert seen >= 10
        assert dump() == before
