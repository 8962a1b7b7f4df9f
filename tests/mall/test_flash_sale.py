"""Flash sale on PostgreSQL through the real server: 100 items, 1,000 concurrent buyers."""

from __future__ import annotations

import asyncio
from collections import Counter

import grpc
import pytest
import sqlalchemy as sa

from coalition.merchant.v1 import mall_pb2 as pb
from coalition.merchant.v1 import mall_pb2_grpc
from coalition_kernel.errors import error_info_of
from merchant_node.mall.schema import mall_coupons, mall_orders
from tests.conftest import open_test_ledger
from tests.mall.support import (
    available,
    coupon_item,
    member_md,
    member_with_points,
    start_mall,
    stock_left,
)

MEMBERS, TRIES, STOCK = 500, 2, 100


@pytest.mark.asyncio
async def test_flash_sale_sells_exactly_the_stock_and_refuses_the_rest_cleanly(pg_url, clock):
    ledger = open_test_ledger(pg_url, clock, pool_size=16)
    try:
        members = [member_with_points(ledger, f"fan-{n:03d}", 1000) for n in range(MEMBERS)]
        async with start_mall(ledger, http=False) as running:
            running.mall.upsert_item(
                "up-1", coupon_item("lantern", stock=STOCK, per_member_limit=1), "admin"
            )
            tokens = {m: member_md(running.mall, m) for m in members}
            async with grpc.aio.insecure_channel(running.target) as channel:
                stub = mall_pb2_grpc.MallServiceStub(channel)

                async def buy(member: str, n: int) -> tuple[str, str]:
                    request = pb.BuyItemRequest(request_id=f"{member}-{n}", item_id="lantern")
                    try:
                        res = await stub.BuyItem(request, metadata=tokens[member], timeout=120)
                        return member, pb.OrderStatus.Name(res.order.status)
                    except grpc.aio.AioRpcError as err:
                        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, err
                        return member, error_info_of(err).reason

                results = await asyncio.gather(*(buy(m, n) for n in range(TRIES) for m in members))
        outcomes = Counter(r for _, r in results)
        assert outcomes["ORDER_STATUS_FULFILLED"] == STOCK
        assert set(outcomes) <= {"ORDER_STATUS_FULFILLED", "OUT_OF_STOCK", "LIMIT_REACHED"}
        winners = Counter(m for m, r in results if r == "ORDER_STATUS_FULFILLED")
        assert max(winners.values()) == 1  # no member above its limit
        assert stock_left(ledger, "lantern") == 0
        for member in members:
            expected = 1000 - 500 * winners[member]
            assert available(ledger, member) == expected, member  # losers untouched
            assert ledger.balance(member).held_points == 0
        with ledger.engine.connect() as conn:
            assert (
                conn.execute(sa.select(sa.func.count()).select_from(mall_orders)).scalar() == STOCK
            )
            assert (
                conn.execute(sa.select(sa.func.count()).select_from(mall_coupons)).scalar() == STOCK
            )
        assert ledger.audit() == []
    finally:
        ledger.engine.dispose()
