"""Bound consent codes: what the member's wallet shows as six digits, bound to what she agreed to.

A code is an HMAC-based one-time password (RFC 4226's dynamic truncation over HMAC-SHA-256) of
the wallet secret her issuer gave her, over the facts she saw: "spend up to 450 tea-house points
at noodle-bar" (purpose `spend`, issuer, acquirer, maximum points, optionally the order), or
"show noodle-bar my balance here" (purpose `portfolio`), and the 30-second time step. A code for
one acquirer, amount or order is worthless for another ("dynamic linking", PSD2 RTS art. 5).
docs/protocol.md, "The member's consent", is the language-neutral description; the test vectors
in docs/test-vectors/ fix every byte. The wallet and the issuer both use `bound_code`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime

TAG = b"COALITION-CONSENT-V1"
STEP_SECONDS = 30
DIGITS = 6
SPEND = "spend"
PORTFOLIO = "portfolio"
PURPOSES = (SPEND, PORTFOLIO)


def time_step(at: datetime) -> int:
    """RFC 6238's T: whole 30-second steps since the Unix epoch (T0 = 0)."""
    return int(at.timestamp()) // STEP_SECONDS


def secret_bytes(wallet_secret: str) -> bytes:
    """The wallet secret is RFC 4648 base32 (as authenticator apps hold it); padding optional."""
    text = wallet_secret.strip().replace(" ", "").upper()
    return base64.b32decode(text + "=" * (-len(text) % 8))


def consent_message(
    purpose: str, issuer_id: str, acquirer_id: str, max_points: int, order_id: str, step: int
) -> bytes:
    """What the code authenticates. Ids never hold 0x00 (they are [A-Za-z0-9._:-]), so the
    zero-separated fields cannot be shifted into one another."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown consent purpose {purpose!r}")
    if max_points < 0 or step < 0:
        raise ValueError("max_points and the time step are never negative")
    fields = (purpose, issuer_id, acquirer_id, str(max_points), order_id)
    return (
        TAG + b"\x00" + b"\x00".join(f.encode() for f in fields) + b"\x00" + step.to_bytes(8, "big")
    )


def truncate(mac: bytes, digits: int = DIGITS) -> str:
    """RFC 4226 section 5.3 dynamic truncation, applied to a 32-byte HMAC-SHA-256."""
    offset = mac[-1] & 0x0F
    value = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(value % 10**digits).zfill(digits)


def bound_code(
    wallet_secret: str,
    *,
    purpose: str,
    issuer_id: str,
    acquirer_id: str,
    max_points: int,
    order_id: str,
    step: int,
) -> str:
    """The six digits the wallet shows for these facts at this time step."""
    message = consent_message(purpose, issuer_id, acquirer_id, max_points, order_id, step)
    return truncate(hmac.new(secret_bytes(wallet_secret), message, hashlib.sha256).digest())


def spend_code(
    wallet_secret: str,
    issuer_id: str,
    acquirer_id: str,
    max_points: int,
    at: datetime,
    order_id: str = "",
) -> str:
    """The wallet's code for "spend up to `max_points` of `issuer_id`'s points at `acquirer_id`"."""
    return bound_code(
        wallet_secret,
        purpose=SPEND,
        issuer_id=issuer_id,
        acquirer_id=acquirer_id,
        max_points=max_points,
        order_id=order_id,
        step=time_step(at),
    )


def portfolio_code(wallet_secret: str, issuer_id: str, acquirer_id: str, at: datetime) -> str:
    """The wallet's code for "let `acquirer_id` see my balance at `issuer_id`"."""
    return bound_code(
        wallet_secret,
        purpose=PORTFOLIO,
        issuer_id=issuer_id,
        acquirer_id=acquirer_id,
        max_points=0,
        order_id="",
        step=time_step(at),
    )
