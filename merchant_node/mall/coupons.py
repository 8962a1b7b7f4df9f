"""Coupons and vouchers: redeemed once at the till, expired by their timestamp, a reminder
before expiry through the notifications outbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Row, select, update

from coalition_kernel.errors import FailedPrecondition, InvalidArgument, NotFound
from merchant_node.ledger.schema import members
from merchant_node.mall import store
from merchant_node.mall.schema import mall_coupons
from merchant_node.notify.outbox import NewNotification, enqueue

REMINDER_KIND = "coupon_expiry"


@dataclass(frozen=True)
class CouponView:
    code: str
    item_id: str
    order_id: str
    draw_id: str
    value_fen: int
    status: str  # issued, redeemed, withdrawn, or expired (issued, past expires_at)
    issued_at: datetime
    expires_at: datetime
    redeemed_at: datetime | None
    member_id: str
    min_spend_fen: int = 0


def view(row: Row, now: datetime) -> CouponView:
    status = row.status
    if status == "issued" and row.expires_at <= now:
        status = "expired"
    return CouponView(
        row.code,
        row.item_id,
        row.order_id or "",
        row.draw_id or "",
        row.value_fen,
        status,
        row.issued_at,
        row.expires_at,
        row.redeemed_at,
        row.member_id,
        row.min_spend_fen,
    )


def redeem(
    conn: Connection, now: datetime, code: str, till_id: str, order_amount_fen: int = 0
) -> CouponView:
    """One guarded UPDATE: of two tills presenting the same code at once, one row changes.
    An order below the coupon's minimum spend changes nothing (MIN_SPEND_NOT_MET)."""
    code = store.normalize_code(code)
    if len(code) != store.CODE_LENGTH:
        raise InvalidArgument("MALFORMED_CODE", f"a coupon code has {store.CODE_LENGTH} letters")
    won = conn.execute(
        update(mall_coupons)
        .where(
            mall_coupons.c.code == code,
            mall_coupons.c.status == "issued",
            mall_coupons.c.expires_at > now,
            mall_coupons.c.min_spend_fen <= order_amount_fen,
        )
        .values(status="redeemed", redeemed_at=now, till_id=till_id)
    ).rowcount
    row = conn.execute(select(mall_coupons).where(mall_coupons.c.code == code)).first()
    if row is None:
        raise NotFound("COUPON_NOT_FOUND", "no such coupon code at this merchant")
    if won == 1:
        return view(row, now)
    current = view(row, now)
    if current.status == "issued":  # unredeemed and unexpired: only the amount held it back
        raise FailedPrecondition(
            "MIN_SPEND_NOT_MET",
            f"coupon needs an order of at least {row.min_spend_fen} fen; "
            f"this order is {order_amount_fen} fen",
            min_spend_fen=str(row.min_spend_fen),
            order_amount_fen=str(order_amount_fen),
        )
    if current.status == "redeemed":
        raise FailedPrecondition(
            "COUPON_ALREADY_REDEEMED",
            f"coupon was redeemed at {row.redeemed_at.isoformat()} (till {row.till_id})",
        )
    if current.status == "expired":
        raise FailedPrecondition(
            "COUPON_EXPIRED", f"coupon expired at {row.expires_at.isoformat()}"
        )
    raise FailedPrecondition("COUPON_WITHDRAWN", "coupon was withdrawn by its order's refund")


def of_member(conn: Connection, member_id: str, now: datetime) -> list[CouponView]:
    rows = conn.execute(
        select(mall_coupons)
        .where(mall_coupons.c.member_id == member_id)
        .order_by(mall_coupons.c.issued_at.desc(), mall_coupons.c.code)
        .limit(200)
    ).all()
    return [view(r, now) for r in rows]


def enqueue_reminders(conn: Connection, now: datetime, days_before: int, channel: str) -> int:
    """A reminder for each issued coupon expiring within `days_before` days, once per coupon
    (the outbox's dedupe key), to be delivered by the node's notification dispatcher."""
    rows = conn.execute(
        select(mall_coupons, members.c.id.label("member_pk"))
        .join(members, members.c.member_id == mall_coupons.c.member_id)
        .where(
            mall_coupons.c.status == "issued",
            mall_coupons.c.expires_at > now,
            mall_coupons.c.expires_at <= now + timedelta(days=days_before),
        )
    ).all()
    items = [
        NewNotification(
            dedupe_key=f"{REMINDER_KIND}:{r.code}",
            member_pk=r.member_pk,
            kind=REMINDER_KIND,
            payload={
                "member_id": r.member_id,
                "item_id": r.item_id,
                "code_last4": r.code[-4:],
                "value_fen": r.value_fen,
                "expires_at": r.expires_at.isoformat(),
            },
            channel=channel,
            next_attempt_at=now,
        )
        for r in rows
    ]
    return enqueue(conn, items, now)
