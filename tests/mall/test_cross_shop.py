"""Buying at the noodle shop's mall with tea-house points: quote → authorize → capture through
the exchange with the member's consent, in the day's settlement and in both merchants' verified
shares. A real exchange and real nodes on loopback."""

from __future__ import annotations

import grpc
import pytest
import sqlalchemy as sa

from coalition.merchant.v1 import mall_pb2 as pb
from coalition.merchant.v1 import mall_pb2_grpc
from coalition_kernel.errors import error_info_of
from coalition_kernel.rpc import Offload
from merchant_node.acquirer import CrossRedemptions
from merchant_node.ledger.commands import Enroll
from merchant_node.ledger.schema import cross_redemptions
from merchant_node.mall.report import report_message
from settlement.settle import settle_period
from tests.exchange.test_cross_redemption import member_with_points
from tests.exchange.test_net_debit_cap import PERIOD
from tests.exchange.test_settlement_proof import check, fetch, link_of, write_batch
from tests.mall.support import coupon_item, member_md, start_mall, stock_left


@pytest.mark.asyncio
async def test_a_mall_purchase_with_another_shops_points_is_cleared_and_settled(coalition):
    tea, noodles = await member_with_points(coalition), coalition["noodles"]
    noodles.ledger.enroll(Enroll("enr-m1", "m1"))  # the member of noodles' mini-program
    link = link_of(coalition, "noodles")
    offload = Offload(4)
    cross = CrossRedemptions(noodles.ledger.engine, link, offload, coalition.clock)
    try:
        async with start_mall(noodles.ledger, http=False, cross=cross) as running:
            running.mall.upsert_item("up-1", coupon_item("noodle-voucher", stock=3), "admin")
            md = member_md(running.mall, "m1")
            async with grpc.aio.insecure_channel(running.target) as channel:
                stub = mall_pb2_grpc.MallServiceStub(channel)
                coalition.clock.advance(seconds=31)
                wrong = pb.BuyItemRequest(
                    request_id="x-0",
                    item_id="noodle-voucher",
                    issuer_id="tea",
                    consent_code="000000",
                    consent_max_points=500,
                )
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await stub.BuyItem(wrong, metadata=md)
                assert error_info_of(err.value).reason == "CONSENT_INVALID"
                assert stock_left(noodles.ledger, "noodle-voucher") == 3  # given back
                code = tea.wallet_code("m1", coalition.clock, "noodles", 500)
                buy = pb.BuyItemRequest(
                    request_id="x-1",
                    item_id="noodle-voucher",
                    issuer_id="tea",
                    consent_code=code,
                    consent_max_points=500,
                )
                order = (await stub.BuyItem(buy, metadata=md)).order
                again = (await stub.BuyItem(buy, metadata=md)).order  # a retry
        assert again == order
        assert (order.status, order.issuer_id, order.points) == (
            pb.ORDER_STATUS_FULFILLED,
            "tea",
            500,
        )
        assert len(order.coupon_codes) == 1
        assert stock_left(noodles.ledger, "noodle-voucher") == 2
        balance = tea.ledger.balance("m1")
        assert (balance.available_points, balance.held_points) == (500, 0)
        assert noodles.ledger.balance("m1").available_points == 0  # noodles' points untouched
        with noodles.ledger.engine.connect() as conn:
            rows = conn.execute(sa.select(cross_redemptions)).all()
        assert [(r.issuer_id, r.points, r.status, r.order_id) for r in rows] == [
            ("tea", 500, "captured", order.order_id)
        ]
        mall_report = report_message(running.mall, None, None)
        assert (mall_report.cross_shop_orders, mall_report.cross_shop_value_fen) == (1, 500)
        assert mall_report.points_taken == 0  # none of noodles' own points
        assert [(i.item_id, i.sold) for i in mall_report.items] == [("noodle-voucher", 1)]
        report = settle_period(coalition.exchange.engine, PERIOD)
        assert report.record_count == 1
        write_batch(coalition, report, "closed")
        nets = {line.party: line.net_fen for line in report.lines}
        assert nets["tea"] == -500 and nets["noodles"] == 495  # 1% fee to the operator
        for merchant_id in ("tea", "noodles"):
            result = check(coalition, merchant_id, await fetch(coalition, merchant_id))
            assert (result.problems, result.entries) == ([], 1), merchant_id
        assert tea.ledger.audit() == [] and noodles.ledger.audit() == []
    finally:
        await link.close()
        offload.shutdown()
