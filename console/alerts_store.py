"""Raising alerts once and delivering them: rows of coalition_kernel.alerts' table, in the
database of the shop (or the exchange, for the district) they are about."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Table, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from merchant_node.figures.schema import console_alerts as table

# Both databases' tables have the same columns (one factory); statements built on one serve both.
RETRY_AFTER = (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10))


@dataclass(frozen=True)
class Alert:
    dedupe_key: str  # the anomaly: rule, scope and the hour it is about
    rule_id: str
    scope: str
    severity: str
    message: str
    details: dict[str, Any]


def raise_alerts(engine: Engine, alerts: list[Alert], now: datetime) -> list[Alert]:
    """Stores the alerts not raised before; returns those (the newly raised)."""
    raised = []
    with engine.begin() as conn:
        for alert in alerts:
            values = dict(
                dedupe_key=alert.dedupe_key,
                rule_id=alert.rule_id,
                scope=alert.scope,
                severity=alert.severity,
                message=alert.message,
                details=json.dumps(alert.details, sort_keys=True),
                raised_at=now,
                status="pending",
                attempts=0,
                next_attempt_at=now,
            )
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            stmt = dialect.insert(table).values(**values).on_conflict_do_nothing()
            if conn.execute(stmt).rowcount:
                raised.append(alert)
    return raised


def recent_alerts(engine: Engine, limit: int = 20) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(table).order_by(table.c.id.desc()).limit(limit)).all()
    return [
        {
            "rule_id": r.rule_id,
            "scope": r.scope,
            "severity": r.severity,
            "message": r.message,
            "raised_at": r.raised_at.isoformat(timespec="minutes"),
            "status": r.status,
        }
        for r in rows
    ]


def deliver_due(
    engine: Engine, post: Callable[[dict[str, Any]], None], now: datetime, limit: int = 50
) -> int:
    """POSTs the due alerts (one call each); marks each sent, or retries it later. Returns how
    many were sent. `post` raises on any failure (refused, unreachable, not 2xx)."""
    with engine.connect() as conn:
        due = conn.execute(
            select(table)
            .where(table.c.status.in_(("pending", "failed")), table.c.next_attempt_at <= now)
            .order_by(table.c.id)
            .limit(limit)
        ).all()
    sent = 0
    for row in due:
        body = {
            "alert_id": row.dedupe_key,
            "rule_id": row.rule_id,
            "scope": row.scope,
            "severity": row.severity,
            "message": row.message,
            "details": json.loads(row.details),
            "raised_at": row.raised_at.isoformat(),
        }
        try:
            post(body)
        except Exception as exc:  # noqa: BLE001 - any failure is retried, and recorded
            wait = RETRY_AFTER[min(row.attempts, len(RETRY_AFTER) - 1)]
            _mark(engine, table, row.id, status="failed", attempts=row.attempts + 1,
                  next_attempt_at=now + wait, last_error=str(exc)[:500])  # fmt: skip
            continue
        _mark(engine, table, row.id, status="sent", attempts=row.attempts + 1, sent_at=now)
        sent += 1
    return sent


def _mark(engine: Engine, t: Table, alert_id: int, **values: Any) -> None:
    with engine.begin() as conn:
        conn.execute(update(t).where(t.c.id == alert_id).values(**values))


__all__ = ["Alert", "raise_alerts", "recent_alerts", "deliver_due", "insert"]
