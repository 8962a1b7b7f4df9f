"""Buying at this merchant's mall with another merchant's points: the exchange's quote →
authorize → capture with the member's consent (merchant_node/acquirer.py), cleared and settled
like any cross-shop redemption (the capture's clearing record is this merchant's receivable).

Three steps, each re-drivable by the same request id: (1) reserve — the order (id derived from
the request id) and its stock in one transaction, under the member's lock and limits; (2) the
exchange's authorize and capture, idempotent at the exchange by request ids derived from the
order; (3) mark the order paid and issue its codes. A refusal at (2) releases the stock and
cancels the order; a crash leaves an order awaiting payment that a retry finishes.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection

from coalition_kernel.db import run_in_transaction
from coalition_kernel.errors import CoalitionError, FailedPrecondition
from merchant_node.acquirer import CrossRedemptions
from merchant_node.ledger.commands import check_id, check_request_id
from merchant_node.ledger.store import Context, lock_member
from merchant_node.mall import catalog, orders, store
from merchant_node.mall.catalog import Buyer
from merchant_node.mall.schema import mall_orders


def order_id_for(request_id: str) -> str:
    return "mx-" + hashlib.sha256(request_id.encode()).hexdigest()[:24]


def reserve(
    conn: Connection, ctx: Context, member_id: str, item_id: str, quantity: int, issuer_id: str
) -> tuple[str, int, str]:
    """Step 1: (order id, its price in this merchant's points, its status)."""
    order_id = order_id_for(ctx.request_id or "")
    member = lock_member(conn, member_id=member_id)
    ctx = ctx.after_lock()
    existing = conn.execute(mall_orders.select().where(mall_orders.c.order_id == order_id)).first()
    if existing is not None:
        return order_id, existing.points, existing.status
    item = store.get_item(conn, item_id)
    if item.price_fen:
        raise FailedPrecondition(
            "CROSS_CASH_UNSUPPORTED", "points + cash items are paid with this shop's points"
        )
    buyer = Buyer(member_id, member.tier or "", 0)
    if item.segments or item.tags:
        buyer = store.with_audience(conn, buyer)
    catalog.check_on_sale(item, buyer, ctx.now)
    day = catalog.local_day(ctx.now)
    catalog.check_limits(item, quantity, *store.bought(conn, member_id, item_id, day))
    conn.execute(
        mall_orders.insert().values(
            order_id=order_id,
            member_pk=member.id,
            member_id=member_id,
            item_id=item_id,
            quantity=quantity,
            points=item.price_points * quantity,
            cash_fen=0,
            status="awaiting_payment",
            hold_ref=None,
            issuer_id=issuer_id,
            local_day=day,
            created_at=ctx.now,
            pay_by=None,
        )
    )
    if not store.take_stock(conn, item_id, quantity):
        raise FailedPrecondition("OUT_OF_STOCK", f"item {item_id} is sold out")
    return order_id, item.price_points * quantity, "awaiting_payment"


def settle_order(
    conn: Connection, ctx: Context, order_id: str, authorization_id: str, issuer_points: int
) -> store.OrderView:
    """Step 3: paid through the exchange; `points` becomes the issuer's points charged."""
    order = store.get_order(conn, order_id, lock=True)
    if order.status == "awaiting_payment":
        store.set_order(conn, order_id, authorization_id=authorization_id, points=issuer_points)
        orders.mark_paid(conn, ctx, order_id, authorization_id)
    return store.order_view(conn, order_id)


def abandon(conn: Connection, ctx: Context, order_id: str) -> None:
    order = store.get_order(conn, order_id, lock=True)
    if order.status == "awaiting_payment":
        store.put_back_stock(conn, order.item_id, order.quantity)
        store.set_order(conn, order_id, status="cancelled", finished_at=ctx.now)


async def buy_with_issuer(
    mall,  # type: ignore[no-untyped-def]
    cross: CrossRedemptions,
    request_id: str,
    member_id: str,
    item_id: str,
    quantity: int,
    issuer_id: str,
    consent_code: str,
    consent_max_points: int = 0,
) -> store.OrderView:
    check_request_id(request_id)
    check_id("item_id", item_id)
    check_id("issuer_id", issuer_id)
    quantity = catalog.check_quantity(quantity)
    ctx = mall._ctx(request_id)

    def work(conn: Connection):  # type: ignore[no-untyped-def]
        return reserve(conn, ctx, member_id, item_id, quantity, issuer_id)

    order_id, price_points, status = await mall.blocking(run_in_transaction, mall.engine, work)
    if status != "awaiting_payment":
        if status == "cancelled":
            raise FailedPrecondition("ORDER_CANCELLED", f"order {order_id} was refused before")
        return await mall.blocking(mall.order, order_id)
    value_fen = mall.ledger.rate.value_of_points(price_points)
    # Bound consent (H1's change) adds consent_max_points; 0 keeps the plain call.
    extra: dict[str, Any] = {"consent_max_points": consent_max_points} if consent_max_points else {}

    async def give_up() -> None:
        later = replace(ctx, now=mall.now)
        await mall.blocking(run_in_transaction, mall.engine, lambda c: abandon(c, later, order_id))

    try:
        auth = await cross.authorize(
            f"{order_id}-auth",
            issuer_id,
            member_id,
            order_id,
            0,
            value_fen,
            consent_code,
            "",
            **extra,
        )
    except CoalitionError:
        await give_up()
        raise
    try:
        record = await cross.capture(f"{order_id}-capture", auth.authorization_id)
    except CoalitionError:
        with contextlib.suppress(CoalitionError):  # else the issuer's hold lapses by itself
            await cross.void(f"{order_id}-void", auth.authorization_id)
        await give_up()
        raise
    done = replace(ctx, now=mall.now)
    return await mall.blocking(
        run_in_transaction,
        mall.engine,
        lambda c: settle_order(c, done, order_id, auth.authorization_id, record.points),
    )
