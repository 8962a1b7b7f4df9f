"""A trigger's report, like a campaign's: the members it acted on against its control group,
how many of each bought within the conversion window (woken up / converted), what they spent,
what it cost, and the uplift. Counts every decision so far (windows may still be open)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, select

from merchant_node.ledger.schema import earnings
from merchant_node.marketing.schema import trigger_actions
from merchant_node.marketing.triggers import Trigger


@dataclass(frozen=True)
class TriggerReport:
    trigger_id: str
    treated: int
    treated_converted: int
    control: int
    control_converted: int
    treated_spend_fen: int
    control_spend_fen: int
    cost_points: int  # bonus points handed out
    cost_coupon_fen: int  # coupons' face value handed out

    @property
    def treated_rate_bps(self) -> int:
        return self.treated_converted * 10_000 // self.treated if self.treated else 0

    @property
    def control_rate_bps(self) -> int:
        return self.control_converted * 10_000 // self.control if self.control else 0

    @property
    def uplift_bps(self) -> int:
        return self.treated_rate_bps - self.control_rate_bps

    @property
    def incremental_spend_fen(self) -> int:
        """Spend of the treated beyond what the control group's rate of spend would give."""
        if not self.control:
            return self.treated_spend_fen
        return self.treated_spend_fen - self.control_spend_fen * self.treated // self.control


def trigger_report(conn: Connection, trigger: Trigger, now: datetime) -> TriggerReport:
    a = trigger_actions.c
    actions = conn.execute(
        select(a.member_pk, a.decided_at, a.in_control).where(a.trigger_id == trigger.id)
    ).all()
    if not actions:
        return TriggerReport(trigger.id, 0, 0, 0, 0, 0, 0, 0, 0)
    since = min(row.decided_at for row in actions)
    window = timedelta(days=trigger.conversion_days)
    bought: dict[int, list[tuple[datetime, int]]] = defaultdict(list)
    members = {row.member_pk for row in actions}
    query = select(
        earnings.c.member_pk,
        earnings.c.occurred_at,
        (earnings.c.amount_fen - earnings.c.refunded_fen).label("net"),
    ).where(earnings.c.occurred_at > since, earnings.c.refunded_fen < earnings.c.amount_fen)
    if len(members) <= 1000:
        query = query.where(earnings.c.member_pk.in_(members))
    for row in conn.execute(query):
        if row.member_pk in members:
            bought[row.member_pk].append((row.occurred_at, row.net))
    figures = {True: [0, 0, 0], False: [0, 0, 0]}  # members, converted, spend
    for row in actions:
        spent = [
            net
            for at, net in bought[row.member_pk]
            if row.decided_at < at <= row.decided_at + window
        ]
        entry = figures[bool(row.in_control)]
        entry[0] += 1
        entry[1] += 1 if spent else 0
        entry[2] += sum(spent)
    treated = figures[False][0]
    action = trigger.action
    coupons = treated * action.value_fen if action.kind == "coupon" else 0
    points = treated * action.bonus_points if action.kind == "bonus" else 0
    return TriggerReport(
        trigger.id,
        figures[False][0],
        figures[False][1],
        figures[True][0],
        figures[True][1],
        figures[False][2],
        figures[True][2],
        points,
        coupons,
    )
