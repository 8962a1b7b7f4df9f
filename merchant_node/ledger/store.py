"""SQL the use cases share: locking a member, reading and moving lots, writing the journal.

Everything a use case changes about a member happens while it holds that member's row lock
(`SELECT … FOR UPDATE`; SQLite's BEGIN IMMEDIATE does the same for the whole file). One lock per
transaction means concurrent requests queue up per member and can never deadlock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Connection,
    Integer,
    Row,
    Select,
    String,
    bindparam,
    exists,
    func,
    insert,
    or_,
    select,
    text,
    update,
)

from coalition_kernel.db import UtcDateTime
from coalition_kernel.errors import NotFound
from merchant_node.ledger import domain
from merchant_node.ledger.domain import Posting, SpendableLot
from merchant_node.ledger.schema import (
    allocations,
    earnings,
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
_LAPSED_HOLDS = (
    exists()
    .where(
        holds.c.member_pk == members.c.id,
        holds.c.status == "pending",
        holds.c.expires_at <= _PROBE_NOW,
    )
    .label("lapsed_holds")
)
_DUE_LOTS = (
    exists()
    .where(
        lots.c.member_pk == members.c.id,
        lots.c.remaining > 0,
        lots.c.expires_at <= _PROBE_NOW,
    )
    .label("due_lots")
)


def _locked_with(*probes) -> Select:  # type: ignore[no-untyped-def, type-arg]
    return (
        select(members, _LAPSED_HOLDS, _DUE_LOTS, *probes)
        .where(members.c.member_id == bindparam("member_id"))
        .with_for_update(of=members)
    )


def _first_of(column, *where):  # type: ignore[no-untyped-def]
    return select(column).where(*where).limit(1).scalar_subquery()


_BY_ORDER = bindparam("order_id", type_=String())
# The member's lock and, in the same round trip, what an earn asks next: is anything of hers due
# for a sweep (a lapsed hold, an expired lot), and who redeemed on this order, if anyone.
_LOCK_PROBED = _locked_with(
    _first_of(redemptions.c.member_pk, redemptions.c.order_id == _BY_ORDER).label("redeemed_by")
)
# The same for a redeem: the sweep's two, who redeemed on the order and who earned on it.
_LOCK_FOR_REDEEM = _locked_with(
    _first_of(redemptions.c.member_pk, redemptions.c.order_id == _BY_ORDER).label("redeemed_by"),
    _first_of(earnings.c.member_pk, earnings.c.order_id == _BY_ORDER).label("earned_by"),
)
# The same for a hold: the sweep's two, and whether the hold's reference is taken.
_LOCK_FOR_HOLD = _locked_with(
    exists().where(holds.c.hold_ref == bindparam("hold_ref")).label("hold_taken")
)
# The member holding a hold, locked by the hold's reference (one round trip, not two).
_LOCK_BY_HOLD = (
    select(members)
    .where(members.c.id == _first_of(holds.c.member_pk, holds.c.hold_ref == bindparam("hold_ref")))
    .with_for_update()
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
    return _probed(conn, _LOCK_PROBED, member_id, order_id=order_id, now=now)


def lock_member_for_redeem(conn: Connection, member_id: str, order_id: str, now: datetime) -> Row:
    """`lock_member_probed` for a redeem: `lapsed_holds`, `due_lots`, `redeemed_by` and
    `earned_by` (the member who earned on `order_id`, or None), read as it says. A redemption of
    the order the same member committed meanwhile is refused by the order's unique key instead."""
    return _probed(conn, _LOCK_FOR_REDEEM, member_id, order_id=order_id, now=now)


def lock_member_for_hold(conn: Connection, member_id: str, hold_ref: str, now: datetime) -> Row:
    """`lock_member_probed` for a new hold: `lapsed_holds`, `due_lots` and `hold_taken` (a hold
    `hold_ref` exists), read as it says; a hold the same member placed meanwhile under that
    reference is refused by its unique key instead."""
    return _probed(conn, _LOCK_FOR_HOLD, member_id, hold_ref=hold_ref, now=now)


def lock_member_of_hold(conn: Connection, hold_ref: str) -> Row | None:
    """Locks the member who holds hold `hold_ref` (None: no such hold)."""
    return conn.execute(_LOCK_BY_HOLD, {"hold_ref": hold_ref}).first()


def _probed(conn: Connection, statement: Select, member_id: str, **params: object) -> Row:  # type: ignore[type-arg]
    row = conn.execute(statement, {"member_id": member_id, **params}).first()
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
    head = dict(
        kind=kind,
        member_pk=member_pk,
        order_id=order_id,
        request_id=ctx.request_id,
        created_at=ctx.now,
        rate_version=ctx.rate_version,
        rule_version=ctx.rule_version,
    )
    if conn.dialect.name == "postgresql":
        return int(
            conn.execute(
                _JOURNAL_PG,
                dict(
                    head,
                    accounts=[p.account for p in postings],
                    member_pks=[p.member_pk for p in postings],
                    lot_ids=[p.lot_id for p in postings],
                    points=[p.points for p in postings],
                ),
            ).scalar_one()
        )
    txn_id = conn.execute(_INSERT_TXN, head).scalar_one()
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


# On PostgreSQL the transaction and its lines are one statement (one round trip, as an earning's
# in store_earn.py): the lines come as arrays, inserted in their order (ids ascending as the
# postings were given), and the deferred balance trigger still checks the whole at commit.
_JOURNAL_PG = text(
    """WITH txn AS (
  INSERT INTO journal_transactions (kind, member_pk, order_id, request_id, created_at,
                                    rate_version, rule_version)
  VALUES (:kind, :member_pk, :order_id, :request_id, :created_at, :rate_version, :rule_version)
  RETURNING id
), lines AS (
  INSERT INTO journal_lines (txn_id, account, member_pk, lot_id, points, rate_version,
                             rule_version)
  SELECT txn.id, l.account, l.member_pk, l.lot_id, l.points, :rate_version, :rule_version
    FROM txn, unnest(CAST(:accounts AS text[]), CAST(:member_pks AS bigint[]),
                     CAST(:lot_ids AS bigint[]), CAST(:points AS bigint[]))
         WITH ORDINALITY AS l(account, member_pk, lot_id, points, n)
   ORDER BY l.n
)
SELECT id FROM txn"""
).bindparams(
    bindparam("kind", type_=String()),
    bindparam("member_pk", type_=BigInteger()),
    bindparam("order_id", type_=String()),
    bindparam("request_id", type_=String()),
    bindparam("created_at", type_=UtcDateTime()),
    bindparam("rate_version", type_=Integer()),
    bindparam("rule_version", type_=String()),
)
