"""Messages of mall.proto to and from the mall's domain objects."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from coalition.merchant.v1 import mall_pb2 as pb
from coalition_kernel.errors import InvalidArgument
from merchant_node.mall import coupons, draws, store
from merchant_node.mall.catalog import Item

KINDS = {
    "pickup": pb.ITEM_KIND_PICKUP,
    "delivery": pb.ITEM_KIND_DELIVERY,
    "coupon": pb.ITEM_KIND_COUPON,
    "virtual_card": pb.ITEM_KIND_VIRTUAL_CARD,
}
_KIND_NAMES = {v: k for k, v in KINDS.items()}
ORDER_STATUS = {
    "awaiting_payment": pb.ORDER_STATUS_AWAITING_PAYMENT,
    "confirmed": pb.ORDER_STATUS_CONFIRMED,
    "fulfilled": pb.ORDER_STATUS_FULFILLED,
    "cancelled": pb.ORDER_STATUS_CANCELLED,
    "lapsed": pb.ORDER_STATUS_LAPSED,
    "refunded": pb.ORDER_STATUS_REFUNDED,
}
COUPON_STATUS = {
    "issued": pb.COUPON_STATUS_ISSUED,
    "redeemed": pb.COUPON_STATUS_REDEEMED,
    "expired": pb.COUPON_STATUS_EXPIRED,
    "withdrawn": pb.COUPON_STATUS_WITHDRAWN,
}
_MIN, _MAX = datetime(2000, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC)


def ts(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    out = Timestamp()
    out.FromDatetime(value)
    return out


def time_of(msg, field: str) -> datetime | None:  # type: ignore[no-untyped-def]
    if not msg.HasField(field):
        return None
    stamp = getattr(msg, field)
    try:
        value = stamp.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError) as exc:
        raise InvalidArgument("MALFORMED_TIMESTAMP", f"{field} is not a valid time") from exc
    if not _MIN <= value < _MAX or not 0 <= stamp.nanos < 10**9:
        raise InvalidArgument("MALFORMED_TIMESTAMP", f"{field} is outside 2000-2200")
    return value


def item_in(msg: pb.Item) -> Item:
    if msg.kind not in _KIND_NAMES:
        raise InvalidArgument("BAD_ITEM", "kind must be PICKUP, DELIVERY, COUPON or VIRTUAL_CARD")
    return Item(
        item_id=msg.item_id,
        kind=_KIND_NAMES[msg.kind],
        title=msg.title,
        description=msg.description,
        price_points=msg.price_points,
        price_fen=msg.price_fen,
        stock_total=msg.stock_total,
        per_member_limit=msg.per_member_limit,
        per_member_daily_limit=msg.per_member_daily_limit,
        available_from=time_of(msg, "available_from"),
        available_until=time_of(msg, "available_until"),
        tiers=tuple(msg.tiers),
        priority_hours=msg.priority_hours,
        priority_top_n=msg.priority_top_n,
        priority_tiers=tuple(msg.priority_tiers),
        coupon_value_fen=msg.coupon_value_fen,
        coupon_valid_days=msg.coupon_valid_days,
        segments=tuple(msg.segments),
        tags=tuple(msg.tags),
        coupon_min_spend_fen=msg.coupon_min_spend_fen,
    )


def item_out(item: Item) -> pb.Item:
    return pb.Item(
        item_id=item.item_id,
        kind=KINDS[item.kind],
        title=item.title,
        description=item.description,
        price_points=item.price_points,
        price_fen=item.price_fen,
        stock_total=item.stock_total,
        stock_left=item.stock_left,
        per_member_limit=item.per_member_limit,
        per_member_daily_limit=item.per_member_daily_limit,
        available_from=ts(item.available_from),
        available_until=ts(item.available_until),
        tiers=list(item.tiers),
        priority_hours=item.priority_hours,
        priority_top_n=item.priority_top_n,
        priority_tiers=list(item.priority_tiers),
        coupon_value_fen=item.coupon_value_fen,
        coupon_valid_days=item.coupon_valid_days,
        active=item.active,
        segments=list(item.segments),
        tags=list(item.tags),
        coupon_min_spend_fen=item.coupon_min_spend_fen,
    )


def order_out(o: store.OrderView) -> pb.Order:
    return pb.Order(
        order_id=o.order_id,
        member_id=o.member_id,
        item_id=o.item_id,
        quantity=o.quantity,
        points=o.points,
        cash_fen=o.cash_fen,
        status=ORDER_STATUS[o.status],
        created_at=ts(o.created_at),
        pay_by=ts(o.pay_by),
        payment_ref=o.payment_ref,
        fulfilment_note=o.fulfilment_note,
        coupon_codes=o.coupon_codes,
        issuer_id=o.issuer_id,
    )


def coupon_out(c: coupons.CouponView) -> pb.Coupon:
    return pb.Coupon(
        code=c.code,
        item_id=c.item_id,
        order_id=c.order_id,
        value_fen=c.value_fen,
        status=COUPON_STATUS[c.status],
        issued_at=ts(c.issued_at),
        expires_at=ts(c.expires_at),
        redeemed_at=ts(c.redeemed_at),
        draw_id=c.draw_id,
        min_spend_fen=c.min_spend_fen,
    )


def lottery_in(msg: pb.Lottery) -> draws.LotteryView:
    opens, closes = time_of(msg, "opens_at"), time_of(msg, "closes_at")
    if opens is None or closes is None:
        raise InvalidArgument("MISSING_FIELD", "opens_at and closes_at are required")
    return draws.LotteryView(
        lottery_id=msg.lottery_id,
        title=msg.title,
        price_points=msg.price_points,
        total_weight=msg.total_weight,
        prizes=[
            draws.PrizeView(
                p.prize_id, p.title, p.weight, p.stock, p.stock, p.value_fen, p.valid_days
            )
            for p in msg.prizes
        ],
        budget_fen=msg.budget_fen,
        awarded_fen=0,
        commitment="",
        seed="",
        opens_at=opens,
        closes_at=closes,
    )


def lottery_out(v: draws.LotteryView) -> pb.Lottery:
    return pb.Lottery(
        lottery_id=v.lottery_id,
        title=v.title,
        price_points=v.price_points,
        total_weight=v.total_weight,
        prizes=[
            pb.Prize(
                prize_id=p.prize_id,
                title=p.title,
                weight=p.weight,
                stock=p.stock,
                stock_left=p.stock_left,
                value_fen=p.value_fen,
                valid_days=p.valid_days,
            )
            for p in v.prizes
        ],
        budget_fen=v.budget_fen,
        awarded_fen=v.awarded_fen,
        commitment=v.commitment,
        seed=v.seed,
        opens_at=ts(v.opens_at),
        closes_at=ts(v.closes_at),
        recipe="lottery-v1",
    )
