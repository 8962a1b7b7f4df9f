"""A node's configuration file (TOML): who it is, where its ledger lives, its rates, and how it
tells members things ([notifications])."""

from __future__ import annotations

import json
import pathlib
import tomllib
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from coalition_kernel.points import parse_ratio
from merchant_node.notify.quiet import parse_quiet_hours

CHANNELS = ("webhook", "email")


@dataclass(frozen=True)
class NotificationSettings:
    """The `[notifications]` section. Every key has a default, so older files load unchanged."""

    # The merchant's own backend: it receives every event signed and pushes it to the member
    # (app, mini-program, SMS). Empty: no webhook channel.
    webhook_url: str = ""
    webhook_timeout_seconds: float = 10.0
    # The channel of members who have not chosen one.
    default_channel: str = "webhook"
    # SMTP for members who prefer email. Empty host: no email channel.
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_starttls: bool = True
    smtp_username: str = ""
    smtp_password: str = ""
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

    def __post_init__(self) -> None:
        object.__setattr__(self, "reminder_offsets_days", tuple(self.reminder_offsets_days))
        if self.default_channel not in CHANNELS:
            raise ValueError(f"default_channel must be one of {', '.join(CHANNELS)}")
        if any(d < 1 or d > 365 for d in self.reminder_offsets_days):
            raise ValueError("reminder_offsets_days must be 1-365 days")
        if self.max_attempts < 1 or self.backoff_base_seconds < 1:
            raise ValueError("max_attempts and backoff_base_seconds must be at least 1")
        if self.lease_seconds < 2 * self.send_budget.total_seconds():
            raise ValueError("lease_seconds must be at least four times the longest timeout")
        ZoneInfo(self.timezone)
        parse_quiet_hours(self.quiet_hours)

    @property
    def send_budget(self) -> timedelta:
        """What one send may take: twice the longest channel timeout."""
        return timedelta(seconds=2 * max(self.webhook_timeout_seconds, self.smtp_timeout_seconds))


@dataclass(frozen=True)
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
    # Bearer token of the RulesAdminService (empty: program administration disabled).
    admin_token: str = ""
    notifications: NotificationSettings = field(default_factory=NotificationSettings)

    def __post_init__(self) -> None:
        parse_ratio(self.points_per_yuan)
        parse_ratio(self.fen_per_point)
        if self.points_ttl_days < 0:
            raise ValueError("points_ttl_days must be 0 (never expire) or more")
        if isinstance(self.notifications, dict):
            object.__setattr__(self, "notifications", NotificationSettings(**self.notifications))

    @classmethod
    def load(cls, path: pathlib.Path) -> NodeConfig:
        with path.open("rb") as f:
            data = tomllib.load(f)
        return cls(
            **data["node"], notifications=NotificationSettings(**data.get("notifications", {}))
        )

    def save(self, path: pathlib.Path) -> None:
        node = asdict(self)
        notifications = node.pop("notifications")
        lines = ["# Merchant node configuration (coalition node init).", "[node]"]
        lines += _toml_lines(node)
        lines += ["", "[notifications]"] + _toml_lines(notifications)
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)  # it holds the admin token and the SMTP password


def _toml_lines(values: dict[str, Any]) -> list[str]:
    # JSON strings, integers, floats, booleans and arrays of them are valid TOML values.
    return [f"{key} = {json.dumps(value)}" for key, value in values.items()]
