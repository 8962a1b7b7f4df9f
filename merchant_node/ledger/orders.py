"""The per-order use cases: earn, redeem and refund. Each runs inside one transaction."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, Row, select, update
from sqlalchemy.exc import IntegrityError

from coalition_kernel.errors import AlreadyExists, FailedPrecondition, NotFound
from coalition_kernel.points import Rate
from merchant_node.ledger import domain
from merchant_node.ledger.commands import Redeem, Refund
from merchant_node.ledger.domain import Posting
from merchant_node.ledger.holds import expire_due_lots, sweep_member
from merchant_node.ledger.schema import allocations, earnings, lots, members, redemptions
from merchant_node.ledger.store import (
    Context,
    available_points,
    live_points,
    lock_member,
    lock_member_for_redeem,
    move_lots,
    post_journal,
    record_allocations,
    spendable_lots,
)


@dataclass(frozen=True)
class RedeemResult:
    redemption_id: str
    points_redeemed: int
    value_fen: int
    available_points: int
    rate_version: int


@dataclass(frozen=True)
class RefundResult:
    points_clawed_back: int
    points_added_to_debt: int
    points_returned: int
    available_points: int
    debt_points: int


def redeem(conn: Connection, cmd: Redeem, ctx: Context, rate: Rate) -> RedeemResult:
    member = lock_member_for_redeem(conn, cmd.member_id, cmd.order_id, ctx.now)
    ctx = ctx.after_lock()
    if member.lapsed_holds or member.due_lots:
        sweep_member(conn, member.id, ctx)
    if member.redeemed_by is not None:
        raise AlreadyExists(
            "ORDER_ALREADY_REDEEMED", f"order {cmd.order_id} already has a redemption"
        )
    if member.earned_by is not None and member.earned_by != member.id:
        raise FailedPrecondition(
            "ORDER_OF_ANOTHER_MEMBER", f"order {cmd.order_id} belongs to another member"
        )
    if cmd.points:
        points, value = cmd.points, rate.value_of_points(cmd.points)
    else:
        points, value = rate.points_for_value(cmd.amount_fen), cmd.amount_fen
    candidates = spendable_lots(conn, member.id)
    taken = domain.allocate(candidates, points, ctx.now)
    try:
        redemption_id = conn.execute(
            redemptions.insert()
            .values(
                order_id=cmd.order_id,
                member_pk=member.id,
                points=points,
                value_fen=value,
                returned=0,
                created_at=ctx.now,
                rate_version=ctx.rate_version,
            )
            .returning(redemptions.c.id)
        ).scalar_one()
    except IntegrityError as exc:
        raise AlreadyExists(
            "ORDER_ALREADY_REDEEMED", f"order {cmd.order_id} already has a redemption"
        ) from exc
    move_lots(conn, [(lot, -pts) for lot, pts in taken])
    record_allocations(conn, taken, redemption_id=redemption_id)
    postings = [Posting(domain.MEMBER_AVAILABLE, -pts, member.id, lot) for lot, pts in taken]
    postings.append(Posting(domain.REDEMPTION, points))
    post_journal(conn, ctx, domain.REDEEM, postings, member_pk=member.id, order_id=cmd.order_id)
    available = live_points(candidates, ctx.now) - points
    return RedeemResult(str(redemption_id), points, value, available, ctx.rate_version)


def refund(conn: Connection, cmd: Refund, ctx: Context) -> RefundResult:
    earning = conn.execute(select(earnings).where(earnings.c.order_id == cmd.order_id)).first()
    redemption = conn.execute(
        select(redemptions).where(redemptions.c.order_id == cmd.order_id)
    ).first()
    if earning is None and redemption is None:
        raise NotFound(
            "ORDER_NOT_FOUND", f"order {cmd.order_id} neither earned nor redeemed points"
        )
    member_pk = (earning or redemption).member_pk  # type: ignore[union-attr]
    member = lock_member(conn, pk=member_pk)
    ctx = ctx.after_lock()
    sweep_member(conn, member_pk, ctx)
    # Re-read under the member's lock: a concurrent refund of the same order may have committed.
    if earning is not None:
        earning = conn.execute(select(earnings).where(earnings.c.id == earning.id)).one()
    if redemption is not None:
        redemption = conn.execute(
            select(redemptions).where(redemptions.c.id == redemption.id)
        ).one()
    amount, points = _refund_scope(cmd, earning, redemption)

    clawed = to_debt = 0
    if amount and earning is not None:
        clawed, to_debt = _claw_back(conn, earning, amount, ctx)
    if points and redemption is not None:
        _return_points(conn, redemption, points, ctx)
        expire_due_lots(conn, member_pk, ctx)  # points given back to a lot that has since expired
    available = available_points(conn, member_pk, ctx.now)
    return RefundResult(clawed, to_debt, points, available, member.debt + to_debt)


def _refund_scope(cmd: Refund, earning: Row | None, redemption: Row | None) -> tuple[int, int]:
    open_amount = earning.amount_fen - earning.refunded_fen if earning is not None else 0
    open_points = redemption.points - redemption.returned if redemption is not None else 0
    if cmd.full:
        if not (open_amount or open_points):
            raise FailedPrecondition(
                "ORDER_ALREADY_REFUNDED", f"order {cmd.order_id} is already fully refunded"
            )
        return open_amount, open_points
    if cmd.amount_fen and earning is None:
        raise FailedPrecondition(
            "ORDER_HAS_NO_EARNING", f"order {cmd.order_id} earned no points; refund points only"
        )
    if cmd.points and redemption is None:
        raise FailedPrecondition(
            "ORDER_HAS_NO_REDEMPTION",
            f"order {cmd.order_id} redeemed no points; refund amount only",
        )
    if cmd.amount_fen > open_amount:
        raise FailedPrecondition(
            "REFUND_EXCEEDS_ORDER",
            f"refund of {cmd.amount_fen} fen exceeds the {open_amount} fen of order "
            f"{cmd.order_id} not yet refunded",
            refundable_fen=str(open_amount),
        )
    if cmd.points > open_points:
        raise FailedPrecondition(
            "REFUND_EXCEEDS_ORDER",
            f"returning {cmd.points} points exceeds the {open_points} points of order "
            f"{cmd.order_id} not yet returned",
            returnable_points=str(open_points),
        )
    return cmd.amount_fen, cmd.points


def _claw_back(conn: Connection, earning: Row, amount: int, ctx: Context) -> tuple[int, int]:
    """Takes back the refunded share of an order's points: from the order's own lot first, then
    from the member's other live lots (earliest expiry first); what the member already spent
    becomes a debt that future earnings pay off. Returns (points clawed back, added to debt)."""
    refunded = earning.refunded_fen + amount
    claw = (
        domain.clawback_target(earning.points, earning.amount_fen, refunded) - earning.clawed_back
    )
    conn.execute(
        update(earnings)
        .where(earnings.c.id == earning.id)
        .values(refunded_fen=refunded, clawed_back=earning.clawed_back + claw)
    )
    if claw == 0:
        return 0, 0
    candidates = spendable_lots(conn, earning.member_pk)
    own = [lot for lot in candidates if lot.id == earning.lot_id]
    # The order's own lot first, even inside its return window: that is what the window is for.
    taken, short = domain.take_up_to(own, claw, ctx.now, pending_ok=True)
    others = [lot for lot in candidates if lot.id != earning.lot_id]
    more, short = domain.take_up_to(others, short, ctx.now)
    taken += more
    move_lots(conn, [(lot, -pts) for lot, pts in taken])
    postings = [
        Posting(domain.MEMBER_AVAILABLE, -pts, earning.member_pk, lot) for lot, pts in taken
    ]
    if short:
        postings.append(Posting(domain.MEMBER_DEBT, -short, earning.member_pk))
        conn.execute(
            update(members)
            .where(members.c.id == earning.member_pk)
            .values(debt=members.c.debt + short)
        )
    postings.append(Posting(domain.CLAWBACK, claw))
    post_journal(
        conn,
        ctx,
        domain.CLAWBACK_KIND,
        postings,
        member_pk=earning.member_pk,
        order_id=earning.order_id,
    )
    return claw, short


def _return_points(conn: Connection, redemption: Row, points: int, ctx: Context) -> None:
    """Gives points back to the lots the redemption took them from, latest expiry first."""
    rows = conn.execute(
        select(
            allocations.c.id,
            allocations.c.lot_id,
            allocations.c.points,
            allocations.c.returned,
            lots.c.expires_at,
        )
        .join(lots, lots.c.id == allocations.c.lot_id)
        .where(allocations.c.redemption_id == redemption.id)
    ).all()
    parts = sorted(
        rows,
        key=lambda p: domain.spending_order(domain.SpendableLot(p.lot_id, 0, p.expires_at)),
        reverse=True,
    )
    back: list[tuple[int, int]] = []
    left = points
    for part in parts:
        give = min(part.points - part.returned, left)
        if give:
            back.append((part.lot_id, give))
            conn.execute(
                update(allocations)
                .where(allocations.c.id == part.id)
                .values(returned=part.returned + give)
            )
            left -= give
    move_lots(conn, back)
    conn.execute(
        update(redemptions)
        .where(redemptions.c.id == redemption.id)
        .values(returned=redemption.returned + points)
    )
    postings = [
        Posting(domain.MEMBER_AVAILABLE, pts, redemption.member_pk, lot) for lot, pts in back
    ]
    postings.append(Posting(domain.REDEMPTION, -points))
    post_journal(
        conn,
        ctx,
        domain.REDEMPTION_RETURN,
        postings,
        member_pk=redemption.member_pk,
        order_id=redemption.order_id,
    )
