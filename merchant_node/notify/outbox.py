"""The notifications outbox: enqueue once per event, claim with a lease, record the outcome.

States: pending → sending (claimed; `lease_until`) → sent | failed (retry at `next_attempt_at`)
| dead (out of attempts, or refused for good). `attempts` counts claims, so a notification whose
sending keeps crashing the dispatcher still ends dead. Every outcome is recorded only by the
claim that sent it (same id, still 'sending', same attempt number): a dispatcher whose lease ran
out and was re-claimed cannot overwrite the newer attempt's outcome.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Insert, and_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from coalition_kernel.errors import InvalidArgument
from merchant_node.config import CHANNELS, NotificationSettings
from merchant_node.ledger.schema import member_contacts, members, notifications
from merchant_node.ledger.store import lock_member
from merchant_node.notify.quiet import NONE, parse_quiet_hours

KINDS = ("expiry_reminder", "expired", "campaign")
MERCHANT_CHANNEL = "merchant"  # the merchant's own inbox: [notifications] merchant_alert_url
_n = notifications


@dataclass(frozen=True)
class NewNotification:
    dedupe_key: str  # names the event: the same key is never enqueued twice
    member_pk: int | None  # None: the merchant herself is told
    kind: str
    payload: dict[str, Any]
    channel: str
    next_attempt_at: datetime  # now, or the end of the member's quiet hours


@dataclass(frozen=True)
class Claimed:
    """A notification this dispatcher now owns until its lease ends; `attempt` is its number."""

    id: int
    dedupe_key: str
    kind: str
    channel: str
    attempt: int
    created_at: datetime
    member_id: str  # "" for a notification to the merchant
    email: str | None
    quiet_hours: str | None
    payload: dict[str, Any] = field(default_factory=dict)


def _insert_ignoring_duplicates(conn: Connection) -> Insert:
    if conn.dialect.name == "postgresql":
        return pg_insert(_n).on_conflict_do_nothing(index_elements=["dedupe_key"])
    return sqlite_insert(_n).on_conflict_do_nothing(index_elements=["dedupe_key"])


def enqueue(conn: Connection, items: Sequence[NewNotification], now: datetime) -> int:
    """Adds the notifications whose dedupe key is new (one statement); returns how many were.
    A key already there, from an earlier or a concurrent run, is left as it is."""
    if not items:
        return 0
    rows = [
        dict(
            dedupe_key=item.dedupe_key,
            recipient="merchant" if item.member_pk is None else "member",
            member_pk=item.member_pk,
            kind=item.kind,
            payload=json.dumps(item.payload, sort_keys=True, ensure_ascii=False),
            channel=item.channel,
            status="pending",
            attempts=0,
            next_attempt_at=item.next_attempt_at,
            created_at=now,
        )
        for item in items
    ]
    return len(conn.execute(_insert_ignoring_duplicates(conn).returning(_n.c.id), rows).all())


def resolve_channel(
    preferred: str | None, email: str | None, settings: NotificationSettings
) -> str:
    """The member's preferred channel; email only with an address; else the node's default.
    A preferred apprise channel the node does not deliver on falls back along the merchant's
    `fallback_order` (the first configured), then to the default."""
    if preferred and preferred not in ("webhook", "email"):
        configured = settings.configured_channels()
        if preferred in configured:
            return preferred
        usable = [c for c in settings.fallback_order if c in configured]
        preferred = next((c for c in usable if c != "email" or email), None)
    channel = preferred or settings.default_channel
    if channel == "email" and not email:
        return "webhook"
    return channel


def merchant_channel(settings: NotificationSettings) -> str:
    """Where the merchant herself is told: her apprise URL if set, else her webhook."""
    return MERCHANT_CHANNEL if settings.merchant_alert_url else "webhook"


def claim_due(
    conn: Connection, now: datetime, limit: int, settings: NotificationSettings
) -> tuple[list[Claimed], int]:
    """Claims up to `limit` due notifications (PostgreSQL: FOR UPDATE SKIP LOCKED, so several
    dispatchers share the work; SQLite serializes). A lease that ran out means the dispatcher
    holding it died with the outcome unknown: the row is due again. Returns the claims, and how
    many died instead (their lease ran out on the last attempt)."""
    due = or_(
        and_(_n.c.status.in_(("pending", "failed")), _n.c.next_attempt_at <= now),
        and_(_n.c.status == "sending", _n.c.lease_until <= now),
    )
    picked = (
        select(_n.c.id)
        .where(due)
        .order_by(_n.c.next_attempt_at, _n.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claimed = conn.execute(
        update(_n)
        .where(_n.c.id.in_(picked.scalar_subquery()))
        .values(
            status="sending",
            attempts=_n.c.attempts + 1,
            lease_until=now + timedelta(seconds=settings.lease_seconds),
        )
        .returning(_n.c.id, _n.c.attempts)
    ).all()
    exhausted = [r.id for r in claimed if r.attempts > settings.max_attempts]
    if exhausted:
        conn.execute(
            update(_n)
            .where(_n.c.id.in_(exhausted))
            .values(
                status="dead",
                lease_until=None,
                last_error="the last attempt's lease ran out: its outcome is unknown",
            )
        )
    ids = [r.id for r in claimed if r.attempts <= settings.max_attempts]
    if not ids:
        return [], len(exhausted)
    rows = conn.execute(
        select(
            _n,
            members.c.member_id,
            member_contacts.c.email,
            member_contacts.c.quiet_hours,
        )
        .select_from(
            _n.outerjoin(members, members.c.id == _n.c.member_pk).outerjoin(
                member_contacts, member_contacts.c.member_pk == _n.c.member_pk
            )
        )
        .where(_n.c.id.in_(ids))
        .order_by(_n.c.id)
    ).all()
    return [
        Claimed(
            r.id,
            r.dedupe_key,
            r.kind,
            r.channel,
            r.attempts,
            r.created_at,
            r.member_id or "",
            r.email,
            r.quiet_hours,
            json.loads(r.payload),
        )
        for r in rows
    ], len(exhausted)


def _mine(claim: Claimed):  # type: ignore[no-untyped-def]
    return and_(_n.c.id == claim.id, _n.c.status == "sending", _n.c.attempts == claim.attempt)


def mark_sent(conn: Connection, claim: Claimed, now: datetime) -> bool:
    """Records the delivery; False if the claim was lost (its lease ran out and was re-claimed)."""
    done = conn.execute(
        update(_n).where(_mine(claim)).values(status="sent", sent_at=now, lease_until=None)
    )
    return done.rowcount == 1


def mark_failed(conn: Connection, claim: Claimed, error: str, retry_at: datetime | None) -> bool:
    """Records a failed attempt: retried at `retry_at`, or dead if None."""
    values: dict[str, Any] = dict(lease_until=None, last_error=error[:2000])
    if retry_at is None:
        values["status"] = "dead"
    else:
        values.update(status="failed", next_attempt_at=retry_at)
    return conn.execute(update(_n).where(_mine(claim)).values(**values)).rowcount == 1


def defer(conn: Connection, claim: Claimed, until: datetime) -> bool:
    """Gives a claim back unsent (quiet hours): the attempt does not count."""
    done = conn.execute(
        update(_n)
        .where(_mine(claim))
        .values(
            status="pending",
            attempts=_n.c.attempts - 1,
            next_attempt_at=until,
            lease_until=None,
        )
    )
    return done.rowcount == 1


def set_member_contact(
    conn: Connection,
    member_id: str,
    now: datetime,
    *,
    email: str | None = None,
    preferred_channel: str | None = None,
    quiet_hours: str | None = None,
) -> None:
    """Records how a member wants to be told. `preferred_channel` None: the node's default;
    `quiet_hours` None: the merchant's, "none": none, else "HH:MM-HH:MM" local."""
    if preferred_channel is not None and preferred_channel not in CHANNELS:
        raise InvalidArgument("UNKNOWN_CHANNEL", f"channel must be one of {', '.join(CHANNELS)}")
    if email is not None and ("@" not in email or len(email) > 254 or "\n" in email):
        raise InvalidArgument("MALFORMED_EMAIL", "email must be an address like name@example.com")
    if quiet_hours is not None and quiet_hours != NONE:
        try:
            parse_quiet_hours(quiet_hours)
        except ValueError as exc:
            raise InvalidArgument("MALFORMED_QUIET_HOURS", str(exc)) from exc
    member = lock_member(conn, member_id=member_id)  # one writer of a member's contact
    values = dict(
        email=email, preferred_channel=preferred_channel, quiet_hours=quiet_hours, updated_at=now
    )
    if conn.execute(
        update(member_contacts).where(member_contacts.c.member_pk == member.id).values(**values)
    ).rowcount:
        return
    conn.execute(member_contacts.insert().values(member_pk=member.id, **values))
