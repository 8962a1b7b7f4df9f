"""Earning: a purchase's points by the program in force, issued as a lot (pending through the
return window if the program says so), with pools reserved, referral paid and tier updated."""

from __future__ import annotations

import contextlib
import functools
import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from sqlalchemy import Connection, Row, bindparam, case, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from coalition_kernel.errors import AlreadyExists, FailedPrecondition, InvalidArgument
from coalition_kernel.points import Rate
from merchant_node.ledger import domain, programs, store_earn
from merchant_node.ledger.commands import Earn
from merchant_node.ledger.domain import Posting
from merchant_node.ledger.holds import sweep_member
from merchant_node.ledger.schema import earnings, lots, members
from merchant_node.ledger.store import (
    Context,
    available_points,
    lock_member_probed,
    post_journal,
)
from merchant_node.marketing.store import record_order_lines
from merchant_node.rules.base import Earning, EarningRules, Purchase, RuleLine
from merchant_node.rules.engine import MemberContext, ProgramRules, apply_pool_grants
from merchant_node.rules.program import Program

_DEBT = select(members.c.debt).where(members.c.id == bindparam("pk"))
_INSERT_LOT = insert(lots).returning(lots.c.id)
_CREDIT_MEMBER = (
    update(members)
    .where(members.c.id == bindparam("pk"))
    .values(
        lifetime_earned=members.c.lifetime_earned + bindparam("points"),
        debt=members.c.debt - bindparam("to_debt"),
    )
)
_INSERT_EARNING = insert(earnings)


@dataclass(frozen=True)
class EarnPolicy:
    """How long points live and how far back a purchase may be dated."""

    points_ttl_days: int | None = 365
    backdate_days: int = 30
    future_skew_seconds: int = 300


@dataclass(frozen=True)
class EarnResult:
    points_earned: int
    points_applied_to_debt: int
    expires_at: datetime | None
    rate_version: int
    available_points: int
    breakdown: list[RuleLine] = field(default_factory=list)
    available_from: datetime | None = None
    rule_version: str = ""


def issue_points(
    conn: Connection,
    ctx: Context,
    member: Row,
    points: int,
    *,
    kind: str,
    source: str,
    rule_id: str,
    earned_at: datetime,
    expires_at: datetime | None,
    available_at: datetime | None = None,
    debt: int | None = None,
) -> tuple[int | None, int]:
    """Issues points to a member: an outstanding clawback debt is paid first, the rest becomes
    a lot. One balanced journal transaction. Returns (lot id, points applied to the debt)."""
    if points <= 0:
        return None, 0
    if debt is None:
        debt = conn.execute(_DEBT, {"pk": member.id}).scalar_one()
    to_debt = min(points, debt)
    to_lot = points - to_debt
    lot_id = None
    if to_lot:
        lot_id = conn.execute(
            _INSERT_LOT,
            dict(
                member_pk=member.id,
                points=to_lot,
                remaining=to_lot,
                earned_at=earned_at,
                expires_at=expires_at,
                available_at=available_at,
                source_order_id=source,
                rule_id=rule_id,
                rule_version=ctx.rule_version,
                rate_version=ctx.rate_version,
            ),
        ).scalar_one()
    postings = [Posting(domain.ISSUANCE, -points)]
    if to_lot:
        postings.append(Posting(domain.MEMBER_AVAILABLE, to_lot, member.id, lot_id))
    if to_debt:
        postings.append(Posting(domain.MEMBER_DEBT, to_debt, member.id))
    post_journal(conn, ctx, kind, postings, member_pk=member.id, order_id=source)
    conn.execute(_CREDIT_MEMBER, {"pk": member.id, "points": points, "to_debt": to_debt})
    return lot_id, to_debt


_TS = earnings.c.occurred_at.type
YEAR = timedelta(days=365)  # the tier measures' window (rewards.measure_value)
# What the program needs of the member's earnings, in one statement: has she earned before (the
# first-purchase bonus), what did she earn on the purchase's local day (the daily cap), and her
# tier measures over the last year (before this purchase; the tier is updated after it).
_FIGURES = select(
    select(earnings.c.id)
    .where(earnings.c.member_pk == bindparam("pk"))
    .limit(1)
    .scalar_subquery()
    .label("any_earning"),
    func.coalesce(
        func.sum(
            case(
                (
                    (earnings.c.occurred_at >= bindparam("day_start", type_=_TS))
                    & (earnings.c.occurred_at < bindparam("day_end", type_=_TS)),
                    earnings.c.points,
                ),
                else_=0,
            )
        ),
        0,
    ).label("earned_today"),
    func.coalesce(func.sum(earnings.c.amount_fen - earnings.c.refunded_fen), 0).label("spend"),
    func.coalesce(func.sum(earnings.c.points - earnings.c.clawed_back), 0).label("points"),
).where(
    earnings.c.member_pk == bindparam("pk"),
    earnings.c.occurred_at > bindparam("since", type_=_TS),
)


@dataclass(frozen=True)
class MemberFigures:
    """The member as the program sees her at a purchase (see _FIGURES)."""

    context: MemberContext
    since: datetime  # the tier measure counts earnings after this
    measure: int  # the tier measure before this purchase (0 without tiers)


def member_figures(
    conn: Connection, member: Row, program: Program, at: datetime, now: datetime
) -> MemberFigures:
    """The member's context for the program's rules at a purchase made `at`, and her tier
    measure at `now` (rewards.measure_value's figure), read in one statement."""
    start, end = program.day_bounds(program.local(at).date())
    since = now - YEAR
    row = conn.execute(
        _FIGURES, {"pk": member.id, "day_start": start, "day_end": end, "since": since}
    ).one()
    capped = program.caps.per_member_per_day is not None
    context = MemberContext(
        member.tier,
        row.any_earning is None,
        member.birth_month,
        int(row.earned_today) if capped else 0,
    )
    measure = 0
    if program.tiers is not None:
        measure = int(row.spend if program.tiers.measure == "spend_12m" else row.points)
    return MemberFigures(context, since, measure)


def earn(
    conn: Connection,
    cmd: Earn,
    ctx: Context,
    rate: Rate,
    base_rules: EarningRules,
    program: Program | None,
    policy: EarnPolicy,
) -> EarnResult:
    occurred_at = cmd.occurred_at or ctx.now
    if occurred_at > ctx.now + timedelta(seconds=policy.future_skew_seconds):
        raise InvalidArgument("OCCURRED_AT_IN_FUTURE", "occurred_at is in the future")
    if occurred_at < ctx.now - timedelta(days=policy.backdate_days):
        raise InvalidArgument(
            "OCCURRED_AT_TOO_OLD", f"occurred_at is more than {policy.backdate_days} days ago"
        )
    member = lock_member_probed(conn, cmd.member_id, cmd.order_id, ctx.now)
    ctx = ctx.after_lock()
    if member.lapsed_holds or member.due_lots:
        sweep_member(conn, member.id, ctx)
    # One earning per order: the unique order id refuses a second (ORDER_ALREADY_EARNED).
    # An order belongs to one member: one that redeemed on it cannot be earned on by another.
    other = member.redeemed_by
    if other is not None and other != member.id:
        raise FailedPrecondition(
            "ORDER_OF_ANOTHER_MEMBER", f"order {cmd.order_id} belongs to another member"
        )
    purchase = Purchase(
        cmd.member_id,
        cmd.order_id,
        cmd.amount_fen,
        cmd.channel,
        occurred_at,
        cmd.line_items,
        cmd.points_paid_fen,
    )
    if cmd.line_items:  # categories bought: member facts and association analysis read them
        # (before the booking: its last write may lock the hot budget pools to the commit)
        record_order_lines(conn, member.id, cmd.order_id, cmd.line_items, occurred_at)
    if program is None:
        earning = base_rules.evaluate(purchase, rate)
        return _book(conn, cmd, ctx, member, program, policy, earning, occurred_at, False)
    figures = member_figures(conn, member, program, occurred_at, ctx.now)
    context = figures.context
    earning = ProgramRules(program, ctx.rule_version).evaluate(purchase, rate, context)
    book = functools.partial(
        _book,
        conn,
        cmd,
        ctx,
        member,
        program,
        policy,
        occurred_at=occurred_at,
        first_purchase=context.first_purchase,
        figures=figures,
    )
    if not earning.pool_draws:
        return book(earning)
    asked = programs.asks(earning.pool_draws)
    if _one_round_trip(conn, member, earning.points, paying_referral=context.first_purchase):
        # Budget pools last and short: their rows are hot (every earning of a campaign draws
        # on the same few) and a row lock is held to the commit, so they are drawn by the
        # earning's own statement, its last write, if they all have room (store_earn).
        with contextlib.suppress(_PoolsShort):
            return book(earning, pools=asked)
    # A pool short (its row is locked now), or a booking of several statements: the pools
    # first, then the earning cut to what they granted. On SQLite the writer holds the file.
    granted = programs.grant(conn, earning.pool_draws)
    if any(granted.get(pool, 0) < ask for pool, ask in asked.items()):
        earning = apply_pool_grants(earning, granted)
    return book(earning)


def _book(
    conn: Connection,
    cmd: Earn,
    ctx: Context,
    member: Row,
    program: Program | None,
    policy: EarnPolicy,
    earning: Earning,
    occurred_at: datetime,
    first_purchase: bool,
    figures: MemberFigures | None = None,
    pools: dict[str, int] | None = None,
) -> EarnResult:
    """Writes an evaluated earning: its lot (or debt repaid), journal, earning row, referral
    and tier. With `pools` (only where _one_round_trip), they are drawn in full with the
    booking, or nothing is written and _PoolsShort raised (store_earn.book_earning)."""
    pending_days = getattr(earning, "pending_days", 0)
    available_at = occurred_at + timedelta(days=pending_days) if pending_days else None
    points = earning.points
    expires_at = (
        occurred_at + timedelta(days=policy.points_ttl_days) if policy.points_ttl_days else None
    )
    rule_id = earning.breakdown[0].rule_id if len(earning.breakdown) == 1 else "rules"
    breakdown = _breakdown_json(earning.breakdown)
    # A referral paid at a first purchase issues points after the earning: the balance is read
    # at the end then, not with the earning's own writes.
    paying_referral = program is not None and first_purchase
    available: int | None = None
    lot_id: int | None
    if _one_round_trip(conn, member, points, paying_referral=paying_referral):
        to_debt = 0
        try:
            booked = store_earn.book_earning(
                conn,
                ctx,
                member.id,
                points,
                order_id=cmd.order_id,
                amount_fen=cmd.amount_fen,
                channel=cmd.channel,
                breakdown=breakdown,
                rule_id=rule_id,
                occurred_at=occurred_at,
                expires_at=expires_at,
                available_at=available_at,
                pools=pools,
            )
        except IntegrityError as exc:  # a concurrent earning of the same order
            raise _already_earned(cmd) from exc
        if booked is None:
            raise _PoolsShort
        lot_id, available = booked
    else:
        lot_id, to_debt = issue_points(
            conn,
            ctx,
            member,
            points,
            kind=domain.EARN,
            source=cmd.order_id,
            rule_id=rule_id,
            earned_at=occurred_at,
            expires_at=expires_at,
            available_at=available_at,
            debt=member.debt,  # read under the member's lock; nothing changed it since
        )
        try:
            conn.execute(
                _INSERT_EARNING,
                dict(
                    order_id=cmd.order_id,
                    member_pk=member.id,
                    amount_fen=cmd.amount_fen,
                    points=points,
                    lot_id=lot_id,
                    refunded_fen=0,
                    clawed_back=0,
                    channel=cmd.channel,
                    breakdown=breakdown,
                    occurred_at=occurred_at,
                    created_at=ctx.now,
                    rate_version=ctx.rate_version,
                    rule_version=ctx.rule_version,
                ),
            )
        except IntegrityError as exc:  # a concurrent earning of the same order by another member
            raise _already_earned(cmd) from exc
    if program is not None:
        from merchant_node.ledger import rewards  # the rewards module builds on this one

        if first_purchase:
            rewards.pay_referral(conn, ctx, member, program, occurred_at)
        value = None
        if figures is not None and program.tiers is not None:
            # Her measure before this purchase, plus this purchase's part of it.
            this = cmd.amount_fen if program.tiers.measure == "spend_12m" else points
            value = figures.measure + (this if occurred_at > figures.since else 0)
        rewards.update_tier(conn, member, program, ctx.now, value=value)
    if available is None:
        available = available_points(conn, member.id, ctx.now)
    return EarnResult(
        points,
        to_debt,
        expires_at if lot_id else None,
        ctx.rate_version,
        available,
        earning.breakdown,
        available_at if lot_id else None,
        ctx.rule_version,
    )


class _PoolsShort(Exception):
    """A budget pool had no room for its whole ask: nothing was written."""


def _already_earned(cmd: Earn) -> AlreadyExists:
    return AlreadyExists("ORDER_ALREADY_EARNED", f"order {cmd.order_id} has already earned points")


def _one_round_trip(conn: Connection, member: Row, points: int, *, paying_referral: bool) -> bool:
    """The earning is booked in one statement (store_earn): on PostgreSQL, points to issue, no
    debt to pay first, no referral to pay after."""
    return (
        conn.dialect.name == "postgresql" and points > 0 and not member.debt and not paying_referral
    )


def _breakdown_json(lines: list[RuleLine]) -> str:
    """The breakdown as json.dumps(asdict(line) …) writes it (campaigns.py matches its text),
    without asdict's deep copy of every field."""
    return json.dumps(
        [{"rule_id": x.rule_id, "description": x.description, "points": x.points} for x in lines]
    )


def with_rule_version(ctx: Context, version: str) -> Context:
    return replace(ctx, rule_version=version)
