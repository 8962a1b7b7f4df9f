"""The nightly trigger pass (adapter): each trigger's members found set-based, each decision
recorded once in trigger_actions (unique per trigger, member and occasion) in the same
transaction as what it does: the message put in the outbox, the bonus booked in the ledger, the
coupon issued in the mall. A crash before commit does none of it; a rerun after commit finds
the decision made and does nothing again. Delivery is the outbox's (once per notification id).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Row, bindparam, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from coalition_kernel.db import UtcDateTime
from merchant_node.config import NotificationSettings
from merchant_node.ledger import domain
from merchant_node.ledger.earning import issue_points
from merchant_node.ledger.store import Context, lock_member
from merchant_node.marketing.schema import trigger_actions
from merchant_node.marketing.triggers import Trigger, TriggerSet, in_control, occasion
from merchant_node.notify.outbox import NewNotification, enqueue, resolve_channel
from merchant_node.notify.quiet import deliverable_at, effective_quiet_hours
from merchant_node.rules.program import Tiers

MAX_PER_TRIGGER = 10_000  # decisions per trigger per run; the next night takes the rest

_TS = UtcDateTime()


@dataclass(frozen=True)
class TriggerOutcome:
    trigger_id: str
    treated: int
    held_out: int


def _near_next_tier_sql(within: int, tiers: Tiers | None) -> str:
    """The member's measure short of their next level's threshold by 1..`within`: one clause
    per level below the top (a member without a level is at the entry level)."""
    if tiers is None or len(tiers.levels) < 2:
        return "0 = 1"
    measure = "f.spend_365d_fen" if tiers.measure == "spend_12m" else "f.earned_points_365d"
    clauses = []
    for i, above in enumerate(tiers.levels[1:]):
        # The level ids are bound (:tier_i), never spliced into the text.
        clauses.append(
            f"(COALESCE(m.tier, :tier_0) = :tier_{i} AND {measure} < {int(above.threshold)}"
            f" AND {measure} >= {int(above.threshold) - within})"
        )
    return "(" + " OR ".join(clauses) + ")"


def _tier_params(tiers: Tiers | None) -> dict[str, object]:
    if tiers is None:
        return {}
    return {f"tier_{i}": level.id for i, level in enumerate(tiers.levels)}


# Spendable points (the reminders' own test: not held back past their expiry) expiring after
# now and by the horizon.
_EXPIRING = """(SELECT COALESCE(SUM(l.remaining), 0) FROM lots l
    WHERE l.member_pk = m.id AND l.remaining > 0 AND l.expires_at > :now
      AND l.expires_at <= :expiring_until
      AND (l.available_at IS NULL OR l.available_at < l.expires_at)) >= {min_points}"""


def _candidates_sql(trigger: Trigger, tiers: Tiers | None = None) -> str:
    who = trigger.who
    where = ["1 = 1"]
    if who.segments:
        where.append("s.segment IN (" + ", ".join(f"'{s}'" for s in who.segments) + ")")
    if who.cause:
        where.append(f"f.churn_cause = '{who.cause}'")
    where += [f"s.tags LIKE '%,{tag},%'" for tag in who.tags]
    where += [c.to_sql() for c in who.when]
    if who.birthday_month:
        where.append("m.birth_month = :local_month")
    if who.near_next_tier:
        where.append(_near_next_tier_sql(who.near_next_tier.within, tiers))
    if who.points_expiring:
        where.append(_EXPIRING.format(min_points=int(who.points_expiring.min_points)))
    # Already decided for this occasion: since the last order (an episode), in this period, ever.
    decided = {
        "episode": "(f.last_order_at IS NULL OR a.decided_at > f.last_order_at)",
        "month": "a.decided_at >= :period_start",
        "year": "a.decided_at >= :period_start",
        "ever": "1 = 1",
    }[trigger.once_per]
    return f"""
SELECT m.id AS member_pk, m.member_id, f.last_order_at, c.email, c.preferred_channel,
    c.quiet_hours
FROM member_facts f
JOIN member_segments s ON s.member_pk = f.member_pk
JOIN members m ON m.id = f.member_pk
LEFT JOIN member_contacts c ON c.member_pk = f.member_pk
WHERE {" AND ".join(where)}
  AND (SELECT COUNT(*) FROM trigger_actions a
       WHERE a.member_pk = m.id AND a.in_control = FALSE AND a.decided_at > :cap_since) < :cap
  AND NOT EXISTS (SELECT 1 FROM trigger_actions a
       WHERE a.member_pk = m.id AND a.trigger_id = :trigger_id AND {decided})
ORDER BY m.id
LIMIT {MAX_PER_TRIGGER}
"""


def _record(conn: Connection, values: dict[str, object]) -> bool:
    """The decision, unless this (trigger, member, occasion) was decided before."""
    build = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    statement = (
        build(trigger_actions)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["trigger_id", "member_pk", "occasion"])
    )
    return conn.execute(statement.returning(trigger_actions.c.id)).first() is not None


def run_trigger(
    conn: Connection,
    trigger: Trigger,
    triggers: TriggerSet,
    version: int,
    ctx: Context,
    settings: NotificationSettings,
    merchant_id: str,
    tiers: Tiers | None = None,
) -> TriggerOutcome:
    """`tiers`: the program's levels in force (near_next_tier triggers match nobody without)."""
    zone = ZoneInfo(settings.timezone)
    now = ctx.now
    local_now = now.astimezone(zone)
    cap = triggers.frequency_cap
    sql = _candidates_sql(trigger, tiers)
    statement = (
        text(sql)
        .bindparams(
            *[
                bindparam(name, type_=_TS)
                for name in ("cap_since", "period_start", "now", "expiring_until")
                if f":{name}" in sql
            ]
        )
        .columns(last_order_at=_TS)
    )
    month_start = local_now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    period_start = month_start if trigger.once_per == "month" else month_start.replace(month=1)
    params = {
        "cap_since": now - timedelta(days=cap.per_days),
        "cap": cap.max_actions,
        "trigger_id": trigger.id,
        "period_start": period_start.astimezone(now.tzinfo),
        "local_month": local_now.month,
        "now": now,
        "expiring_until": now
        + timedelta(
            days=trigger.who.points_expiring.within_days if trigger.who.points_expiring else 0
        ),
        **_tier_params(tiers),
    }
    treated = held_out = 0
    for row in conn.execute(statement, params).all():
        control = in_control(trigger.id, row.member_id, trigger.control_percent)
        decided = _record(
            conn,
            dict(
                trigger_id=trigger.id,
                trigger_version=version,
                member_pk=row.member_pk,
                occasion=occasion(trigger, row.last_order_at, local_now),
                in_control=control,
                action=trigger.action.kind,
                decided_at=now,
            ),
        )
        if not decided:
            continue
        if control:
            held_out += 1
            continue
        treated += 1
        _act(conn, trigger, row, ctx, settings, zone, merchant_id)
    return TriggerOutcome(trigger.id, treated, held_out)


def _act(
    conn: Connection,
    trigger: Trigger,
    row: Row,  # type: ignore[type-arg]
    ctx: Context,
    settings: NotificationSettings,
    zone: ZoneInfo,
    merchant_id: str,
) -> None:
    action = trigger.action
    key = f"trigger:{trigger.id}:{row.member_id}:{ctx.now:%Y%m%d}"[:200]
    data: dict[str, object] = {
        "subject": action.subject,
        "text": action.text,
        "trigger_id": trigger.id,
        "action": action.kind,
    }
    if action.kind == "bonus":
        member = lock_member(conn, pk=row.member_pk)
        issue_points(
            conn,
            ctx,
            member,
            action.bonus_points,
            kind=domain.REWARD,
            source=key[:64],
            rule_id=f"trigger:{trigger.id}"[:64],
            earned_at=ctx.now,
            expires_at=ctx.now + timedelta(days=action.bonus_valid_days),
        )
        data["bonus_points"] = action.bonus_points
    if action.kind == "coupon":
        data.update(_issue_coupon(conn, trigger, row.member_id, ctx.now))
    quiet = effective_quiet_hours(row.quiet_hours, settings.quiet_hours)
    enqueue(
        conn,
        [
            NewNotification(
                dedupe_key=key,
                member_pk=row.member_pk,
                kind="marketing",
                payload=data,
                channel=resolve_channel(row.preferred_channel, row.email, settings),
                next_attempt_at=deliverable_at(ctx.now, quiet, zone),
            )
        ],
        ctx.now,
    )


def _issue_coupon(
    conn: Connection, trigger: Trigger, member_id: str, now: datetime
) -> dict[str, object]:
    """A coupon in the points mall's table (merchant_node/mall), redeemable at the till."""
    from merchant_node.mall.schema import mall_coupons
    from merchant_node.mall.store import new_coupon_code

    action = trigger.action
    code = new_coupon_code()
    conn.execute(
        mall_coupons.insert().values(
            code=code,
            member_id=member_id,
            item_id=f"trigger:{trigger.id}"[:64],
            value_fen=action.value_fen,
            min_spend_fen=action.min_spend_fen,  # 满200减50: refused at the till under 200
            status="issued",
            issued_at=now,
            expires_at=now + timedelta(days=action.valid_days),
        )
    )
    return {
        "coupon_code": code,
        "coupon_value_fen": action.value_fen,
        "coupon_min_spend_fen": action.min_spend_fen,
        "coupon_expires_at": (now + timedelta(days=action.valid_days)).isoformat(),
    }
