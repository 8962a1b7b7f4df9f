"""The mall's use of the ledger: points held by an order, spent when it is paid, given back by
a refund. Built on the ledger's holds, so an order's points are reserved (specific lots, under
the member's lock) in the same transaction as its stock.

A mall hold, once paid, is spent to REDEMPTION (points spent at this merchant), not to
CROSS_REDEMPTION: it carries no settlement period and no statement lists it. A refund gives the
points back to the lots the hold took them from (allocations.returned), latest expiry first.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, select, update

from merchant_node.ledger import domain
from merchant_node.ledger.commands import PlaceHold
from merchant_node.ledger.domain import Posting
from merchant_node.ledger.holds import HoldResult, expire_due_lots, place_hold, void_hold
from merchant_node.ledger.schema import allocations, holds, lots
from merchant_node.ledger.store import Context, lock_member, move_lots, post_journal

MAX_TTL_SECONDS = 7 * 24 * 3600


def hold_points(
    conn: Connection, ctx: Context, hold_ref: str, member_id: str, points: int, ttl_seconds: int
) -> HoldResult:
    """Locks the member and holds `points` (INSUFFICIENT_POINTS if short): no consent code, the
    member is spending at this merchant through its own authenticated channel."""
    cmd = PlaceHold(ctx.request_id or hold_ref, hold_ref, member_id, points, ttl_seconds)
    return place_hold(conn, cmd, ctx, require_consent=False)


def spend_hold(conn: Connection, ctx: Context, hold_ref: str) -> bool:
    """Spends a pending, unexpired hold to REDEMPTION; False if it lapsed (or was released)."""
    hold = conn.execute(select(holds).where(holds.c.hold_ref == hold_ref)).one()
    if hold.status != "pending" or hold.expires_at <= ctx.now:
        return False
    conn.execute(
        update(holds).where(holds.c.id == hold.id).values(status="posted", finished_at=ctx.now)
    )
    postings = [
        Posting(domain.MEMBER_HELD, -hold.points, hold.member_pk),
        Posting(domain.REDEMPTION, hold.points),
    ]
    post_journal(conn, ctx, domain.REDEEM, postings, member_pk=hold.member_pk, order_id=hold_ref)
    return True


def release_hold(conn: Connection, ctx: Context, hold_ref: str) -> None:
    """Gives a pending hold's points back (already lapsed or released: nothing to do)."""
    void_hold(conn, hold_ref, ctx)


def return_spent(conn: Connection, ctx: Context, hold_ref: str) -> int:
    """Gives back every point a spent mall hold took, once; returns how many."""
    hold = conn.execute(select(holds).where(holds.c.hold_ref == hold_ref)).one()
    lock_member(conn, pk=hold.member_pk)
    parts = conn.execute(
        select(
            allocations.c.id,
            allocations.c.lot_id,
            allocations.c.points,
            allocations.c.returned,
            lots.c.expires_at,
        )
        .join(lots, lots.c.id == allocations.c.lot_id)
        .where(allocations.c.hold_id == hold.id, allocations.c.returned < allocations.c.points)
    ).all()
    back = [(p.lot_id, p.points - p.returned) for p in parts]
    if not back:
        return 0
    conn.execute(
        update(allocations)
        .where(allocations.c.hold_id == hold.id)
        .values(returned=allocations.c.points)
    )
    move_lots(conn, back)
    total = sum(pts for _, pts in back)
    postings = [Posting(domain.MEMBER_AVAILABLE, pts, hold.member_pk, lot) for lot, pts in back]
    postings.append(Posting(domain.REDEMPTION, -total))
    post_journal(
        conn,
        ctx,
        domain.REDEMPTION_RETURN,
        postings,
        member_pk=hold.member_pk,
        order_id=hold_ref,
    )
    expire_due_lots(conn, hold.member_pk, ctx)  # points given back to a lot since expired
    return total


def ttl_until(now: datetime, deadline: datetime) -> int:
    return max(1, int((deadline - now).total_seconds()))
