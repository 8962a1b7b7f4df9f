"""Reminders before expiry (the seeds: a week and three days before): outbox rows, nothing sent.

With offsets 7 and 3, points expiring on local day D get the 7-day reminder from a run on a day
4-7 days before D, and the 3-day reminder from a run 0-3 days before D. One reminder per
(member, D, offset), whatever the number of runs or lots: its dedupe key says so, and the
outbox never holds a key twice. A schedule running once a day sends each exactly once; one
that missed the whole 7-day window sends only the 3-day reminder, never a late "7 days".
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from itertools import groupby
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Connection, Engine, and_, or_, select

from coalition_kernel.db import run_in_transaction
from merchant_node.config import NotificationSettings
from merchant_node.ledger.schema import lots, member_contacts, members
from merchant_node.notify import outbox
from merchant_node.notify.quiet import deliverable_at, effective_quiet_hours


def enqueue_expiry_reminders(
    engine: Engine, now: datetime, settings: NotificationSettings, *, page: int = 1000
) -> int:
    """Enqueues the reminders due at `now` for points about to expire, `page` members per
    transaction; returns how many were new (0 on a re-run at the same day)."""
    zone = ZoneInfo(settings.timezone)
    offsets = sorted(set(settings.reminder_offsets_days))
    today = now.astimezone(zone).date()
    horizon = datetime.combine(today + timedelta(days=offsets[-1] + 1), time(), zone)
    window = and_(
        lots.c.remaining > 0,
        lots.c.expires_at > now,
        lots.c.expires_at < horizon,
        # Points still in their return window at expiry could never be used: nothing to say.
        or_(lots.c.available_at.is_(None), lots.c.available_at < lots.c.expires_at),
    )
    step = functools.partial(
        _page,
        now=now,
        today=today,
        zone=zone,
        offsets=offsets,
        window=window,
        settings=settings,
        page=page,
    )
    enqueued, after = 0, 0
    while True:
        added, after, more = run_in_transaction(engine, functools.partial(step, after=after))
        enqueued += added
        if not more:
            return enqueued


def _page(
    conn: Connection,
    *,
    after: int,
    now: datetime,
    today: date,
    zone: ZoneInfo,
    offsets: Sequence[int],
    window: ColumnElement[bool],
    settings: NotificationSettings,
    page: int,
) -> tuple[int, int, bool]:
    pks = (
        conn.execute(
            select(lots.c.member_pk)
            .where(window, lots.c.member_pk > after)
            .group_by(lots.c.member_pk)
            .order_by(lots.c.member_pk)
            .limit(page)
        )
        .scalars()
        .all()
    )
    if not pks:
        return 0, after, False
    rows = conn.execute(
        select(
            lots.c.member_pk,
            members.c.member_id,
            lots.c.expires_at,
            lots.c.remaining,
            member_contacts.c.email,
            member_contacts.c.preferred_channel,
            member_contacts.c.quiet_hours,
        )
        .select_from(
            lots.join(members, members.c.id == lots.c.member_pk).outerjoin(
                member_contacts, member_contacts.c.member_pk == lots.c.member_pk
            )
        )
        .where(window, lots.c.member_pk > after, lots.c.member_pk <= pks[-1])
        .order_by(lots.c.member_pk, lots.c.expires_at)
    ).all()

    def key(row):  # type: ignore[no-untyped-def]
        return row.member_pk, row.expires_at.astimezone(zone).date()

    items = []
    for (member_pk, day), group in groupby(rows, key=key):
        lots_of_day = list(group)
        first = lots_of_day[0]
        days_left = (day - today).days
        offset = min(d for d in offsets if d >= days_left)
        quiet = effective_quiet_hours(first.quiet_hours, settings.quiet_hours)
        items.append(
            outbox.NewNotification(
                dedupe_key=f"expiry_reminder:{first.member_id}:{day.isoformat()}:{offset}d",
                member_pk=member_pk,
                kind="expiry_reminder",
                payload={
                    "points": sum(r.remaining for r in lots_of_day),
                    "expires_on": day.isoformat(),
                    "first_expires_at": first.expires_at.isoformat(),
                    "days_left": days_left,
                    "reminder_days": offset,
                },
                channel=outbox.resolve_channel(first.preferred_channel, first.email, settings),
                next_attempt_at=deliverable_at(now, quiet, zone),
            )
        )
    return outbox.enqueue(conn, items, now), pks[-1], len(pks) == page
