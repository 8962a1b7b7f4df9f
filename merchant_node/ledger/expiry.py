"""Expiry of the whole ledger, set-based: lapsed holds, then due lots, a batch per transaction.

A request expires its own member's due lots as it goes (holds.sweep_member, under the member's
lock); this sweep writes down everything else that timestamps already decided, without walking
members one by one. Each batch takes the next `batch` due rows by id and locks their members
(sorted, `FOR UPDATE SKIP LOCKED`): only the holder of a member's row lock changes that
member's lots (store.py), so a batch and a request never both expire one lot, and a batch never
waits for a lock, so it can never deadlock with requests. A member busy in a request is
skipped; a second pass takes it, and whatever is still busy is left to that request's own
sweep or the next run. SQLite serializes writers and drops `FOR UPDATE`: the same SQL holds.

A batch of due lots writes ONE journal transaction (node migration 0015): a MEMBER_AVAILABLE
line of -remaining per lot, which carries the member (her history reads her lines), and one
BREAKAGE line of +total, all in one INSERT … SELECT, so PostgreSQL's statement-level balance
check sees the transaction balanced and has nothing left to check at commit. Lapsed holds keep a
HOLD_RELEASE transaction each (a hold is its own story in the member's history), their lines in
one statement too. Every statement is INSERT … SELECT or UPDATE over the batch's predicate;
Python sees only the batch's ids. Running again at the same `now` finds nothing and changes
nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    Connection,
    Engine,
    Select,
    String,
    and_,
    any_,
    bindparam,
    cast,
    func,
    insert,
    literal,
    null,
    select,
    true,
    update,
)

from coalition_kernel.db import run_in_transaction
from coalition_kernel.points import floor_mul, parse_ratio
from merchant_node.ledger import domain
from merchant_node.ledger.schema import (
    TS,
    allocations,
    holds,
    journal_lines,
    journal_transactions,
    lots,
    members,
    rate_versions,
)
from merchant_node.ledger.store import Context

DEFAULT_BATCH = 5000
# A batch's members are bound parameters; SQLite allows 32766 of them in one statement.
MAX_BATCH = 20_000

_TXN_COLUMNS = [
    "kind",
    "member_pk",
    "order_id",
    "request_id",
    "created_at",
    "rate_version",
    "rule_version",
]
_LINE_COLUMNS = [
    "txn_id",
    "account",
    "member_pk",
    "lot_id",
    "points",
    "rate_version",
    "rule_version",
]
_jt, _jl = journal_transactions, journal_lines


@dataclass(frozen=True)
class ExpiryRun:
    """What one run wrote down. `members` counts member write-downs (members per batch,
    summed); `members_busy` were locked by requests in the last pass and are left to them."""

    now: datetime
    lots_expired: int = 0
    points_expired: int = 0
    holds_lapsed: int = 0
    points_released: int = 0
    members: int = 0
    batches: int = 0
    members_busy: int = 0

    def __add__(self, other: _Batch) -> ExpiryRun:
        return replace(
            self,
            lots_expired=self.lots_expired + other.lots,
            points_expired=self.points_expired + other.points_expired,
            holds_lapsed=self.holds_lapsed + other.holds,
            points_released=self.points_released + other.points_released,
            members=self.members + other.members,
            batches=self.batches + 1,
        )


@dataclass(frozen=True)
class _Batch:
    upto: int  # the last id the batch looked at
    full: bool  # the window was full: there may be more after `upto`
    busy: int = 0
    members: int = 0
    lots: int = 0
    points_expired: int = 0
    holds: int = 0
    points_released: int = 0


def expire_due(engine: Engine, ctx: Context, *, batch: int = DEFAULT_BATCH) -> ExpiryRun:
    """Releases holds lapsed at `ctx.now`, then expires lots due at `ctx.now` (to BREAKAGE),
    `batch` rows per transaction. Idempotent: a second run at the same `now` changes nothing."""
    if not 1 <= batch <= MAX_BATCH:
        raise ValueError(f"batch must be 1-{MAX_BATCH} rows")
    run = ExpiryRun(ctx.now)
    busy = 0
    for step in (_release_lapsed_holds, _expire_lots):
        for _ in range(2):  # a second pass for members that were busy in the first
            run, busy = _pass(engine, functools.partial(step, ctx=ctx, limit=batch), run)
            if not busy:
                break
        run = replace(run, members_busy=run.members_busy + busy)
    return run


def _pass(
    engine: Engine, step: Callable[..., _Batch | None], run: ExpiryRun
) -> tuple[ExpiryRun, int]:
    after, busy = 0, 0
    while True:
        done = run_in_transaction(engine, functools.partial(step, after=after))
        if done is None:
            return run, busy
        run, busy, after = run + done, busy + done.busy, done.upto
        if not done.full:
            return run, busy


def _window(
    conn: Connection,
    id_: ColumnElement[int],
    member_pk: ColumnElement[int],
    due_now: ColumnElement[bool],
    after: int,
    limit: int,
) -> tuple[int, bool, list[int] | None] | None:
    """The next `limit` due rows after `after`: the last id, whether the window was full, and
    their members, sorted; None when nothing is due. On SQLite the members are not read (None):
    the writer holds the whole file, so every member is the batch's, and the batch's statements
    select the same rows again by id range. Two numbers come back instead of a row per lot
    (fetching 5,000 rows through SQLAlchemy cost a fifth of a batch there)."""
    ids = select(id_, member_pk).where(id_ > after, due_now).order_by(id_).limit(limit)
    if conn.dialect.name == "sqlite":
        window = ids.subquery()
        upto, found = conn.execute(select(func.max(window.c.id), func.count())).one()
        return (int(upto), found == limit, None) if found else None
    rows = conn.execute(ids).all()
    if not rows:
        return None
    return rows[-1][0], len(rows) == limit, sorted({r[1] for r in rows})


def _lock_members(conn: Connection, wanted: list[int] | None) -> list[int] | None:
    """Locks those of `wanted` no one else holds, in id order, without waiting. SQLite's
    writer already holds the whole file (BEGIN IMMEDIATE) and drops FOR UPDATE: there `wanted`
    is None (every member, _window) and so is the answer."""
    if wanted is None:
        return None
    return list(
        conn.execute(
            select(members.c.id)
            .where(_among(conn, members.c.id, wanted))
            .order_by(members.c.id)
            .with_for_update(skip_locked=True)
        ).scalars()
    )


def _among(conn: Connection, column: ColumnElement[int], ids: list[int]) -> ColumnElement[bool]:
    """`column` is one of `ids`. PostgreSQL gets them as ONE text literal cast to BIGINT[]: an
    IN list (or an ARRAY[…] of thousands of constants) costs 10-20 ms per statement to parse and
    plan, more than the rows it selects (EXPLAIN ANALYZE). BIGINT[] on both sides keeps the
    comparison same-typed, which PostgreSQL hashes (cross-type, each row searches the array)."""
    if conn.dialect.name != "postgresql":
        return column.in_(ids)
    literal_ids = "{" + ",".join(str(int(i)) for i in ids) + "}"
    return column == any_(
        cast(bindparam("ids", literal_ids, type_=String, unique=True), ARRAY(BigInteger))
    )


def _held_by_this_batch(
    conn: Connection,
    member_pk: ColumnElement[int],
    locked: list[int] | None,
    *,
    plus_zero: bool = True,
) -> ColumnElement[bool]:
    """Rows of the members this batch locked. A lot can become due after the window was read
    (a void puts points back on a lot past its expiry): its member may be locked by a request,
    so the batch must not touch it. SQLite's writer holds the whole file since the window was
    read (`locked` is None): nothing changed. On PostgreSQL, a filter on the rows of the
    batch's id range: `+ 0` keeps the planner from probing ix_lots_member_expiry once per
    member instead (3-5x slower, EXPLAIN ANALYZE)."""
    if locked is None:
        return true()
    return _among(conn, member_pk + 0 if plus_zero else member_pk, locked)


def _busy(wanted: list[int] | None, locked: list[int] | None) -> int:
    return 0 if wanted is None or locked is None else len(wanted) - len(locked)


def _constants(ctx: Context) -> tuple[ColumnElement, ...]:
    """request_id, created_at, rate_version, rule_version of every transaction of the run."""
    request = null() if ctx.request_id is None else literal(ctx.request_id, String)
    return (
        cast(request, String),
        literal(ctx.now, TS),
        literal(ctx.rate_version, BigInteger),
        literal(ctx.rule_version, String),
    )


def _line_constants(ctx: Context) -> tuple[ColumnElement, ...]:
    return literal(ctx.rate_version, BigInteger), literal(ctx.rule_version, String)


def _new_transactions(conn: Connection, source: Select) -> tuple[int, int, int]:
    """Inserts one journal transaction per row of `source`: the range of their ids, and how
    many (0: nothing was due any more, e.g. the members' own requests swept it meanwhile)."""
    ids = list(
        conn.execute(insert(_jt).from_select(_TXN_COLUMNS, source).returning(_jt.c.id)).scalars()
    )
    return (min(ids), max(ids), len(ids)) if ids else (0, 0, 0)


def _new_transaction(
    conn: Connection, ctx: Context, kind: str, *, member_pk: int | None, order_id: str | None
) -> int:
    return int(
        conn.execute(
            insert(_jt)
            .values(
                kind=kind,
                member_pk=member_pk,
                order_id=order_id,
                request_id=ctx.request_id,
                created_at=ctx.now,
                rate_version=ctx.rate_version,
                rule_version=ctx.rule_version,
            )
            .returning(_jt.c.id)
        ).scalar_one()
    )


def _release_lapsed_holds(
    conn: Connection, *, ctx: Context, limit: int, after: int
) -> _Batch | None:
    window = _window(
        conn,
        holds.c.id,
        holds.c.member_pk,
        and_(holds.c.status == "pending", holds.c.expires_at <= ctx.now),
        after,
        limit,
    )
    if window is None:
        return None
    upto, full, wanted = window
    locked = _lock_members(conn, wanted)
    batch = _Batch(upto, full, busy=_busy(wanted, locked))
    if locked == []:
        return batch
    h, a = holds, allocations
    due = and_(
        h.c.id > after,
        h.c.id <= upto,
        h.c.status == "pending",
        h.c.expires_at <= ctx.now,
        _held_by_this_batch(conn, h.c.member_pk, locked, plus_zero=False),
    )
    released, holders = conn.execute(
        select(func.coalesce(func.sum(h.c.points), 0), func.count(h.c.member_pk.distinct())).where(
            due
        )
    ).one()
    kind = literal(domain.HOLD_RELEASE, String)
    lo, hi, txns = _new_transactions(
        conn, select(kind, h.c.member_pk, h.c.hold_ref, *_constants(ctx)).where(due)
    )
    if not txns:
        return batch
    own_txn = and_(
        _jt.c.member_pk == h.c.member_pk,
        _jt.c.id.between(lo, hi),
        _jt.c.order_id == h.c.hold_ref,
    )
    # Each hold's lines in one statement: off MEMBER_HELD, back onto the lots it reserved.
    held = (
        select(
            _jt.c.id,
            literal(domain.MEMBER_HELD, String),
            h.c.member_pk,
            cast(null(), BigInteger),
            -h.c.points,
            *_line_constants(ctx),
        )
        .select_from(h.join(_jt, own_txn))
        .where(due)
    )
    back_to_lots = (
        select(
            _jt.c.id,
            literal(domain.MEMBER_AVAILABLE, String),
            h.c.member_pk,
            a.c.lot_id,
            a.c.points,
            *_line_constants(ctx),
        )
        .select_from(a.join(h, a.c.hold_id == h.c.id).join(_jt, own_txn))
        .where(due)
    )
    conn.execute(insert(_jl).from_select(_LINE_COLUMNS, held.union_all(back_to_lots)))
    reserved = a.join(h, a.c.hold_id == h.c.id)
    back = (
        select(func.sum(a.c.points))
        .select_from(reserved)
        .where(a.c.lot_id == lots.c.id, due)
        .scalar_subquery()
    )
    conn.execute(
        update(lots)
        .where(lots.c.id.in_(select(a.c.lot_id).select_from(reserved).where(due)))
        .values(remaining=lots.c.remaining + back)
    )
    lapsed = conn.execute(update(h).where(due).values(status="expired", finished_at=ctx.now))
    return replace(
        batch,
        members=int(holders) if locked is None else len(locked),
        holds=lapsed.rowcount,
        points_released=int(released),
    )


def _expire_lots(conn: Connection, *, ctx: Context, limit: int, after: int) -> _Batch | None:
    window = _window(
        conn,
        lots.c.id,
        lots.c.member_pk,
        and_(lots.c.remaining > 0, lots.c.expires_at <= ctx.now),
        after,
        limit,
    )
    if window is None:
        return None
    upto, full, wanted = window
    locked = _lock_members(conn, wanted)
    batch = _Batch(upto, full, busy=_busy(wanted, locked))
    if locked == []:
        return batch
    due = and_(
        lots.c.id > after,
        lots.c.id <= upto,
        lots.c.remaining > 0,
        lots.c.expires_at <= ctx.now,
    )
    due = and_(due, _held_by_this_batch(conn, lots.c.member_pk, locked))
    # The members are locked by this transaction: no one else changes these lots until it ends,
    # so what is summed here is what the lines below write and the update zeroes.
    found, points, members_ = conn.execute(
        select(
            func.count(),
            func.coalesce(func.sum(lots.c.remaining), 0),
            func.count(lots.c.member_pk.distinct()),
        ).where(due)
    ).one()
    if not found:  # the members' own requests swept it meanwhile
        return batch
    txn = _new_transaction(conn, ctx, domain.EXPIRE, member_pk=None, order_id=None)
    # One journal transaction for the batch: a MEMBER_AVAILABLE line per lot (each member's
    # history finds its own lines), and the BREAKAGE line that balances them, in one statement.
    member_lines = select(
        literal(txn, BigInteger),
        literal(domain.MEMBER_AVAILABLE, String),
        lots.c.member_pk,
        lots.c.id,
        -lots.c.remaining,
        *_line_constants(ctx),
    ).where(due)
    breakage_line = select(
        literal(txn, BigInteger),
        literal(domain.BREAKAGE, String),
        cast(null(), BigInteger),
        cast(null(), BigInteger),
        literal(int(points), BigInteger),
        *_line_constants(ctx),
    )
    conn.execute(insert(_jl).from_select(_LINE_COLUMNS, member_lines.union_all(breakage_line)))
    expired = conn.execute(update(lots).where(due).values(remaining=0))
    return replace(
        batch,
        members=int(members_),
        lots=expired.rowcount,
        points_expired=int(points),
    )


# -- the breakage report ---------------------------------------------------------------------


@dataclass(frozen=True)
class BreakageLine:
    """Points that expired in one period, issued at one rate version, and their value in fen
    at that version's fen_per_point (rounded down, like every value of points)."""

    period: str
    rate_version: int
    points: int
    value_fen: int


@dataclass(frozen=True)
class BreakageReport:
    start: datetime
    end: datetime
    timezone: str
    by: str
    lines: list[BreakageLine] = field(default_factory=list)

    @property
    def points(self) -> int:
        return sum(line.points for line in self.lines)

    @property
    def value_fen(self) -> int:
        return sum(line.value_fen for line in self.lines)

    def points_by_period(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for line in self.lines:
            totals[line.period] = totals.get(line.period, 0) + line.points
        return totals


def breakage_report(
    conn: Connection, start: datetime, end: datetime, timezone: str, by: str = "day"
) -> BreakageReport:
    """Points expired in [start, end), per local day ("YYYY-MM-DD") or month ("YYYY-MM") in
    `timezone` and per the rate version the points were issued at. Expiries by requests' own
    sweeps count as much as the batch sweep's: both are EXPIRE journal transactions."""
    if by not in ("day", "month"):
        raise ValueError("by must be 'day' or 'month'")
    zone = ZoneInfo(timezone)
    rows = conn.execute(
        select(_jt.c.created_at, lots.c.rate_version, func.sum(-_jl.c.points))
        .select_from(_jl.join(_jt, _jl.c.txn_id == _jt.c.id).join(lots, lots.c.id == _jl.c.lot_id))
        .where(
            _jt.c.kind == domain.EXPIRE,
            _jt.c.created_at >= start,
            _jt.c.created_at < end,
            _jl.c.account == domain.MEMBER_AVAILABLE,
        )
        .group_by(_jt.c.created_at, lots.c.rate_version)
    ).all()
    fen_per_point = {
        r.version: parse_ratio(r.fen_per_point)
        for r in conn.execute(select(rate_versions.c.version, rate_versions.c.fen_per_point))
    }
    points: dict[tuple[str, int], int] = {}
    for at, version, expired in rows:
        key = (_period(at.astimezone(zone).date(), by), version)
        points[key] = points.get(key, 0) + int(expired)
    lines = [
        BreakageLine(period, version, pts, floor_mul(pts, fen_per_point[version]))
        for (period, version), pts in sorted(points.items())
    ]
    return BreakageReport(start, end, timezone, by, lines)


def _period(day: date, by: str) -> str:
    return day.isoformat() if by == "day" else day.strftime("%Y-%m")


def day_range(first: date, last: date, timezone: str) -> tuple[datetime, datetime]:
    """The instants from the start of local day `first` to the end of local day `last`."""
    zone = ZoneInfo(timezone)
    start = datetime.combine(first, datetime.min.time(), zone)
    end = datetime.combine(last + timedelta(days=1), datetime.min.time(), zone)
    return start, end
