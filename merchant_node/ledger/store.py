"""SQL the use cases share: locking a member, reading and moving lots, writing the journal.

Everything a use case changes about a member happens while it holds that member's row lock
(`SELECT … FOR UPDATE`; SQLite's BEGIN IMMEDIATE does the same for the whole file). One lock per
transaction means concurrent requests queue up per member and can never deadlock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import Connection, Row, bindparam, exists, func, insert, or_, select, update

from coalition_kernel.errors import NotFound
from merchant_node.ledger import domain
from merchant_node.ledger.domain import Posting, SpendableLot
from merchant_node.ledger.schema import (
    allocations,
    holds,
    journal_lines,
    journal_transactions,
    lots,
    members,
    redemptions,
)


@dataclass(frozen=True)
class Context:
    """What every journal transaction of one request records."""

    now: datetime
    request_id: str | None
    rate_version: int
    rule_version: str
    clock: Callable[[], datetime]

    def after_lock(self) -> Context:
        """The same context timed after the member's lock was granted: expiry is decided at the
        moment the request holds the member, not when it started waiting."""
        return replace(self, now=self.clock())


# Hot-path statements are built once: building SQLAlchemy statements per request costs more
# Python time than executing them (measured: bench/node_bench.py, issue 2's note).
_LOCK_BY_MEMBER_ID = (
    select(members).where(members.c.member_id == bindparam("member_id")).with_for_update()
)
_LOCK_BY_PK = select(members).where(members.c.id == bindparam("pk")).with_for_update()
_FIND = select(members).where(members.c.member_id == bindparam("member_id"))
_AVAILABLE = select(func.coalesce(func.sum(lots.c.remaining), 0)).where(
    lots.c.member_pk == bindparam("member_pk"),
    lots.c.remaining > 0,
    or_(
        lots.c.expires_at.is_(None),
        lots.c.expires_at > bindparam("now", type_=lots.c.expires_at.type),
    ),
    or_(
        lots.c.available_at.is_(None),
        lots.c.available_at <= bindparam("now", type_=lots.c.expires_at.type),
    ),
)
_PROBE_NOW = bindparam("now", type_=lots.c.expires_at.type)
# The member's lock and, in the same round trip, what an earn asks next: is anything of hers due
# for a sweep (a lapsed hold, an expired lot), and who redeemed on this order, if anyone.
_LOCK_PROBED = (
    select(
        members,
        exists()
        .where(
            holds.c.member_pk == members.c.id,
            holds.c.status == "pending",
            holds.c.expires_at <= _PROBE_NOW,
        )
        .label("lapsed_holds"),
        exists()
        .where(
            lots.c.member_pk == members.c.id,
            lots.c.remaining > 0,
            lots.c.expires_at <= _PROBE_NOW,
        )
        .label("due_lots"),
        select(redemptions.c.member_pk)
        .where(redemptions.c.order_id == bindparam("order_id"))
        .limit(1)
        .scalar_subquery()
        .label("redeemed_by"),
    )
    .where(members.c.member_id == bindparam("member_id"))
    .with_for_update(of=members)
)
_INSERT_TXN = insert(journal_transactions).returning(journal_transactions.c.id)
_INSERT_LINES = insert(journal_lines)


def lock_member(conn: Connection, *, member_id: str | None = None, pk: int | None = None) -> Row:
    if member_id is not None:
        row = conn.execute(_LOCK_BY_MEMBER_ID, {"member_id": member_id}).first()
    else:
        row = conn.execute(_LOCK_BY_PK, {"pk": pk}).first()
    if row is None:
        raise NotFound(
            "MEMBER_NOT_FOUND",
            f"member {member_id} is not enrolled at this merchant; call EnrollMember first",
            member_id=str(member_id),
        )
    return row


def lock_member_probed(conn: Connection, member_id: str, order_id: str, now: datetime) -> Row:
    """`lock_member`, with three more columns read in the same statement: `lapsed_holds` and
    `due_lots` (does a sweep have anything to write down at `now`?) and `redeemed_by` (the
    member who redeemed on `order_id`, or None).

    On PostgreSQL the three are read in the statement's snapshot, taken before a wait for the
    lock: what a concurrent holder of the lock committed meanwhile can be missing from them. That
    holder is the same member, so it cannot change whose order it is; and the sweep only writes
    down what timestamps already decided (a sweep that finds nothing more does nothing)."""
    row = conn.execute(
        _LOCK_PROBED, {"member_id": member_id, "order_id": order_id, "now": now}
    ).first()
    if row is None:
        raise NotFound(
            "MEMBER_NOT_FOUND",
            f"member {member_id} is not enrolled at this merchant; call EnrollMember first",
            member_id=str(member_id),
        )
    return row


def find_member(conn: Connection, member_id: str) -> Row:
    row = conn.execute(_FIND, {"member_id": member_id}).first()
    if row is None:
        raise NotFound(
            "MEMBER_NOT_FOUND",
            f"member {member_id} is not enrolled at this merchant",
            member_id=member_id,
        )
    return row


def spendable_lots(conn: Connection, member_pk: int) -> list[SpendableLot]:
    rows = conn.execute(
        select(lots.c.id, lots.c.remaining, lots.c.expires_at, lots.c.available_at).where(
            lots.c.member_pk == member_pk, lots.c.remaining > 0
        )
    )
    return [SpendableLot(r.id, r.remaining, r.expires_at, r.available_at) for r in rows]


def live_points(lots_: Sequence[SpendableLot], now: datetime) -> int:
    return sum(lot.remaining for lot in lots_ if lot.live(now))


def available_points(conn: Connection, member_pk: int, now: datetime) -> int:
    """Spendable points now, summed in SQL: not expired, out of the return window."""
    return int(conn.execute(_AVAILABLE, {"member_pk": member_pk, "now": now}).scalar_one())


def move_lots(conn: Connection, deltas: Sequence[tuple[int, int]]) -> None:
    """Adds `delta` to each lot's remaining points (negative to take them)."""
    if deltas:
        conn.execute(
            update(lots)
            .where(lots.c.id == bindparam("lot"))
            .values(remaining=lots.c.remaining + bindparam("delta")),
            [{"lot": lot_id, "delta": delta} for lot_id, delta in deltas],
        )


def record_allocations(
    conn: Connection, taken: Sequence[tuple[int, int]], *, redemption_id=None, hold_id=None
) -> None:
    conn.execute(
        insert(allocations),
        [
            dict(redemption_id=redemption_id, hold_id=hold_id, lot_id=lot, points=pts, returned=0)
            for lot, pts in taken
        ],
    )


def post_journal(
    conn: Connection,
    ctx: Context,
    kind: str,
    postings: Sequence[Posting],
    *,
    member_pk: int | None,
    order_id: str | None = None,
) -> int:
    """Appends one balanced journal transaction (law 1) and returns its id."""
    domain.check_balanced(postings)
    txn_id = conn.execute(
        _INSERT_TXN,
        dict(
            kind=kind,
            member_pk=member_pk,
            order_id=order_id,
            request_id=ctx.request_id,
            created_at=ctx.now,
            rate_version=ctx.rate_version,
            rule_version=ctx.rule_version,
        ),
    ).scalar_one()
    conn.execute(
        _INSERT_LINES,
        [
            dict(
                txn_id=txn_id,
                account=p.account,
                member_pk=p.member_pk,
                lot_id=p.lot_id,
                points=p.points,
                rate_version=ctx.rate_version,
                rule_version=ctx.rule_version,
            )
            for p in postings
        ],
    )
    return txn_id
