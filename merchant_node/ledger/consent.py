"""The member's consent, checked by her issuer: bound codes, spent once, guessing locked out.

A code (coalition_kernel.consent) is bound to the purpose, this issuer, the acquirer, the most
points she agreed to and optionally the order; it is accepted for the current 30-second step or
one either side. A spend code's step is recorded, so it is spent once. Wrong codes are counted:
per member (MAX_FAILURES within FAILURE_WINDOW lock her cross-shop use for LOCK_FOR, the right
code included, and she is told through the outbox) and per acquirer (past ACQUIRER_MAX_FAILURES
in ACQUIRER_WINDOW it is refused RESOURCE_EXHAUSTED before any code is looked at). A wrong try
costs the two counter rows, nothing else: its refusal is not stored under the request id
(`unrecorded`), so guessing cannot grow the node's tables.

A member id the node does not know is answered exactly like a wrong code (CONSENT_INVALID), so
codes cannot be used to find out who is a member here.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from sqlalchemy import Connection, Row, case, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from coalition_kernel import consent as codes
from coalition_kernel.errors import CoalitionError, PermissionDenied, ResourceExhausted
from merchant_node.auth import vault
from merchant_node.config import NotificationSettings
from merchant_node.ledger.schema import (
    consent_acquirer_failures,
    consent_guards,
    consent_uses,
    member_contacts,
)
from merchant_node.ledger.store import lock_member
from merchant_node.notify import outbox

STEP_SECONDS = codes.STEP_SECONDS
MAX_FAILURES = 5  # wrong codes for one member ...
FAILURE_WINDOW = timedelta(minutes=15)  # ... within this long lock her out ...
LOCK_FOR = timedelta(minutes=15)  # ... for this long
ACQUIRER_MAX_FAILURES = 30  # wrong codes from one acquirer (all members) ...
ACQUIRER_WINDOW = timedelta(minutes=10)  # ... per this window
_DUMMY_SECRET = "A" * 32  # known-nothing members cost the same HMACs as known ones


@dataclass(frozen=True)
class Binding:
    """What the member agreed to, as the wallet showed it (the facts the code is bound to)."""

    purpose: str
    issuer_id: str
    acquirer_id: str
    max_points: int = 0
    order_id: str = ""


class ConsentFailure(PermissionDenied):
    """A wrong code (or an unknown member): counted by `record_failure` in its own transaction,
    never stored under the request id."""

    unrecorded = True

    def __init__(self, member_pk: int | None, acquirer_id: str) -> None:
        super().__init__("CONSENT_INVALID", "the consent code is wrong or has expired")
        self.member_pk = member_pk
        self.acquirer_id = acquirer_id


class ConsentRateLimited(ResourceExhausted):
    unrecorded = True


class ConsentLocked(PermissionDenied):
    """The member is locked out: refused, the right code too, and not stored per request."""

    unrecorded = True

    def __init__(self, until: datetime, message: str) -> None:
        super().__init__("CONSENT_LOCKED", message, locked_until=until.isoformat())


def new_wallet_secret() -> str:
    return pyotp.random_base32()


def wallet_uri(secret: str, member_id: str, issuer_name: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=member_id, issuer_name=issuer_name)


def wallet_secret(member: Row) -> str:
    """The member's plaintext wallet secret: the one place it is read (sealed at rest)."""
    return vault.wallet_secret_of(member)


def matching_step(secret: str, binding: Binding, code: str, now: datetime) -> int | None:
    """The time step (now, or one either side) whose code for `binding` is `code`, if any."""
    found = None
    current = codes.time_step(now)
    for step in (current, current - 1, current + 1):
        expected = codes.bound_code(
            secret or _DUMMY_SECRET,
            purpose=binding.purpose,
            issuer_id=binding.issuer_id,
            acquirer_id=binding.acquirer_id,
            max_points=binding.max_points,
            order_id=binding.order_id,
            step=step,
        )
        if hmac.compare_digest(expected, code) and found is None and secret:
            found = step
    return found


def check_open(conn: Connection, member_pk: int | None, acquirer_id: str, now: datetime) -> None:
    """Refuses before any code is looked at: an acquirer over its rate, a locked member."""
    row = conn.execute(
        select(consent_acquirer_failures).where(
            consent_acquirer_failures.c.acquirer_id == acquirer_id
        )
    ).first()
    if (
        row is not None
        and row.window_started_at + ACQUIRER_WINDOW > now
        and row.failures >= ACQUIRER_MAX_FAILURES
    ):
        until = row.window_started_at + ACQUIRER_WINDOW
        raise ConsentRateLimited(
            "CONSENT_RATE_LIMITED",
            f"{acquirer_id} sent {row.failures} wrong consent codes since "
            f"{row.window_started_at.isoformat()}; try again after {until.isoformat()}",
            retry_after=until.isoformat(),
        )
    if member_pk is None:
        return
    guard = conn.execute(
        select(consent_guards.c.locked_until).where(consent_guards.c.member_pk == member_pk)
    ).first()
    if guard is not None and guard.locked_until is not None and guard.locked_until > now:
        raise ConsentLocked(
            guard.locked_until,
            "too many wrong consent codes: the member's spending at other shops is locked until "
            f"{guard.locked_until.isoformat()}; she has been told",
        )


def accept(
    conn: Connection,
    member: Row | None,
    code: str,
    binding: Binding,
    now: datetime,
    *,
    points: int = 0,
    hold_ref: str = "",
) -> None:
    """Checks the member's code for `binding`; for a spend, refuses a hold above the agreed
    maximum and spends the code's step. Raises PERMISSION_DENIED (CONSENT_REQUIRED,
    CONSENT_INVALID via ConsentFailure, CONSENT_LOCKED, CONSENT_EXCEEDED, CONSENT_REUSED) or
    RESOURCE_EXHAUSTED CONSENT_RATE_LIMITED. `member` None: not a member here."""
    if not code:
        raise PermissionDenied("CONSENT_REQUIRED", "the member's consent code is required")
    if binding.purpose == codes.SPEND and binding.max_points < 1:
        raise PermissionDenied(
            "CONSENT_REQUIRED", "a spend code is bound to the most points agreed: give it"
        )
    member_pk = None if member is None else member.id
    check_open(conn, member_pk, binding.acquirer_id, now)
    secret = "" if member is None else wallet_secret(member)
    step = matching_step(secret, binding, code, now)
    if step is None or member is None:
        raise ConsentFailure(member_pk, binding.acquirer_id)
    if binding.purpose == codes.SPEND:
        if points > binding.max_points:
            raise PermissionDenied(
                "CONSENT_EXCEEDED",
                f"the member agreed to at most {binding.max_points} points, not {points}",
                max_points=str(binding.max_points),
            )
        used = select(consent_uses.c.time_step).where(
            consent_uses.c.member_pk == member.id, consent_uses.c.time_step == step
        )
        if conn.execute(used).first() is not None:
            raise PermissionDenied(
                "CONSENT_REUSED",
                "this one-time code was already used; ask the member for a new one",
            )
        conn.execute(
            insert(consent_uses).values(
                member_pk=member.id, time_step=step, hold_ref=hold_ref, used_at=now
            )
        )
    conn.execute(
        update(consent_guards)
        .where(consent_guards.c.member_pk == member.id, consent_guards.c.failures > 0)
        .values(failures=0)
    )


def record_failure(conn: Connection, failure: ConsentFailure, now: datetime) -> CoalitionError:
    """Counts a wrong code against the acquirer and the member (in its own transaction: the
    refused use case rolled back); returns the refusal to give: CONSENT_INVALID, or
    CONSENT_LOCKED when this try reached MAX_FAILURES (the member is locked and told)."""
    _count_acquirer_failure(conn, failure.acquirer_id, now)
    if failure.member_pk is None:
        return failure
    lock_member(conn, pk=failure.member_pk)  # one count at a time per member
    guard = conn.execute(
        select(consent_guards).where(consent_guards.c.member_pk == failure.member_pk)
    ).first()
    if guard is None or guard.window_started_at + FAILURE_WINDOW <= now:
        failures, started = 1, now
    else:
        failures, started = guard.failures + 1, guard.window_started_at
    locked_until = guard.locked_until if guard is not None else None
    refusal: CoalitionError = failure
    if failures >= MAX_FAILURES:
        locked_until, failures, started = now + LOCK_FOR, 0, now
        _tell_member(conn, failure.member_pk, failure.acquirer_id, locked_until, now)
        refusal = ConsentLocked(
            locked_until,
            f"{MAX_FAILURES} wrong consent codes: the member's spending at other shops is locked "
            f"until {locked_until.isoformat()}; she has been told",
        )
    values = dict(failures=failures, window_started_at=started, locked_until=locked_until)
    if guard is None:
        conn.execute(insert(consent_guards).values(member_pk=failure.member_pk, **values))
    else:
        conn.execute(
            update(consent_guards)
            .where(consent_guards.c.member_pk == failure.member_pk)
            .values(**values)
        )
    return refusal


def _count_acquirer_failure(conn: Connection, acquirer_id: str, now: datetime) -> None:
    t = consent_acquirer_failures
    upsert = pg_insert(t) if conn.dialect.name == "postgresql" else sqlite_insert(t)
    stale = t.c.window_started_at <= now - ACQUIRER_WINDOW
    conn.execute(
        upsert.values(
            acquirer_id=acquirer_id, failures=1, window_started_at=now
        ).on_conflict_do_update(
            index_elements=["acquirer_id"],
            set_=dict(
                failures=case((stale, 1), else_=t.c.failures + 1),
                window_started_at=case((stale, now), else_=t.c.window_started_at),
            ),
        )
    )


def _tell_member(
    conn: Connection, member_pk: int, acquirer_id: str, until: datetime, now: datetime
) -> None:
    """The lock-out notice, through the node's outbox (its dispatcher delivers it)."""
    contact = conn.execute(
        select(member_contacts.c.preferred_channel, member_contacts.c.email).where(
            member_contacts.c.member_pk == member_pk
        )
    ).first()
    # The ledger has no node config: the default settings' channel (the merchant's webhook)
    # unless the member chose email.
    channel = outbox.resolve_channel(
        contact.preferred_channel if contact else None,
        contact.email if contact else None,
        NotificationSettings(),
    )
    outbox.enqueue(
        conn,
        [
            outbox.NewNotification(
                dedupe_key=f"consent-locked:{member_pk}:{until.isoformat()}",
                member_pk=member_pk,
                kind="consent_locked",
                payload={
                    "acquirer_id": acquirer_id,
                    "locked_until": until.isoformat(),
                    "subject": "积分跨店使用已暂时锁定 / Cross-shop spending locked",
                    "text": (
                        f"有人连续 {MAX_FAILURES} 次输入错误的积分授权码（{acquirer_id}），"
                        f"跨店使用已锁定至 {until.isoformat()}。\n"
                        f"Someone entered {MAX_FAILURES} wrong consent codes (at {acquirer_id}); "
                        f"spending your points at other shops is locked until "
                        f"{until.isoformat()}.\n"
                    ),
                },
                channel=channel,
                next_attempt_at=now,
            )
        ],
        now,
    )
