"""An order's life, each step inside one transaction: buy (stock reserved and points held
together), pay, fulfil, cancel, lapse, refund.

Locks are taken in one order everywhere — the member's row, then the item's — so concurrent
orders queue per member and per item and never deadlock. Stock is taken last, by one guarded
UPDATE, just before commit: the item's row is locked for as short a time as possible, and a
buyer who finds the shelf empty rolls back with its points untouched.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import Connection, select, update

from coalition_kernel.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from merchant_node.ledger.store import Context, lock_member
from merchant_node.mall import catalog, points, store
from merchant_node.mall.catalog import Buyer
from merchant_node.mall.schema import mall_coupons, mall_orders

# Statuses a paid order can be refunded from; an unpaid one is cancelled or lapses instead.
PAID = ("confirmed", "fulfilled")


def _out_of_stock(item_id: str) -> FailedPrecondition:
    return FailedPrecondition("OUT_OF_STOCK", f"item {item_id} is sold out")


def buy(
    conn: Connection,
    ctx: Context,
    member_id: str,
    item_id: str,
    quantity: int,
    payment_window: timedelta,
) -> store.OrderView:
    item = store.get_item(conn, item_id)
    if item.stock_left < quantity:  # sold out: refused before any lock is taken
        raise _out_of_stock(item_id)
    member = lock_member(conn, member_id=member_id)
    ctx = ctx.after_lock()
    needs_rank = item.priority_top_n and item.available_from and ctx.now < item.available_from
    buyer = store.buyer(conn, member_id) if needs_rank else Buyer(member_id, member.tier or "", 0)
    if item.segments or item.tags:  # only reserved items pay for the marketing read
        buyer = store.with_audience(conn, buyer)
    catalog.check_on_sale(item, buyer, ctx.now)
    day = catalog.local_day(ctx.now)
    catalog.check_limits(item, quantity, *store.bought(conn, member_id, item_id, day))
    order_id = f"mo-{secrets.token_hex(10)}"
    hold_ref = f"mall-{order_id}"
    total_points, cash = item.price_points * quantity, item.price_fen * quantity
    ttl = int(payment_window.total_seconds()) if cash else 60
    hold = points.hold_points(conn, ctx, hold_ref, member_id, total_points, ttl)
    conn.execute(
        mall_orders.insert().values(
            order_id=order_id,
            member_pk=member.id,
            member_id=member_id,
            item_id=item_id,
            quantity=quantity,
            points=total_points,
            cash_fen=cash,
            status="awaiting_payment",
            hold_ref=hold_ref,
            issuer_id="",
            local_day=day,
            created_at=ctx.now,
            pay_by=hold.expires_at if cash else None,
        )
    )
    if not cash:
        points.spend_hold(conn, ctx, hold_ref)
        mark_paid(conn, ctx, order_id, "")
    if not store.take_stock(conn, item_id, quantity):
        raise _out_of_stock(item_id)
    return store.order_view(conn, order_id)


def mark_paid(conn: Connection, ctx: Context, order_id: str, payment_ref: str) -> None:
    """Marks a paid order confirmed; a coupon or card is fulfilled at once by its codes."""
    order = store.get_order(conn, order_id)
    item = store.get_item(conn, order.item_id)
    status = "confirmed"
    if item.kind in catalog.CODE_KINDS:
        issue_coupons(conn, ctx, order.member_id, item, order.quantity, order_id=order_id)
        status = "fulfilled"
    store.set_order(conn, order_id, status=status, payment_ref=payment_ref or None)


def issue_coupons(
    conn: Connection,
    ctx: Context,
    member_id: str,
    item: catalog.Item,
    count: int,
    *,
    order_id: str | None = None,
    draw_id: str | None = None,
    value_fen: int | None = None,
    valid_days: int | None = None,
) -> list[str]:
    days = valid_days if valid_days is not None else item.coupon_valid_days
    codes = [store.new_coupon_code() for _ in range(count)]
    conn.execute(
        mall_coupons.insert(),
        [
            dict(
                code=code,
                member_id=member_id,
                item_id=item.item_id,
                order_id=order_id,
                draw_id=draw_id,
                value_fen=item.coupon_value_fen if value_fen is None else value_fen,
                min_spend_fen=item.coupon_min_spend_fen,
                status="issued",
                issued_at=ctx.now,
                expires_at=ctx.now + timedelta(days=days),
            )
            for code in codes
        ],
    )
    return codes


def _locked_order(conn: Connection, ctx: Context, order_id: str):  # type: ignore[no-untyped-def]
    """The order re-read under its member's lock (the lock every step of an order takes)."""
    order = store.get_order(conn, order_id)
    if order.member_pk is not None:
        lock_member(conn, pk=order.member_pk)
    return store.get_order(conn, order_id, lock=True), ctx.after_lock()


def confirm_payment(
    conn: Connection, ctx: Context, order_id: str, payment_ref: str, amount_fen: int
) -> store.OrderView:
    order, ctx = _locked_order(conn, ctx, order_id)
    if order.status in PAID:
        if order.payment_ref == payment_ref:
            return store.order_view(conn, order_id)
        raise FailedPrecondition("ORDER_ALREADY_PAID", f"order {order_id} is already paid")
    if order.status != "awaiting_payment":
        raise FailedPrecondition(
            f"ORDER_{order.status.upper()}", f"order {order_id} is {order.status}; not payable"
        )
    if amount_fen != order.cash_fen:
        raise InvalidArgument(
            "AMOUNT_MISMATCH", f"order {order_id} is due {order.cash_fen} fen, not {amount_fen}"
        )
    if order.pay_by <= ctx.now or not points.spend_hold(conn, ctx, order.hold_ref):
        raise FailedPrecondition(
            "ORDER_LAPSED", f"order {order_id} was not paid by {order.pay_by.isoformat()}"
        )
    mark_paid(conn, ctx, order_id, payment_ref)
    return store.order_view(conn, order_id)


def cancel(conn: Connection, ctx: Context, order_id: str, member_id: str) -> store.OrderView:
    order, ctx = _locked_order(conn, ctx, order_id)
    if order.member_id != member_id:
        raise PermissionDenied("NOT_YOUR_ORDER", f"order {order_id} is another member's")
    if order.status == "cancelled":
        return store.order_view(conn, order_id)
    if order.status != "awaiting_payment":
        raise FailedPrecondition(
            "ORDER_NOT_CANCELLABLE",
            f"order {order_id} is {order.status}: only an unpaid order is cancelled",
        )
    _release(conn, ctx, order, "cancelled")
    return store.order_view(conn, order_id)


def _release(conn: Connection, ctx: Context, order, status: str) -> None:  # type: ignore[no-untyped-def]
    points.release_hold(conn, ctx, order.hold_ref)
    store.put_back_stock(conn, order.item_id, order.quantity)
    store.set_order(conn, order.order_id, status=status, finished_at=ctx.now)


def fulfil(conn: Connection, ctx: Context, order_id: str, note: str) -> store.OrderView:
    order, ctx = _locked_order(conn, ctx, order_id)
    if order.status == "fulfilled":
        return store.order_view(conn, order_id)
    if order.status != "confirmed":
        raise FailedPrecondition(
            "ORDER_NOT_PAID", f"order {order_id} is {order.status}: only a paid order is fulfilled"
        )
    store.set_order(conn, order_id, status="fulfilled", fulfilment_note=note, finished_at=ctx.now)
    return store.order_view(conn, order_id)


def refund(conn: Connection, ctx: Context, order_id: str) -> store.OrderView:
    """Points and stock back, coupons withdrawn, exactly once (a second refund changes nothing)."""
    order, ctx = _locked_order(conn, ctx, order_id)
    if order.status == "refunded":
        return store.order_view(conn, order_id)
    if order.status not in PAID:
        raise FailedPrecondition(
            "ORDER_NOT_PAID", f"order {order_id} is {order.status}: nothing was paid to refund"
        )
    if order.issuer_id:
        raise FailedPrecondition(
            "CROSS_REFUND_UNSUPPORTED",
            f"order {order_id} was paid with {order.issuer_id}'s points through the exchange, "
            "which has no refund of a captured redemption yet",
        )
    redeemed = conn.execute(
        select(mall_coupons.c.code).where(
            mall_coupons.c.order_id == order_id, mall_coupons.c.status == "redeemed"
        )
    ).first()
    if redeemed is not None:
        raise FailedPrecondition(
            "COUPON_ALREADY_REDEEMED", f"order {order_id}'s coupon was used at the till"
        )
    conn.execute(
        update(mall_coupons)
        .where(mall_coupons.c.order_id == order_id, mall_coupons.c.status == "issued")
        .values(status="withdrawn")
    )
    points.return_spent(conn, ctx, order.hold_ref)
    store.put_back_stock(conn, order.item_id, order.quantity)
    store.set_order(conn, order_id, status="refunded", finished_at=ctx.now)
    return store.order_view(conn, order_id)


def due_orders(conn: Connection, now: datetime, batch: int = 100) -> list[str]:
    """Unpaid orders past their pay_by (lapsed by their timestamps, not yet released)."""
    return list(
        conn.execute(
            select(mall_orders.c.order_id)
            .where(mall_orders.c.status == "awaiting_payment", mall_orders.c.pay_by <= now)
            .order_by(mall_orders.c.pay_by)
            .limit(batch)
        ).scalars()
    )


def lapse(conn: Connection, ctx: Context, order_id: str) -> bool:
    """Releases one unpaid order past its pay_by (one per transaction: one member's lock at a
    time, like every request); False if it was paid or released meanwhile."""
    order, ctx = _locked_order(conn, ctx, order_id)
    if order.status != "awaiting_payment" or order.pay_by > ctx.now:
        return False
    _release(conn, ctx, order, "lapsed")
    return True
