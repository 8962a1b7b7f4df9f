"""Coupons with a minimum spend (满200减50): the till passes the order amount; below the
threshold the coupon is refused with both figures and stays issued."""

from __future__ import annotations

import grpc
import pytest

from coalition.merchant.v1 import mall_pb2 as pb
from coalition.merchant.v1 import mall_pb2_grpc
from coalition_kernel.errors import CoalitionError, error_info_of
from tests.mall.support import STAFF, coupon_item, member_md, member_with_points, start_mall

MAN_200_JIAN_50 = coupon_item("m200j50", coupon_value_fen=5000, coupon_min_spend_fen=20000)


def test_a_coupon_below_its_minimum_spend_is_refused_and_stays_issued(ledger, mall):
    member_with_points(ledger, "m1", 2000)
    mall.upsert_item("up-1", MAN_200_JIAN_50, "admin")
    code = mall.buy("b1", "m1", "m200j50", 1).coupon_codes[0]
    assert [c.min_spend_fen for c in mall.coupons_of("m1")] == [20000]
    for n, amount in enumerate((0, 19999)):
        with pytest.raises(CoalitionError) as err:
            mall.redeem_coupon(f"r-low-{n}", code, "till-1", amount)
        assert err.value.reason == "MIN_SPEND_NOT_MET"
        assert err.value.metadata == {"min_spend_fen": "20000", "order_amount_fen": str(amount)}
        assert "20000" in err.value.message and str(amount) in err.value.message
    assert [c.status for c in mall.coupons_of("m1")] == ["issued"]
    assert mall.redeem_coupon("r-ok", code, "till-1", 20000).status == "redeemed"
    assert mall.redeem_coupon("r-ok", code, "till-1", 20000).status == "redeemed"  # a retry
    with pytest.raises(CoalitionError) as err:
        mall.redeem_coupon("r-again", code, "till-1", 50000)
    assert err.value.reason == "COUPON_ALREADY_REDEEMED"


def test_minimum_spend_is_validated_and_only_for_codes(ledger, mall):
    for bad in (
        coupon_item(coupon_min_spend_fen=-1),
        coupon_item(kind="pickup", coupon_valid_days=0, coupon_min_spend_fen=100),
    ):
        with pytest.raises(CoalitionError) as err:
            mall.upsert_item("up-bad", bad, "admin")
        assert err.value.reason == "BAD_ITEM"
    member_with_points(ledger, "m1", 2000)
    mall.upsert_item("up-1", coupon_item(), "admin")  # no minimum: the amount is not needed
    code = mall.buy("b1", "m1", "tea-coupon", 1).coupon_codes[0]
    with pytest.raises(CoalitionError) as err:
        mall.redeem_coupon("r-neg", code, "till-1", -5)
    assert err.value.reason == "BAD_AMOUNT"
    assert mall.redeem_coupon("r1", code, "till-1").status == "redeemed"


@pytest.mark.asyncio
async def test_minimum_spend_through_the_real_server(ledger):
    member_with_points(ledger, "m1", 2000)
    async with (
        start_mall(ledger, http=False) as running,
        grpc.aio.insecure_channel(running.target) as channel,
    ):
        running.mall.upsert_item("up-1", MAN_200_JIAN_50, "admin")
        stub = mall_pb2_grpc.MallServiceStub(channel)
        order = await stub.BuyItem(
            pb.BuyItemRequest(request_id="b-1", item_id="m200j50"),
            metadata=member_md(running.mall, "m1"),
        )
        code = order.order.coupon_codes[0]
        low = pb.RedeemCouponRequest(
            request_id="r-1", code=code, till_id="till-1", order_amount_fen=15000
        )
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.RedeemCoupon(low, metadata=STAFF)
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        info = error_info_of(err.value)
        assert info is not None and info.reason == "MIN_SPEND_NOT_MET"
        assert dict(info.metadata) == {"min_spend_fen": "20000", "order_amount_fen": "15000"}
        ok = pb.RedeemCouponRequest(
            request_id="r-2", code=code, till_id="till-1", order_amount_fen=23800
        )
        res = await stub.RedeemCoupon(ok, metadata=STAFF)
        assert res.coupon.status == pb.COUPON_STATUS_REDEEMED
        assert res.coupon.min_spend_fen == 20000
