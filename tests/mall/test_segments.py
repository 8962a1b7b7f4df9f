"""Items reserved for marketing segments and tags: hidden from, and refused to, everyone else.

Segment assignments are written by hand into member_segments, as the nightly recompute would."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest
import sqlalchemy as sa

from coalition.merchant.v1 import mall_pb2 as pb
from coalition.merchant.v1 import mall_pb2_grpc
from coalition_kernel.errors import CoalitionError, error_info_of
from merchant_node.ledger.schema import members
from merchant_node.ledger.service import NodeLedger
from merchant_node.mall import catalog, cross
from merchant_node.mall.catalog import Buyer
from merchant_node.mall.schema import mall_orders
from merchant_node.marketing.schema import member_segments
from tests.mall.support import (
    STAFF,
    available,
    coupon_item,
    member_md,
    member_with_points,
    start_mall,
    stock_left,
)


def segment(ledger: NodeLedger, member_id: str, name: str, tags: tuple[str, ...] = ()) -> None:
    with ledger.engine.begin() as conn:
        pk = conn.execute(
            sa.select(members.c.id).where(members.c.member_id == member_id)
        ).scalar_one()
        conn.execute(
            member_segments.insert().values(
                member_pk=pk,
                definitions_version=1,
                segment=name,
                r_score=3,
                f_score=3,
                m_score=3,
                tags="," + ",".join(tags) + "," if tags else "",
                computed_at=ledger.clock(),
            )
        )


def test_segment_and_tag_items_are_hidden_and_refused_outside_them(ledger, mall):
    for member_id in ("champ", "lapsed", "plain"):
        member_with_points(ledger, member_id, 2000)
    segment(ledger, "champ", "champions", ("tea_lover",))
    segment(ledger, "lapsed", "at_risk")  # "plain" has no segment yet
    mall.upsert_item("up-1", coupon_item(), "admin")
    mall.upsert_item("up-2", coupon_item("vip", segments=("champions", "loyal")), "admin")
    mall.upsert_item("up-3", coupon_item("tea", tags=("tea_lover",)), "admin")
    assert [i.item_id for i in mall.browse("champ")] == ["tea", "tea-coupon", "vip"]
    assert [i.item_id for i in mall.browse("lapsed")] == ["tea-coupon"]
    assert [i.item_id for i in mall.browse("plain")] == ["tea-coupon"]
    for member_id in ("lapsed", "plain"):
        for item_id in ("vip", "tea"):
            with pytest.raises(CoalitionError) as err:
                mall.buy(f"b-{member_id}-{item_id}", member_id, item_id, 1)
            assert err.value.reason == "ITEM_RESERVED"
            assert err.value.code == grpc.StatusCode.PERMISSION_DENIED
        assert available(ledger, member_id) == 2000
        assert ledger.balance(member_id).held_points == 0
    assert stock_left(ledger, "vip") == 10 and stock_left(ledger, "tea") == 10
    assert mall.buy("b-champ", "champ", "vip", 1).status == "fulfilled"
    assert mall.buy("b-champ-tea", "champ", "tea", 1).status == "fulfilled"
    assert {i.item_id: i.segments for i in mall.items()}["vip"] == ("champions", "loyal")


def test_cross_shop_reservation_step_refuses_outside_the_segment(ledger, mall):
    """Paying with another shop's points reserves the order here first: same check, nothing
    written (the exchange is never asked)."""
    member_with_points(ledger, "champ", 0)
    member_with_points(ledger, "plain", 0)
    segment(ledger, "champ", "champions")
    mall.upsert_item("up-1", coupon_item("vip", segments=("champions",)), "admin")
    with pytest.raises(CoalitionError) as err, ledger.engine.begin() as conn:
        cross.reserve(conn, ledger._context("x-plain"), "plain", "vip", 1, "tea")
    assert err.value.reason == "ITEM_RESERVED"
    with ledger.engine.begin() as conn:
        assert cross.reserve(conn, ledger._context("x-champ"), "champ", "vip", 1, "tea")[2]
        assert conn.execute(sa.select(sa.func.count()).select_from(mall_orders)).scalar() == 1


def test_segment_names_must_be_well_formed(ledger, mall):
    for bad in (coupon_item(segments=("",)), coupon_item(segments=("x" * 33,))):
        with pytest.raises(CoalitionError) as err:
            mall.upsert_item("up-bad", bad, "admin")
        assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(CoalitionError):
        mall.upsert_item("up-bad2", coupon_item(tags=("a b",)), "admin")
    assert mall.items() == []
    # A name no member carries yet is accepted: the item is reserved for no one until then.
    mall.upsert_item("up-ok", coupon_item(segments=("not_defined_yet",)), "admin")


def test_segment_and_tier_must_both_hold():
    item = coupon_item(tiers=("gold",), segments=("champions",), tags=("a", "b"))
    now = datetime(2026, 3, 1, tzinfo=UTC)
    assert catalog.visible(item, Buyer("m", "gold", 0, "champions", ("b",)), now)
    assert not catalog.visible(item, Buyer("m", "silver", 0, "champions", ("b",)), now)
    assert not catalog.visible(item, Buyer("m", "gold", 0, "loyal", ("b",)), now)
    assert not catalog.visible(item, Buyer("m", "gold", 0, "champions", ("c",)), now)


@pytest.mark.asyncio
async def test_segment_reservation_through_the_real_server(ledger):
    member_with_points(ledger, "champ", 2000)
    member_with_points(ledger, "plain", 2000)
    segment(ledger, "champ", "champions")
    async with (
        start_mall(ledger, http=False) as running,
        grpc.aio.insecure_channel(running.target) as channel,
    ):
        admin = mall_pb2_grpc.MallAdminServiceStub(channel)
        item = pb.Item(
            item_id="vip",
            kind=pb.ITEM_KIND_COUPON,
            title="VIP coupon",
            price_points=500,
            stock_total=5,
            coupon_value_fen=500,
            coupon_valid_days=30,
            segments=["champions"],
        )
        saved = await admin.UpsertItem(
            pb.UpsertItemRequest(request_id="up-1", item=item), metadata=STAFF
        )
        assert list(saved.item.segments) == ["champions"]
        stub = mall_pb2_grpc.MallServiceStub(channel)
        shelf = await stub.BrowseItems(
            pb.BrowseItemsRequest(), metadata=member_md(running.mall, "plain")
        )
        assert list(shelf.items) == []
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.BuyItem(
                pb.BuyItemRequest(request_id="b-1", item_id="vip"),
                metadata=member_md(running.mall, "plain"),
            )
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        info = error_info_of(err.value)
        assert info is not None and info.reason == "ITEM_RESERVED"
        assert available(ledger, "plain") == 2000
        shelf = await stub.BrowseItems(
            pb.BrowseItemsRequest(), metadata=member_md(running.mall, "champ")
        )
        assert [i.item_id for i in shelf.items] == ["vip"]
        order = await stub.BuyItem(
            pb.BuyItemRequest(request_id="b-2", item_id="vip"),
            metadata=member_md(running.mall, "champ"),
        )
        assert order.order.order_id
    assert stock_left(ledger, "vip") == 4
