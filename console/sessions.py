"""Who is logged in: a signed, expiring cookie naming a role and (for a merchant) its shop.

The cookie is `<payload>.<HMAC-SHA256>` over the console's own secret; nothing in it is secret,
nothing in it can be changed without the secret. A merchant's session is bound to one shop:
every merchant route compares it with the shop in the path.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

COOKIE = "coalition_console"
MERCHANT, OPERATOR = "merchant", "operator"
LIFETIME_SECONDS = 8 * 3600


@dataclass(frozen=True)
class Session:
    role: str  # MERCHANT or OPERATOR
    subject: str  # the merchant id, or the operator's name
    expires: int  # unix seconds

    def may_see_shop(self, merchant_id: str) -> bool:
        return self.role == MERCHANT and self.subject == merchant_id


class Sessions:
    def __init__(self, secret: bytes, lifetime: int = LIFETIME_SECONDS) -> None:
        if len(secret) < 16:
            raise ValueError("the console's session secret must be at least 16 bytes")
        self.secret = secret
        self.lifetime = lifetime

    def issue(self, role: str, subject: str, now: float | None = None) -> str:
        expires = int((now if now is not None else time.time()) + self.lifetime)
        payload = json.dumps({"r": role, "s": subject, "e": expires}, separators=(",", ":"))
        body = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
        return f"{body}.{self._mac(body)}"

    def read(self, cookie: str | None, now: float | None = None) -> Session | None:
        if not cookie or "." not in cookie:
            return None
        body, mac = cookie.rsplit(".", 1)
        if not hmac.compare_digest(mac, self._mac(body)):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            session = Session(str(data["r"]), str(data["s"]), int(data["e"]))
        except (ValueError, KeyError, TypeError):
            return None
        if session.expires < (now if now is not None else time.time()):
            return None
        return session

    def _mac(self, body: str) -> str:
        return hmac.new(self.secret, body.encode(), hashlib.sha256).hexdigest()
