"""The mall report of one merchant: items sold, points and cash taken, stock left, coupons
issued/redeemed/expired and the liability of those still redeemable. The district's report
is the sum of its merchants' (each node answers its own; member-level data stays at the node)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, and_, case, func, select

from coalition.merchant.v1 import mall_pb2 as pb
from coalition_kernel.db import run_in_transaction
from merchant_node.ledger.schema import cross_redemptions
from merchant_node.mall.schema import lottery_draws, mall_coupons, mall_items, mall_orders

SOLD = ("confirmed", "fulfilled")  # paid and not refunded


def _window(column, start: datetime | None, end: datetime | None):  # type: ignore[no-untyped-def]
    conds = []
    if start is not None:
        conds.append(column >= start)
    if end is not None:
        conds.append(column < end)
    return and_(True, *conds)


def build(
    conn: Connection, now: datetime, start: datetime | None, end: datetime | None
) -> pb.GetMallReportResponse:
    o = mall_orders
    sold = dict(
        (r.item_id, r)
        for r in conn.execute(
            select(
                o.c.item_id,
                func.sum(o.c.quantity).label("sold"),
                func.sum(case((o.c.issuer_id == "", o.c.points), else_=0)).label("points"),
                func.sum(o.c.cash_fen).label("cash"),
            )
            .where(o.c.status.in_(SOLD), _window(o.c.created_at, start, end))
            .group_by(o.c.item_id)
        )
    )
    lines = []
    for item in conn.execute(
        select(mall_items.c.item_id, mall_items.c.stock_left).order_by(mall_items.c.item_id)
    ):
        r = sold.get(item.item_id)
        lines.append(
            pb.ItemReportLine(
                item_id=item.item_id,
                sold=int(r.sold) if r else 0,
                points_taken=int(r.points) if r else 0,
                cash_taken_fen=int(r.cash) if r else 0,
                stock_left=item.stock_left,
            )
        )
    c = mall_coupons
    issued_window = _window(c.c.issued_at, start, end)

    def count(*where) -> int:  # type: ignore[no-untyped-def]
        return int(conn.execute(select(func.count()).select_from(c).where(*where)).scalar_one())

    liability = conn.execute(
        select(func.coalesce(func.sum(c.c.value_fen), 0)).where(
            c.c.status == "issued", c.c.expires_at > now
        )
    ).scalar_one()
    lottery_points = conn.execute(
        select(func.coalesce(func.sum(lottery_draws.c.points), 0)).where(
            _window(lottery_draws.c.at, start, end)
        )
    ).scalar_one()
    cross = conn.execute(
        select(func.count(), func.coalesce(func.sum(cross_redemptions.c.value_fen), 0))
        .select_from(o.join(cross_redemptions, cross_redemptions.c.order_id == o.c.order_id))
        .where(
            o.c.status.in_(SOLD),
            o.c.issuer_id != "",
            cross_redemptions.c.status == "captured",
            _window(o.c.created_at, start, end),
        )
    ).one()
    return pb.GetMallReportResponse(
        items=lines,
        cross_shop_orders=int(cross[0]),
        cross_shop_value_fen=int(cross[1]),
        points_taken=sum(line.points_taken for line in lines),
        cash_taken_fen=sum(line.cash_taken_fen for line in lines),
        coupons_issued=count(issued_window),
        coupons_redeemed=count(issued_window, c.c.status == "redeemed"),
        coupons_expired=count(issued_window, c.c.status == "issued", c.c.expires_at <= now),
        coupon_liability_fen=int(liability),
        lottery_points_taken=int(lottery_points),
    )


def report_message(mall, start: datetime | None, end: datetime | None) -> pb.GetMallReportResponse:  # type: ignore[no-untyped-def]
    report = run_in_transaction(mall.engine, lambda conn: build(conn, mall.now, start, end))
    report.merchant_id = mall.settings.merchant_id
    return report


def district(reports: list[pb.GetMallReportResponse]) -> pb.GetMallReportResponse:
    """The district's report: every merchant's items (as merchant/item) and the sums."""
    out = pb.GetMallReportResponse(merchant_id="district")
    for r in reports:
        for line in r.items:
            added = out.items.add()
            added.CopyFrom(line)
            added.item_id = f"{r.merchant_id}/{line.item_id}"
        for name in (
            "points_taken",
            "cash_taken_fen",
            "coupons_issued",
            "coupons_redeemed",
            "coupons_expired",
            "coupon_liability_fen",
            "lottery_points_taken",
            "cross_shop_orders",
            "cross_shop_value_fen",
        ):
            setattr(out, name, getattr(out, name) + getattr(r, name))
    return out
