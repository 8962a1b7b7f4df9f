"""The mall's staff methods through the node's per-client API keys (merchant_node/auth): a till's
pos key redeems coupons and confirms payments, not more; an admin key runs the catalog."""

from __future__ import annotations

import grpc
import pytest

from coalition.merchant.v1 import mall_pb2 as pb
from coalition.merchant.v1 import mall_pb2_grpc
from coalition_kernel.errors import error_info_of
from coalition_kernel.rpc import Offload, Server
from merchant_node.auth.service import NodeAuth, add_client
from merchant_node.mall.api import NodeKeyStaffAuth
from merchant_node.mall.node import MallNode
from tests.mall.support import member_md, member_with_points, open_mall


@pytest.mark.asyncio
async def test_scoped_keys_open_exactly_their_methods(ledger):
    member_with_points(ledger, "m1", 1000)
    mall = open_mall(ledger)
    offload = Offload(4)
    staff = NodeKeyStaffAuth(NodeAuth(ledger.engine, offload))
    server = Server([], listen="127.0.0.1:0")
    MallNode(mall, offload, staff, sweep_every=None).attach(server)
    port = await server.start()
    till = (("authorization", f"Bearer {add_client(ledger.engine, 'till-1', 'pos').key}"),)
    admin = (("authorization", f"Bearer {add_client(ledger.engine, 'office', 'admin').key}"),)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            shop = mall_pb2_grpc.MallAdminServiceStub(channel)
            member = mall_pb2_grpc.MallServiceStub(channel)
            item = pb.Item(
                item_id="c",
                kind=pb.ITEM_KIND_COUPON,
                title="¥5",
                price_points=500,
                stock_total=5,
                coupon_value_fen=500,
                coupon_valid_days=30,
            )
            await shop.UpsertItem(pb.UpsertItemRequest(request_id="u1", item=item), metadata=admin)
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await shop.ListItems(pb.ListItemsRequest(), metadata=till)
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
            order = (
                await member.BuyItem(
                    pb.BuyItemRequest(request_id="b1", item_id="c"), metadata=member_md(mall, "m1")
                )
            ).order
            redeem = pb.RedeemCouponRequest(
                request_id="r1", code=order.coupon_codes[0], till_id="t1"
            )
            done = await member.RedeemCoupon(redeem, metadata=till)
            assert done.coupon.status == pb.COUPON_STATUS_REDEEMED
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await member.RedeemCoupon(redeem, metadata=(("authorization", "Bearer cpk_x.y"),))
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert error_info_of(err.value).reason
    finally:
        await server.stop(1)
        offload.shutdown()
