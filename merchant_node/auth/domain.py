"""Who may call the node, and how much: API keys, scopes and the merchant's limits (pure).

A key reads `cpk_<key id>_<secret>`: the key id (16 hex digits) finds the client's row, the
secret (32 random bytes, URL-safe base64) proves it. The node keeps only a SHA-256 digest of
the secret (a 256-bit random secret needs no slow hash: nobody can guess it, and a slow hash
would make every refused call expensive), compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime

from coalition_kernel.errors import InvalidArgument, PermissionDenied, Unauthenticated

POS = "pos"  # earn, redeem, refund, enroll, check-ins, cross-shop redemption
READ = "read"  # balances, history, profiles, portfolio
ADMIN = "admin"  # the program (RulesAdminService), campaigns' pools and reports
SCOPES = (POS, READ, ADMIN)

PREFIX = "cpk"
_KEY = re.compile(r"cpk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_DIGEST_TAG = b"coalition-node-api-key-v1\x00"

# Which scope each method needs. A method missing here needs `admin`: a new RPC is closed until
# someone decides who may call it.
MERCHANT_NODE_SCOPES = {
    "EnrollMember": POS,
    "Earn": POS,
    "Redeem": POS,
    "Refund": POS,
    "QuoteCrossRedemption": POS,
    "AuthorizeCrossRedemption": POS,
    "CaptureCrossRedemption": POS,
    "VoidCrossRedemption": POS,
    "CheckIn": POS,
    "RecordEngagement": POS,
    "UpgradeTier": POS,
    "GetBalance": READ,
    "ListHistory": READ,
    "GetPortfolio": READ,
    "GetMemberProfile": READ,
}


@dataclass(frozen=True)
class Limits:
    """What one call may move; None: no limit. The node's defaults, overridden per client."""

    max_points_per_earn: int | None = None
    max_points_per_redeem: int | None = None
    max_order_fen: int | None = None
    calls_per_minute: int | None = None

    def over(self, defaults: Limits) -> Limits:
        """These limits where set, `defaults` elsewhere."""
        return Limits(
            **{
                name: getattr(self, name) if getattr(self, name) is not None else value
                for name, value in defaults.__dict__.items()
            }
        )

    def check_order(self, field: str, amount_fen: int) -> None:
        """Refuses an order amount above the limit, before anything is written."""
        if self.max_order_fen is not None and amount_fen > self.max_order_fen:
            raise limit_exceeded(field, amount_fen, self.max_order_fen)

    def check_points(self, field: str, points: int, limit: int | None) -> None:
        if limit is not None and points > limit:
            raise limit_exceeded(field, points, limit)


NO_LIMITS = Limits()


def limit_exceeded(field: str, asked: int, limit: int) -> PermissionDenied:
    return PermissionDenied(
        "LIMIT_EXCEEDED",
        f"{field} {asked} is above this client's limit of {limit}; the merchant sets the limit "
        "(coalition node client add --max-…)",
        field=field,
        requested=str(asked),
        limit=str(limit),
    )


@dataclass(frozen=True)
class ApiClient:
    """One caller of the node (a till, a web shop, the merchant's admin tool)."""

    key_id: str
    name: str
    secret_digest: str
    scopes: frozenset[str]
    created_at: datetime
    revoked_at: datetime | None = None
    limits: Limits = NO_LIMITS

    def with_limits_over(self, defaults: Limits) -> ApiClient:
        return replace(self, limits=self.limits.over(defaults))

    def require(self, scope: str, method: str) -> None:
        if scope not in self.scopes:
            raise PermissionDenied(
                "SCOPE_DENIED",
                f"{method} needs an API key with scope '{scope}'; this key ({self.name}) has "
                f"{', '.join(sorted(self.scopes)) or 'none'}",
                scope=scope,
            )


@dataclass(frozen=True)
class IssuedKey:
    """A new key: `key` is shown once and never stored."""

    client: ApiClient
    key: str


def new_key() -> tuple[str, str, str]:
    """A fresh key: (key id, the whole key to hand out, the digest to store)."""
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return key_id, f"{PREFIX}_{key_id}_{secret}", digest(key_id, secret)


def digest(key_id: str, secret: str) -> str:
    return hashlib.sha256(_DIGEST_TAG + key_id.encode() + b"\x00" + secret.encode()).hexdigest()


def parse_key(key: str) -> tuple[str, str]:
    """(key id, secret) of a presented key, or UNAUTHENTICATED/API_KEY_INVALID."""
    match = _KEY.fullmatch(key)
    if match is None:
        raise Unauthenticated(
            "API_KEY_INVALID", "the API key is malformed; keys read cpk_<key id>_<secret>"
        )
    return match.group(1), match.group(2)


def bearer_of(metadata: tuple[tuple[str, str | bytes], ...] | None) -> str:
    """The key of an `authorization: Bearer <key>` header, or API_KEY_REQUIRED."""
    for name, value in metadata or ():
        if name == "authorization" and isinstance(value, str):
            scheme, _, key = value.partition(" ")
            if scheme.lower() == "bearer" and key.strip():
                return key.strip()
    raise Unauthenticated(
        "API_KEY_REQUIRED",
        "this node requires an API key: send gRPC metadata 'authorization: Bearer <key>' "
        "(keys come from `coalition node client add`)",
    )


def verify(client: ApiClient | None, key_id: str, secret: str) -> ApiClient:
    """The client a key proves, or UNAUTHENTICATED (unknown, wrong secret, revoked)."""
    expected = client.secret_digest if client is not None else "0" * 64
    # Compared even for an unknown id, so the answer's timing does not tell ids apart.
    proven = hmac.compare_digest(expected.encode(), digest(key_id, secret).encode())
    if client is None or not proven:
        raise Unauthenticated("API_KEY_INVALID", "the API key is not known to this node")
    if client.revoked_at is not None:
        raise Unauthenticated(
            "API_KEY_REVOKED", f"the API key of client {client.name} was revoked; ask for a new one"
        )
    return client


def parse_scopes(text: str) -> frozenset[str]:
    scopes = frozenset(s.strip() for s in text.split(",") if s.strip())
    unknown = scopes - set(SCOPES)
    if not scopes or unknown:
        raise InvalidArgument(
            "BAD_SCOPES", f"scopes are a comma-separated subset of {', '.join(SCOPES)}"
        )
    return scopes


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InvalidArgument(
            "BAD_CLIENT_NAME", "a client name is 1-64 of A-Z a-z 0-9 . _ : - (e.g. till-1)"
        )
    return name


def check_limits(limits: Limits) -> Limits:
    for name, value in limits.__dict__.items():
        if value is not None and value < 0:
            raise InvalidArgument("BAD_LIMIT", f"{name} must be 0 or more")
    return limits
