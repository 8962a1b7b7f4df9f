"""The member's consent to spend points elsewhere: one-time codes from the wallet secret.

RFC 6238 TOTP (pyotp: SHA-1, 6 digits, 30-second steps), accepted one step either side of now
for clock drift. Each accepted time step is recorded, so a code is spent once: a merchant that
saw a code cannot replay it for a second redemption.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pyotp
from sqlalchemy import Connection, Row, insert, select

from coalition_kernel.errors import PermissionDenied
from merchant_node.auth import vault
from merchant_node.ledger.schema import consent_uses

STEP_SECONDS = 30


def new_wallet_secret() -> str:
    return pyotp.random_base32()


def wallet_uri(secret: str, member_id: str, issuer_name: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=member_id, issuer_name=issuer_name)


def accept(conn: Connection, member: Row, code: str, hold_ref: str, now: datetime) -> None:
    """Spends the member's one-time code, or refuses with PERMISSION_DENIED."""
    secret = vault.wallet_secret_of(member)  # sealed at rest (merchant_node/auth/vault.py)
    if not secret or not code:
        raise PermissionDenied(
            "CONSENT_REQUIRED", "the member's one-time redemption code is required"
        )
    totp = pyotp.TOTP(secret)
    for drift in (0, -1, 1):
        at = now + timedelta(seconds=drift * STEP_SECONDS)
        if totp.verify(code, for_time=at, valid_window=0):
            step = totp.timecode(at)
            break
    else:
        raise PermissionDenied(
            "CONSENT_INVALID", "the one-time redemption code is wrong or has expired"
        )
    used = select(consent_uses.c.time_step).where(
        consent_uses.c.member_pk == member.id, consent_uses.c.time_step == step
    )
    if conn.execute(used).first() is not None:
        raise PermissionDenied(
            "CONSENT_REUSED", "this one-time code was already used; ask the member for a new one"
        )
    conn.execute(
        insert(consent_uses).values(
            member_pk=member.id, time_step=step, hold_ref=hold_ref, used_at=now
        )
    )
