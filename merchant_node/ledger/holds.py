"""Holds (reserve specific lots, then post, void or lapse) and the expiry of lots.

Expiry is decided by timestamps: a lot or a hold past its `expires_at` is never spent or posted,
whether or not a sweep has run. The sweeps below only write down, in the journal, what the
timestamps already decided.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Row, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from coalition_kernel import consent as codes
from coalition_kernel.errors import AlreadyExists, FailedPrecondition, NotFound
from merchant_node.ledger import consent, domain
from merchant_node.ledger.commands import PlaceHold, PostHold
from merchant_node.ledger.domain import Posting
from merchant_node.ledger.schema import allocations, holds, lots, members
from merchant_node.ledger.store import (
    Context,
    lock_member_for_hold,
    lock_member_of_hold,
    move_lots,
    post_journal,
    record_allocations,
    spendable_lots,
)

_NOW = bindparam("now", type_=lots.c.expires_at.type)
_DUE_LOTS = select(lots.c.id, lots.c.remaining).where(
    lots.c.member_pk == bindparam("member_pk"), lots.c.remaining > 0, lots.c.expires_at <= _NOW
)
_LAPSED_HOLDS = select(holds).where(
    holds.c.member_pk == bindparam("member_pk"),
    holds.c.status == "pending",
    holds.c.expires_at <= _NOW,
)

# Statements of the exchange's hot path (PlaceHold, PostHold), built once.
_INSERT_HOLD = insert(holds).returning(holds.c.id)
_WITH_MEMBER_ID = select(holds, members.c.member_id).join(
    members, members.c.id == holds.c.member_pk
)
_HOLD_BY_REF = _WITH_MEMBER_ID.where(holds.c.hold_ref == bindparam("hold_ref"))
_POST_HOLD = (
    update(holds)
    .where(holds.c.id == bindparam("hold_pk"))
    .values(
        status="posted",
        finished_at=bindparam("now", type_=holds.c.finished_at.type),
        settlement_period=bindparam("period", type_=holds.c.settlement_period.type),
    )
)


@dataclass(frozen=True)
class HoldResult:
    hold_ref: str
    status: str
    points: int
    expires_at: datetime
    member_id: str = ""


def place_hold(
    conn: Connection, cmd: PlaceHold, ctx: Context, *, require_consent: bool = True
) -> HoldResult:
    try:
        member = lock_member_for_hold(conn, cmd.member_id, cmd.hold_ref, ctx.now)
    except NotFound:
        if not require_consent:
            raise
        # Answered like a wrong code: a consent attempt never tells who is a member here.
        consent.accept(conn, None, cmd.consent_code, _binding(cmd), ctx.now, points=cmd.points)
        raise
    ctx = ctx.after_lock()
    if member.lapsed_holds or member.due_lots:
        sweep_member(conn, member.id, ctx)
    if member.hold_taken:
        raise _hold_exists(cmd.hold_ref)
    if require_consent:
        consent.accept(
            conn,
            member,
            cmd.consent_code,
            _binding(cmd),
            ctx.now,
            points=cmd.points,
            hold_ref=cmd.hold_ref,
        )
    candidates = spendable_lots(conn, member.id)
    taken = domain.allocate(candidates, cmd.points, ctx.now)
    expiries = {lot.id: lot.expires_at for lot in candidates}
    # A hold never outlives the lots it reserves: posting it must not spend an expired lot.
    expires_at = min(
        [ctx.now + timedelta(seconds=cmd.ttl_seconds)]
        + [e for lot_id, _ in taken if (e := expiries[lot_id]) is not None]
    )
    try:
        hold_id = conn.execute(
            _INSERT_HOLD,
            dict(
                hold_ref=cmd.hold_ref,
                member_pk=member.id,
                points=cmd.points,
                status="pending",
                created_at=ctx.now,
                expires_at=expires_at,
                rate_version=ctx.rate_version,
            ),
        ).scalar_one()
    except IntegrityError as exc:  # placed meanwhile (the lock's probe could not see it)
        raise _hold_exists(cmd.hold_ref) from exc
    move_lots(conn, [(lot, -pts) for lot, pts in taken])
    record_allocations(conn, taken, hold_id=hold_id)
    postings = [Posting(domain.MEMBER_AVAILABLE, -pts, member.id, lot) for lot, pts in taken]
    postings.append(Posting(domain.MEMBER_HELD, cmd.points, member.id))
    post_journal(conn, ctx, domain.HOLD, postings, member_pk=member.id, order_id=cmd.hold_ref)
    return HoldResult(cmd.hold_ref, "pending", cmd.points, expires_at, cmd.member_id)


def _hold_exists(hold_ref: str) -> AlreadyExists:
    return AlreadyExists("HOLD_EXISTS", f"hold {hold_ref} already exists")


def _binding(cmd: PlaceHold) -> consent.Binding:
    return consent.Binding(
        codes.SPEND, cmd.issuer_id, cmd.acquirer_id, cmd.consent_max_points, cmd.consent_order_id
    )


def _locked_hold(conn: Connection, hold_ref: str) -> Row:
    """The hold, read after its member's lock was granted (a hold changes only under it)."""
    if lock_member_of_hold(conn, hold_ref) is None:
        raise NotFound("HOLD_NOT_FOUND", f"no hold {hold_ref} at this merchant")
    return conn.execute(_HOLD_BY_REF, {"hold_ref": hold_ref}).one()


def _hold(conn: Connection, where) -> Row:  # type: ignore[no-untyped-def]
    return conn.execute(_WITH_MEMBER_ID.where(where)).one()


def post_hold(conn: Connection, cmd: PostHold, ctx: Context) -> HoldResult:
    """Spends a pending, unexpired hold, stamped with the exchange's settlement period (none
    if the exchange sent none), so the node's statement lists it in the exchange's period."""
    hold_ref = cmd.hold_ref
    hold = _locked_hold(conn, hold_ref)
    ctx = ctx.after_lock()
    if hold.status == "pending" and hold.expires_at > ctx.now:
        conn.execute(
            _POST_HOLD,
            {"hold_pk": hold.id, "now": ctx.now, "period": cmd.settlement_period or None},
        )
        postings = [
            Posting(domain.MEMBER_HELD, -hold.points, hold.member_pk),
            Posting(domain.CROSS_REDEMPTION, hold.points),
        ]
        post_journal(
            conn, ctx, domain.HOLD_POST, postings, member_pk=hold.member_pk, order_id=hold_ref
        )
        return HoldResult(hold_ref, "posted", hold.points, hold.expires_at, hold.member_id)
    if hold.status == "posted":
        return HoldResult(hold_ref, "posted", hold.points, hold.expires_at, hold.member_id)
    raise FailedPrecondition(
        "HOLD_EXPIRED" if hold.status in ("pending", "expired") else "HOLD_VOIDED",
        f"hold {hold_ref} can no longer be posted: it lapsed at {hold.expires_at.isoformat()}"
        if hold.status != "voided"
        else f"hold {hold_ref} was voided",
    )


def void_hold(conn: Connection, hold_ref: str, ctx: Context) -> HoldResult:
    hold = _locked_hold(conn, hold_ref)
    ctx = ctx.after_lock()
    sweep_member(conn, hold.member_pk, ctx)  # a lapsed hold is expired, whatever a void says
    hold = _hold(conn, holds.c.id == hold.id)
    if hold.status == "posted":
        raise FailedPrecondition(
            "HOLD_ALREADY_POSTED", f"hold {hold_ref} was posted; refund instead"
        )
    if hold.status == "pending":
        _release(conn, hold, ctx, "voided")
        expire_due_lots(conn, hold.member_pk, ctx)
        return HoldResult(hold_ref, "voided", hold.points, hold.expires_at, hold.member_id)
    return HoldResult(hold_ref, hold.status, hold.points, hold.expires_at, hold.member_id)


def _release(conn: Connection, hold: Row, ctx: Context, status: str) -> None:
    parts = conn.execute(
        select(allocations.c.lot_id, allocations.c.points).where(allocations.c.hold_id == hold.id)
    ).all()
    move_lots(conn, [(p.lot_id, p.points) for p in parts])
    conn.execute(
        update(holds).where(holds.c.id == hold.id).values(status=status, finished_at=ctx.now)
    )
    postings = [Posting(domain.MEMBER_HELD, -hold.points, hold.member_pk)]
    postings += [
        Posting(domain.MEMBER_AVAILABLE, p.points, hold.member_pk, p.lot_id) for p in parts
    ]
    post_journal(
        conn, ctx, domain.HOLD_RELEASE, postings, member_pk=hold.member_pk, order_id=hold.hold_ref
    )


def expire_due_lots(conn: Connection, member_pk: int, ctx: Context) -> int:
    """Writes off the member's lots whose time has come (BREAKAGE); returns the points expired."""
    due = conn.execute(_DUE_LOTS, {"member_pk": member_pk, "now": ctx.now}).all()
    if not due:
        return 0
    move_lots(conn, [(lot.id, -lot.remaining) for lot in due])
    total = sum(lot.remaining for lot in due)
    postings = [Posting(domain.MEMBER_AVAILABLE, -lot.remaining, member_pk, lot.id) for lot in due]
    postings.append(Posting(domain.BREAKAGE, total))
    post_journal(conn, ctx, domain.EXPIRE, postings, member_pk=member_pk)
    return total


def sweep_member(conn: Connection, member_pk: int, ctx: Context) -> None:
    """Releases the member's lapsed holds, then expires due lots (the member is locked)."""
    lapsed = conn.execute(_LAPSED_HOLDS, {"member_pk": member_pk, "now": ctx.now}).all()
    for hold in lapsed:
        _release(conn, hold, ctx, "expired")
    expire_due_lots(conn, member_pk, ctx)
