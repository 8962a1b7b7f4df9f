"""Member tokens of the member-facing API: short-lived, HMAC-SHA256-signed by the node.

token = base64url(payload) "." base64url(HMAC-SHA256(key, "coalition-mall-member-v1." payload))
payload = JSON {"m": member_id, "exp": unix seconds}. The merchant's own backend asks the node
for one (MallAdminService.IssueMemberToken, with the node's admin credential) once it has logged
the member in, and hands it to the mini-program; it is presented as "authorization: Bearer …".
The node's key is a secret of its configuration; rotating it ends every token at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

from coalition_kernel.errors import InvalidArgument, Unauthenticated
from merchant_node.ledger.commands import check_id

_DOMAIN = b"coalition-mall-member-v1."
DEFAULT_TTL = 900
MAX_TTL = 86400


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue(key: bytes, member_id: str, now: datetime, ttl_seconds: int = 0) -> tuple[str, datetime]:
    check_id("member_id", member_id)
    ttl = ttl_seconds or DEFAULT_TTL
    if not 1 <= ttl <= MAX_TTL:
        raise InvalidArgument("BAD_TTL", f"ttl_seconds must be 1-{MAX_TTL}")
    expires = now + timedelta(seconds=ttl)
    payload = json.dumps({"m": member_id, "exp": int(expires.timestamp())}, separators=(",", ":"))
    body = _b64(payload.encode())
    mac = hmac.new(key, _DOMAIN + body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}", datetime.fromtimestamp(int(expires.timestamp()), UTC)


def verify(key: bytes, token: str, now: datetime) -> str:
    """The member the token speaks for, or UNAUTHENTICATED (bad, forged or expired)."""
    try:
        body, mac = token.split(".")
        expected = hmac.new(key, _DOMAIN + body.encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(_unb64(mac), expected):
            raise ValueError("signature")
        payload = json.loads(_unb64(body))
        member_id, exp = str(payload["m"]), int(payload["exp"])
    except (ValueError, KeyError, TypeError) as exc:
        raise Unauthenticated("BAD_MEMBER_TOKEN", "the member token is not valid") from exc
    if exp <= now.timestamp():
        raise Unauthenticated("MEMBER_TOKEN_EXPIRED", "the member token expired; ask for a new one")
    return member_id
