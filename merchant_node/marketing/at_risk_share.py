"""The night's at-risk share, and the warning to the merchant when it jumps (issue 13, item 3).

The share (members of the at-risk segments over all placed members, in basis points) is kept
per day in `marketing_runs`. It is compared with the previous night that recorded one (a run
with members: a night that died before this step left zeros, which are no baseline). Rising by
the merchant's `churn.warn_jump_bps` or more enqueues ONE warning to the merchant herself, in
the same transaction and keyed by the day, so a re-run of the night or a retried activity adds
nothing. The outbox delivers it on her channel (`merchant_alert_url`, else her webhook), after
her quiet hours, like every other notification.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select, update

from merchant_node.config import NotificationSettings
from merchant_node.marketing.definitions import Churn
from merchant_node.marketing.schema import marketing_runs, member_facts, member_segments
from merchant_node.notify.outbox import NewNotification, enqueue, merchant_channel

WARNING_KIND = "at_risk_warning"


@dataclass(frozen=True)
class NightlyOutcome:
    members: int
    at_risk: int
    at_risk_share_bps: int
    warned: bool  # the share jumped tonight: the merchant's warning is in the outbox
    model_fitted: bool


def percent(bps: int) -> str:
    return f"{bps // 100}.{bps % 100:02d}%"


def record_night(
    conn: Connection,
    churn: Churn,
    day: str,
    as_of: datetime,
    settings: NotificationSettings,
    merchant_id: str,
) -> NightlyOutcome:
    """Records `day`'s share (replacing an earlier run of the same day) and warns the merchant
    once if it rose `churn.warn_jump_bps` or more over the previous night's."""
    s, runs = member_segments.c, marketing_runs.c
    at_risk_now = s.segment.in_(churn.at_risk_segments)
    total = conn.execute(select(func.count()).select_from(member_segments)).scalar_one()
    at_risk = conn.execute(
        select(func.count()).select_from(member_segments).where(at_risk_now)
    ).scalar_one()
    share = at_risk * 10_000 // total if total else 0
    previous = conn.execute(
        select(runs.at_risk_share_bps)
        .where(runs.run_day < day, runs.members > 0)
        .order_by(runs.run_day.desc())
        .limit(1)
    ).scalar()
    jumped = previous is not None and share - previous >= churn.warn_jump_bps
    existing = conn.execute(select(marketing_runs).where(runs.run_day == day)).first()
    warned = jumped or bool(existing is not None and existing.warned)  # once told, stays told
    values = dict(
        as_of=as_of, members=total, at_risk=at_risk, at_risk_share_bps=share, warned=warned
    )
    if existing is None:
        conn.execute(marketing_runs.insert().values(run_day=day, **values))
    else:
        conn.execute(update(marketing_runs).where(runs.run_day == day).values(**values))
    if jumped:
        assert previous is not None
        causes: dict[str | None, int] = dict(
            conn.execute(  # type: ignore[arg-type]
                select(member_facts.c.churn_cause, func.count())
                .join_from(member_segments, member_facts, member_facts.c.member_pk == s.member_pk)
                .where(at_risk_now)
                .group_by(member_facts.c.churn_cause)
            ).all()
        )
        payload = _warning(day, share, previous, churn.warn_jump_bps, at_risk, total, causes)
        item = NewNotification(
            f"{WARNING_KIND}:{day}",
            None,
            WARNING_KIND,
            payload,
            merchant_channel(settings),
            as_of,
        )
        enqueue(conn, [item], as_of)
    model_fitted = existing is not None and existing.model_params is not None
    return NightlyOutcome(total, at_risk, share, warned, model_fitted)


def _warning(
    day: str,
    share: int,
    previous: int,
    threshold: int,
    at_risk: int,
    total: int,
    causes: dict[str | None, int],
) -> dict[str, object]:
    by_cause = dict(sorted((str(cause or "-"), int(n)) for cause, n in causes.items()))
    listed = ", ".join(f"{cause} {n}" for cause, n in by_cause.items())
    now, before = percent(share), percent(previous)
    return {
        "day": day,
        "at_risk": at_risk,
        "members": total,
        "at_risk_share_bps": share,
        "previous_share_bps": previous,
        "warn_jump_bps": threshold,
        "causes": by_cause,
        "subject": f"流失风险会员占比升至 {now} / At-risk members up to {now}",
        "text": (
            f"{day} 流失风险会员 {at_risk}/{total}，占比 {now}（前一晚 {before}，"
            f"预警阈值 +{percent(threshold)}）。原因：{listed}。\n"
            f"On {day}, {at_risk} of {total} members are at risk: {now}, up from {before} "
            f"(warning at +{percent(threshold)}). Causes: {listed}.\n"
        ),
    }
