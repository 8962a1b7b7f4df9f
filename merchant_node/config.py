"""A node's configuration file (TOML): who it is, where its ledger lives, its rates, and how it
tells members things ([notifications]).

Validated whole when loaded (coalition_kernel.settings): every problem is named by file, key and
expected form. Environment variables override any key: COALITION_NODE__<KEY> for a key of
[node] (e.g. COALITION_NODE__ADMIN_TOKEN), COALITION_NODE__<TABLE>__<KEY> for a key of another
table (e.g. COALITION_NODE__NOTIFICATIONS__SMTP_PASSWORD), so secrets can stay out of the file.

To add a key: add a field with a default to NodeConfig (a key of [node]) or to a table's class
(e.g. NotificationSettings), with a comment and, if its form is constrained, a field_validator
raising ValueError that names the expected form. Older files load unchanged (the default).
To add a table: a new `@dataclass(frozen=True, config=STRICT_KEYS)` class whose keys all have
defaults, and a NodeConfig field of that type with `field(default_factory=…)`: it is read from
and written to `[<field name>]`.
"""

from __future__ import annotations

import pathlib
import re
from dataclasses import field
from datetime import timedelta
from typing import ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import field_validator, model_validator
from pydantic.dataclasses import dataclass

from coalition_kernel.points import parse_ratio
from coalition_kernel.settings import STRICT_KEYS, load_config, toml_text
from merchant_node.auth.domain import Limits
from merchant_node.notify.quiet import parse_quiet_hours

# webhook and email are the node's own; the others are delivered through apprise URLs the
# merchant configures ([notifications] apprise_urls), e.g. an SMS gateway, WeCom, app push.
CHANNELS = ("webhook", "email", "sms", "wechat", "wecom", "push", "app")
ENV_PREFIX = "COALITION_NODE"


@dataclass(frozen=True, config=STRICT_KEYS)
class NotificationSettings:
    """The `[notifications]` section. Every key has a default, so older files load unchanged."""

    # The merchant's own backend: it receives every event signed and pushes it to the member
    # (app, mini-program, SMS). Empty: no webhook channel.
    webhook_url: str = ""
    webhook_timeout_seconds: float = 10.0
    # The channel of members who have not chosen one.
    default_channel: Literal["webhook", "email"] = "webhook"
    # SMTP for members who prefer email. Empty host: no email channel.
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_starttls: bool = True
    smtp_username: str = ""
    smtp_password: str = ""  # better: COALITION_NODE__NOTIFICATIONS__SMTP_PASSWORD
    smtp_from: str = ""
    smtp_timeout_seconds: float = 30.0
    # The merchant's wall clock: quiet hours and the days reminders name.
    timezone: str = "Asia/Shanghai"
    # "HH:MM-HH:MM" local (may span midnight), or "" for none; a member may override it.
    quiet_hours: str = "22:00-08:00"
    # Days before expiry a member is reminded (the seeds: a week, then three days).
    reminder_offsets_days: tuple[int, ...] = (7, 3)
    # Delivery: attempts before a notification is dead, backoff between them, and how long a
    # claim owns a notification (a send starts only with twice the channel timeouts left).
    max_attempts: int = 8
    backoff_base_seconds: int = 60
    backoff_max_seconds: int = 6 * 3600
    lease_seconds: int = 300
    # Channels delivered by apprise (https://github.com/caronc/apprise): channel name (sms,
    # wechat, wecom, push, app) -> an apprise URL; "{member_id}" and "{email}" are filled in
    # per member, e.g. wecom = "wecom://<corpid>/<secret>/<agentid>/{member_id}".
    apprise_urls: dict[str, str] = field(default_factory=dict)
    # A member's preferred channel that this node cannot deliver on falls back to the first
    # configured channel of this list, then to default_channel.
    fallback_order: tuple[str, ...] = ("webhook", "email")
    # Warnings to the merchant herself (the at-risk share jumping): an apprise URL of her own
    # inbox (e.g. a WeCom group bot "wecombot://<key>", "mailto://...", an SMS gateway).
    # Empty: they go to the merchant's webhook, like every other event.
    merchant_alert_url: str = ""

    @field_validator("apprise_urls")
    @classmethod
    def _apprise(cls, value: dict[str, str]) -> dict[str, str]:
        for name, url in value.items():
            if name not in CHANNELS or name in ("webhook", "email"):
                raise ValueError(f"{name!r} is not an apprise channel; one of {CHANNELS[2:]}")
            if "://" not in url:
                raise ValueError(f"{name}: {url!r} is not an apprise URL (scheme://...)")
        return value

    @field_validator("merchant_alert_url")
    @classmethod
    def _merchant_alert(cls, value: str) -> str:
        if value and "://" not in value:
            raise ValueError(f"{value!r} is not an apprise URL (scheme://...)")
        return value

    @field_validator("fallback_order")
    @classmethod
    def _fallback(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [c for c in value if c not in CHANNELS]
        if unknown:
            raise ValueError(f"unknown channel(s) {unknown}; channels: {CHANNELS}")
        return value

    def configured_channels(self) -> set[str]:
        """The channels this node can deliver on."""
        own = {"webhook"} if self.webhook_url else set()
        own |= {"email"} if self.smtp_host else set()
        return own | set(self.apprise_urls)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. Asia/Shanghai)") from None
        return value

    @field_validator("quiet_hours")
    @classmethod
    def _quiet(cls, value: str) -> str:
        try:
            parse_quiet_hours(value)
        except ValueError:
            raise ValueError(
                f'"{value}" is not HH:MM-HH:MM (e.g. "22:00-08:00"; "" for none)'
            ) from None
        return value

    @field_validator("reminder_offsets_days")
    @classmethod
    def _offsets(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(d < 1 or d > 365 for d in value):
            raise ValueError(f"{list(value)} must be days from 1 to 365")
        return value

    @field_validator(
        "max_attempts",
        "backoff_base_seconds",
        "backoff_max_seconds",
        "lease_seconds",
        "smtp_port",
    )
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"{value} must be at least 1")
        return value

    @field_validator("webhook_timeout_seconds", "smtp_timeout_seconds")
    @classmethod
    def _timeout(cls, value: float) -> float:
        if value <= 0:
            raise ValueError(f"{value} must be more than 0 seconds")
        return value

    @model_validator(mode="after")
    def _lease_covers_a_send(self) -> NotificationSettings:
        if self.lease_seconds < 2 * self.send_budget.total_seconds():
            raise ValueError(
                f"lease_seconds ({self.lease_seconds}) must be at least four times the longest "
                f"timeout ({max(self.webhook_timeout_seconds, self.smtp_timeout_seconds)})"
            )
        return self

    @property
    def send_budget(self) -> timedelta:
        """What one send may take: twice the longest channel timeout."""
        return timedelta(seconds=2 * max(self.webhook_timeout_seconds, self.smtp_timeout_seconds))


@dataclass(frozen=True, config=STRICT_KEYS)
class AuthSettings:
    """The `[auth]` table: who may call the node and how much (docs/merchant-node.md, "Caller
    authentication"). Every key optional; API keys themselves live in the database
    (`coalition node client add`)."""

    # Serve MerchantNodeService and RulesAdminService to anyone, WITHOUT API keys: a laptop demo
    # only (a warning at start). `coalition node serve --insecure-no-auth` does the same.
    insecure_no_auth: bool = False
    # The node's limits on one call, for every client whose own limit is not set (0: none).
    max_points_per_earn: int = 0
    max_points_per_redeem: int = 0
    max_order_fen: int = 0
    calls_per_minute: int = 0

    @field_validator(
        "max_points_per_earn", "max_points_per_redeem", "max_order_fen", "calls_per_minute"
    )
    @classmethod
    def _limit(cls, value: int) -> int:
        if value < 0:
            raise ValueError(f"{value} must be 0 (no limit) or more")
        return value

    def limits(self) -> Limits:
        return Limits(
            max_points_per_earn=self.max_points_per_earn or None,
            max_points_per_redeem=self.max_points_per_redeem or None,
            max_order_fen=self.max_order_fen or None,
            calls_per_minute=self.calls_per_minute or None,
        )


_LISTEN = re.compile(r"^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]*):(\d{1,5})\Z")


@dataclass(frozen=True, config=STRICT_KEYS)
class MallConfig:
    """The `[mall]` section: the points mall's member-facing HTTP/JSON API (docs/mall.md).
    Written to node.toml only once it differs from these defaults."""

    omit_when_default: ClassVar[bool] = True

    # Where the member API (Connect, HTTP/JSON) listens, "HOST:PORT"; empty: no HTTP API (the
    # mall's gRPC services are on the node's own port either way).
    http_listen: str = ""
    # Origins browsers may call it from (CORS), e.g. "https://h5.shop.example"; "*": any.
    cors_origins: tuple[str, ...] = ()
    # The key member tokens are signed with (hex, at least 32 bytes); required with
    # http_listen. Better: COALITION_NODE__MALL__TOKEN_KEY. A new key ends every member token.
    token_key: str = ""
    # A points + cash order is paid at the till within this many minutes, or lapses.
    payment_window_minutes: int = 15
    # Members are reminded this many days before a coupon expires.
    coupon_reminder_days: int = 3

    @field_validator("http_listen")
    @classmethod
    def _address(cls, value: str) -> str:
        match = _LISTEN.match(value)
        if value and (match is None or int(match.group(2)) > 65535):
            raise ValueError(f'"{value}" is not HOST:PORT (e.g. "0.0.0.0:8080")')
        return value

    @field_validator("token_key")
    @classmethod
    def _key(cls, value: str) -> str:
        try:
            ok = not value or len(bytes.fromhex(value)) >= 32
        except ValueError:
            ok = False
        if not ok:
            raise ValueError("must be at least 64 hex characters (32 bytes)")
        return value

    @field_validator("payment_window_minutes", "coupon_reminder_days")
    @classmethod
    def _in_range(cls, value: int) -> int:
        if not 1 <= value <= 10_000:
            raise ValueError(f"{value} must be 1-10000")
        return value

    @model_validator(mode="after")
    def _key_with_api(self) -> MallConfig:
        if self.http_listen and not self.token_key:
            raise ValueError("http_listen needs token_key (COALITION_NODE__MALL__TOKEN_KEY)")
        return self


@dataclass(frozen=True, config=STRICT_KEYS)
class NodeConfig:
    merchant_id: str
    database_url: str
    listen: str = "127.0.0.1:50051"
    points_per_yuan: str = "1"
    fen_per_point: str = "1"
    points_ttl_days: int = 365
    private_key_file: str = "node_ed25519.pem"
    public_key_file: str = "node_ed25519.pub.pem"
    key_id: str = ""
    # The coalition exchange this node trusts (empty: a standalone node).
    exchange_endpoint: str = ""
    exchange_public_key_file: str = ""
    # The API key (scope admin) the merchant's own tools present to RulesAdminService
    # (`coalition rules …`); `node init` issues it. Better kept out of the file:
    # COALITION_NODE__ADMIN_TOKEN.
    admin_token: str = ""
    # The key that seals members' wallet secrets ("": wallet.key beside private_key_file);
    # $COALITION_WALLET_KEYS (the file's text) overrides the file.
    wallet_key_file: str = ""
    # TLS on the listener, like the exchange's: a certificate and its key; with a client CA,
    # mutual TLS (callers need a certificate from that CA). "": plaintext.
    tls_cert_file: str = ""
    tls_key_file: str = ""
    client_ca_file: str = ""
    # Serve Prometheus /metrics on this port (0: not served); COALITION_METRICS_PORT wins.
    metrics_port: int = 0
    notifications: NotificationSettings = field(default_factory=NotificationSettings)
    mall: MallConfig = field(default_factory=MallConfig)
    auth: AuthSettings = field(default_factory=AuthSettings)

    @field_validator("merchant_id", "database_url")
    @classmethod
    def _given(cls, value: str) -> str:
        if not value:
            raise ValueError("must not be empty")
        return value

    @field_validator("listen")
    @classmethod
    def _address(cls, value: str) -> str:
        match = _LISTEN.match(value)
        if match is None or int(match.group(2)) > 65535:
            raise ValueError(f'"{value}" is not HOST:PORT (e.g. "0.0.0.0:50051")')
        return value

    @field_validator("points_per_yuan", "fen_per_point")
    @classmethod
    def _ratio(cls, value: str) -> str:
        try:
            parse_ratio(value)
        except (ValueError, ZeroDivisionError):
            raise ValueError(
                f'"{value}" is not a positive rate such as "1", "1.5" or "3/2"'
            ) from None
        return value

    @field_validator("metrics_port")
    @classmethod
    def _port(cls, value: int) -> int:
        if not 0 <= value <= 65535:
            raise ValueError(f"{value} is not a port (0 for none, or 1-65535)")
        return value

    @field_validator("points_ttl_days")
    @classmethod
    def _ttl(cls, value: int) -> int:
        if value < 0:
            raise ValueError(f"{value} must be 0 (never expire) or more days")
        return value

    @classmethod
    def load(cls, path: pathlib.Path) -> NodeConfig:
        """The file with the environment over it; ConfigError lists every problem."""
        return load_config(cls, path, table="node", env_prefix=ENV_PREFIX)

    def save(self, path: pathlib.Path) -> None:
        path.write_text(
            toml_text(self, "node", "Merchant node configuration (coalition node init).")
        )
        path.chmod(0o600)  # it may hold the admin token and the SMTP password
