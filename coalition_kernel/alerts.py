"""The alerts table a node's and the exchange's database each keep (node migration 0012,
exchange migration 0006): an outbox of anomalies the console's rules raised. `dedupe_key` names
the anomaly (rule, scope, hour), so however often the rules run it is raised once; delivery to
the webhook is retried from here until it succeeds."""

from __future__ import annotations

from sqlalchemy import (
    CheckConstraint,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from coalition_kernel.db import Id, UtcDateTime

ALERT_STATUSES = ("pending", "sent", "failed")


def alerts_table(metadata: MetaData) -> Table:
    return Table(
        "console_alerts",
        metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("dedupe_key", String(200), nullable=False, unique=True),
        Column("rule_id", String(64), nullable=False),
        Column("scope", String(64), nullable=False),  # a merchant id, or "district"
        Column("severity", String(8), nullable=False),
        Column("message", Text, nullable=False),
        Column("details", Text, nullable=False),  # JSON object: the figures that raised it
        Column("raised_at", UtcDateTime, nullable=False),
        Column("status", String(8), nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("next_attempt_at", UtcDateTime, nullable=False),
        Column("sent_at", UtcDateTime),
        Column("last_error", Text),
        CheckConstraint("status IN ('pending', 'sent', 'failed')", name="status_known"),
        Index("ix_console_alerts_due", "status", "next_attempt_at"),
    )
