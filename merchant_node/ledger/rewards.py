"""Points for what members do besides buying — check-ins, reviews, shares, referrals — and tiers:
immediate upgrades, downgrades on the evaluation date after a grace period, upgrades bought with
points. Each runs inside the caller's transaction with the member locked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Connection, Row, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from coalition_kernel.errors import AlreadyExists, CoalitionError, FailedPrecondition
from merchant_node.ledger import domain, programs
from merchant_node.ledger.domain import Posting
from merchant_node.ledger.earning import YEAR, issue_points
from merchant_node.ledger.schema import earnings, engagement_events, members, redemptions
from merchant_node.ledger.store import (
    Context,
    live_points,
    move_lots,
    post_journal,
    record_allocations,
    spendable_lots,
)
from merchant_node.rules import engagement, tiers
from merchant_node.rules.base import RuleLine
from merchant_node.rules.engine import PoolDraw
from merchant_node.rules.program import Program

REWARD_TTL_DAYS = 365


@dataclass(frozen=True)
class RewardResult:
    points_awarded: int
    count: int  # the streak for check-ins; today's count for reviews and shares
    breakdown: list[RuleLine]


@dataclass(frozen=True)
class TierUpgrade:
    tier: str
    points_spent: int
    available_points: int


def _reward(
    conn: Connection,
    ctx: Context,
    member: Row,
    points: int,
    kind: str,
    reference: str,
    day: date,
    rule_id: str,
    pool: str | None = None,
) -> int:
    """Records the rewarded event (each reference once) and issues its points, drawn from the
    rule's budget pool if it has one; returns the points actually given."""
    if pool is not None and points:
        points = programs.grant(conn, [PoolDraw(rule_id, pool, points)]).get(pool, 0)
    try:
        with conn.begin_nested():
            conn.execute(
                insert(engagement_events).values(
                    member_pk=member.id,
                    kind=kind,
                    reference=reference,
                    local_day=day.isoformat(),
                    points=points,
                    created_at=ctx.now,
                )
            )
    except IntegrityError as exc:
        raise AlreadyExists("ALREADY_REWARDED", f"{kind} {reference} was already rewarded") from exc
    issue_points(
        conn,
        ctx,
        member,
        points,
        kind=domain.REWARD,
        source=f"{kind}:{reference}"[:64],
        rule_id=rule_id,
        earned_at=ctx.now,
        expires_at=ctx.now + timedelta(days=REWARD_TTL_DAYS),
    )
    return points


def check_in(conn: Connection, ctx: Context, member: Row, program: Program) -> RewardResult:
    today = program.local(ctx.now).date()
    last = date.fromisoformat(member.checkin_last_day) if member.checkin_last_day else None
    award = engagement.check_in(program.engagement.check_in, last, member.checkin_streak, today)
    rule = program.engagement.check_in
    given = _reward(
        conn, ctx, member, award.points, "check_in", today.isoformat(), today, "check_in",
        getattr(rule, "budget_pool", None),
    )  # fmt: skip
    conn.execute(
        update(members)
        .where(members.c.id == member.id)
        .values(checkin_last_day=today.isoformat(), checkin_streak=award.streak)
    )
    lines = list(award.lines)
    if given < award.points:
        lines.append(RuleLine("budget_pool", "the activity budget is spent", given - award.points))
    return RewardResult(given, award.streak, lines)


def engage(
    conn: Connection, ctx: Context, member: Row, program: Program, kind: str, reference: str
) -> RewardResult:
    today = program.local(ctx.now).date()
    count = conn.execute(
        select(func.count()).where(
            engagement_events.c.member_pk == member.id,
            engagement_events.c.kind == kind,
            engagement_events.c.local_day == today.isoformat(),
        )
    ).scalar_one()
    rule = getattr(program.engagement, kind)
    points = engagement.limited_award(rule, kind, count)
    given = _reward(
        conn, ctx, member, points, kind, reference, today, kind, getattr(rule, "budget_pool", None)
    )
    lines = [RuleLine(kind, f"{kind} reward", points)]
    if given < points:
        lines.append(RuleLine("budget_pool", "the activity budget is spent", given - points))
    return RewardResult(given, count + 1, lines)


def referrer_chain(conn: Connection, start_pk: int | None, limit: int = 50) -> list[Row]:
    chain: list[Row] = []
    pk = start_pk
    while pk is not None and len(chain) < limit:
        row = conn.execute(select(members).where(members.c.id == pk)).first()
        if row is None:
            break
        chain.append(row)
        pk = row.referred_by_pk
    return chain


def pay_referral(
    conn: Connection, ctx: Context, member: Row, program: Program, at: datetime
) -> None:
    """At a referred member's first purchase, both sides earn — unless the referral is the
    member's own (same phone) or closes a ring; then nobody does, and the earning stands."""
    if member.referred_by_pk is None or program.engagement.referral is None:
        return
    chain = referrer_chain(conn, member.referred_by_pk)
    if not chain:
        return
    referrer = conn.execute(
        select(members).where(members.c.id == chain[0].id).with_for_update()
    ).one()
    if member.phone and member.phone == referrer.phone:
        return  # the same person under two ids: a self-referral
    try:
        award = engagement.referral_award(
            program.engagement.referral,
            referrer.member_id,
            member.member_id,
            [row.member_id for row in chain[1:]],
        )
    except CoalitionError as refused:
        if refused.reason in ("SELF_REFERRAL", "REFERRAL_RING", "NOT_OFFERED"):
            return  # abuse or no offer: no referral points, the purchase still earns
        raise
    day = program.local(at).date()
    _reward(
        conn,
        ctx,
        member,
        award.referee_points,
        "referral",
        f"referee:{member.member_id}",
        day,
        "referral",
    )
    _reward(
        conn,
        ctx,
        referrer,
        award.referrer_points,
        "referral",
        f"referrer-of:{member.member_id}",
        day,
        "referral",
    )


def measure_value(conn: Connection, member_pk: int, program: Program, now: datetime) -> int:
    assert program.tiers is not None
    column = (
        earnings.c.amount_fen - earnings.c.refunded_fen
        if program.tiers.measure == "spend_12m"
        else earnings.c.points - earnings.c.clawed_back
    )
    return int(
        conn.execute(
            select(func.coalesce(func.sum(column), 0)).where(
                earnings.c.member_pk == member_pk, earnings.c.occurred_at > now - YEAR
            )
        ).scalar_one()
    )


def update_tier(
    conn: Connection, member: Row, program: Program, now: datetime, *, value: int | None = None
) -> str | None:
    """Upgrades at once when the member qualifies for more; never downgrades here. `value`:
    her measure at `now` if the caller has it already (earning reads it with her figures)."""
    if program.tiers is None:
        return None
    if value is None:
        value = measure_value(conn, member.id, program, now)
    qualifying = tiers.qualifying_level(program.tiers, value)
    current = member.tier or program.tiers.levels[0].id
    new = tiers.on_activity(program.tiers, current, qualifying)
    if new != member.tier:
        conn.execute(
            update(members).where(members.c.id == member.id).values(tier=new, tier_grace_until=None)
        )
    return new


def evaluate_tier(conn: Connection, member: Row, program: Program, now: datetime) -> str | None:
    """The evaluation date's decision: a member below their tier keeps it through the grace
    period, then moves to the tier they qualify for."""
    if program.tiers is None:
        return None
    qualifying = tiers.qualifying_level(program.tiers, measure_value(conn, member.id, program, now))
    current = member.tier or program.tiers.levels[0].id
    level, grace = tiers.on_evaluation(
        program.tiers, current, qualifying, member.tier_grace_until, now
    )
    conn.execute(
        update(members).where(members.c.id == member.id).values(tier=level, tier_grace_until=grace)
    )
    return level


def upgrade_tier(
    conn: Connection, ctx: Context, member: Row, program: Program, target: str, request_id: str
) -> TierUpgrade:
    if program.tiers is None:
        raise FailedPrecondition("NOT_OFFERED", "this program has no tiers")
    current = member.tier or program.tiers.levels[0].id
    cost = tiers.upgrade_by_points(program.tiers, current, target)
    candidates = spendable_lots(conn, member.id)
    taken = domain.allocate(candidates, cost, ctx.now)
    redemption_id = conn.execute(
        redemptions.insert()
        .values(
            order_id=f"tier-{request_id}"[:64],
            member_pk=member.id,
            points=cost,
            value_fen=0,
            returned=0,
            created_at=ctx.now,
            rate_version=ctx.rate_version,
        )
        .returning(redemptions.c.id)
    ).scalar_one()
    move_lots(conn, [(lot, -pts) for lot, pts in taken])
    record_allocations(conn, taken, redemption_id=redemption_id)
    postings = [Posting(domain.MEMBER_AVAILABLE, -pts, member.id, lot) for lot, pts in taken]
    postings.append(Posting(domain.REDEMPTION, cost))
    post_journal(conn, ctx, domain.REDEEM, postings, member_pk=member.id, order_id=f"tier:{target}")
    conn.execute(
        update(members).where(members.c.id == member.id).values(tier=target, tier_grace_until=None)
    )
    return TierUpgrade(target, cost, live_points(candidates, ctx.now) - cost)
