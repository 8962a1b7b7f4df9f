"""Running the alert rules (console/alert_rules.py) over the shops' rollups and the exchange,
raising what they find once (console/alerts_store.py) and delivering it to the webhook."""

from __future__ import annotations

import asyncio
import json
import statistics
import urllib.request
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import Engine, select

from console.alert_rules import HourlyBand, NearCap, NodeUnreachable, OutboxBacklog, Rules
from console.alerts_store import Alert, deliver_due, raise_alerts
from console.merchant_view import DISTRICT_TIME
from exchange import registry
from exchange.schema import merchants
from merchant_node.figures import queries

DISTRICT = "district"


def last_hour(now: datetime) -> datetime:
    """The start of the last complete hour."""
    return now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def hourly_measure(engine: Engine, measure: str, start: datetime) -> int | None:
    """The measure over [start, start + 1 h), or None when the shop had no activity at all."""
    end = start + timedelta(hours=1)
    with engine.connect() as conn:
        flows = queries.flows(conn, queries.minute_of(start), queries.minute_of(end))
        if measure == "participation_rate_bps":
            members = queries.member_count(conn)
            active = queries.active_members(conn, start, end)
            if not members:
                return None
            return active * 10_000 // members
    if flows.issued == 0 and flows.redeemed == 0:
        return None
    if measure == "redemptions":
        return flows.redemptions
    return flows.redemption_rate_bps


def band_check(rule: HourlyBand, engine: Engine, merchant_id: str, now: datetime) -> Alert | None:
    hour = last_hour(now)
    value = hourly_measure(engine, rule.measure, hour)
    past = [
        hourly_measure(engine, rule.measure, hour - timedelta(weeks=w))
        for w in range(1, rule.weeks + 1)
    ]
    history = [v for v in past if v is not None]
    if value is None and rule.measure != "redemptions":
        return None
    if len(history) < rule.min_weeks:
        return None  # not enough weeks to know what this hour looks like
    value = value or 0
    mean = statistics.fmean(history)
    spread = statistics.pstdev(history)
    lower = min(mean - rule.sigmas * spread, mean * (1 - rule.min_drop))
    if value >= lower:
        return None
    local = hour.astimezone(DISTRICT_TIME)
    return Alert(
        dedupe_key=f"{rule.id}:{merchant_id}:{hour.isoformat()}",
        rule_id=rule.id,
        scope=merchant_id,
        severity=rule.severity,
        message=(
            f"{merchant_id}: {rule.measure} {value} in the hour from {local:%Y-%m-%d %H:%M} "
            f"is below its band (≥ {lower:.1f}; the same hour of the last weeks: {history})"
        ),
        details={"measure": rule.measure, "value": value, "lower": lower, "history": history},
    )


def backlog_check(
    rule: OutboxBacklog, engine: Engine, merchant_id: str, now: datetime
) -> Alert | None:
    with engine.connect() as conn:
        backlog = queries.outbox_backlog(conn)
        older = queries.outbox_backlog_before(conn, now - timedelta(hours=1))
    if backlog <= rule.above or older <= rule.above:
        return None
    return Alert(
        f"{rule.id}:{merchant_id}:{now:%Y-%m-%dT%H}",
        rule.id,
        merchant_id,
        rule.severity,
        f"{merchant_id}: {backlog} notifications wait for delivery "
        f"({older} of them for over an hour)",
        {"backlog": backlog, "over_an_hour": older},
    )


def cap_checks(rule: NearCap, exchange: Engine, now: datetime) -> list[Alert]:
    found = []
    with exchange.connect() as conn:
        capped = conn.execute(
            select(merchants.c.merchant_id, merchants.c.net_debit_cap_fen).where(
                merchants.c.net_debit_cap_fen.is_not(None)
            )
        ).all()
        for merchant_id, cap in capped:
            debit = registry.unsettled_net_debit(conn, merchant_id, now)
            if cap and debit * 10_000 >= cap * rule.threshold_bps:
                found.append(
                    Alert(
                        f"{rule.id}:{merchant_id}:{now:%Y-%m-%dT%H}",
                        rule.id,
                        DISTRICT,
                        rule.severity,
                        f"issuer {merchant_id} owes {debit} fen unsettled, "
                        f"{debit * 100 // cap}% of its net-debit cap {cap}",
                        {"merchant_id": merchant_id, "net_debit_fen": debit, "cap_fen": cap},
                    )
                )
    return found


async def unreachable_checks(rule: NodeUnreachable, exchange: Engine, now: datetime) -> list[Alert]:
    with exchange.connect() as conn:
        shops = conn.execute(
            select(merchants.c.merchant_id, merchants.c.endpoint).where(
                merchants.c.status == "active"
            )
        ).all()

    async def answers(endpoint: str) -> bool:
        try:
            async with grpc.aio.insecure_channel(endpoint) as channel:
                res = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=rule.timeout_seconds
                )
            return res.status == health_pb2.HealthCheckResponse.SERVING
        except grpc.aio.AioRpcError:
            return False

    results = await asyncio.gather(*(answers(endpoint) for _, endpoint in shops))
    return [
        Alert(
            f"{rule.id}:{merchant_id}:{now:%Y-%m-%dT%H}",
            rule.id,
            DISTRICT,
            rule.severity,
            f"the node of {merchant_id} at {endpoint} does not answer (statements cannot be asked)",
            {"merchant_id": merchant_id, "endpoint": endpoint},
        )
        for (merchant_id, endpoint), ok in zip(shops, results, strict=True)
        if not ok
    ]


async def run_rules(
    rules: Rules, nodes: dict[str, Engine], exchange: Engine | None, now: datetime
) -> dict[str, list[Alert]]:
    """Every rule once; the alerts newly raised, by scope."""
    raised: dict[str, list[Alert]] = {}
    for merchant_id, engine in nodes.items():
        found = []
        for rule in rules.rules:
            check: Callable[..., Alert | None] | None = None
            if isinstance(rule, HourlyBand):
                check = band_check
            elif isinstance(rule, OutboxBacklog):
                check = backlog_check
            if check is not None:
                alert = await asyncio.to_thread(check, rule, engine, merchant_id, now)
                if alert is not None:
                    found.append(alert)
        raised[merchant_id] = await asyncio.to_thread(raise_alerts, engine, found, now)
    if exchange is not None:
        found = []
        for rule in rules.rules:
            if isinstance(rule, NearCap):
                found += await asyncio.to_thread(cap_checks, rule, exchange, now)
            elif isinstance(rule, NodeUnreachable):
                found += await unreachable_checks(rule, exchange, now)
        raised[DISTRICT] = await asyncio.to_thread(raise_alerts, exchange, found, now)
    return raised


def webhook(url: str, timeout: float = 10.0) -> Callable[[dict[str, Any]], None]:
    """POSTs an alert as JSON; anything but a 2xx answer is a failure (retried later)."""

    def post(alert: dict[str, Any]) -> None:
        request = urllib.request.Request(
            url,
            data=json.dumps(alert, ensure_ascii=False).encode(),
            headers={"Content-Type": "application/json", "X-Coalition-Alert": alert["alert_id"]},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            if not 200 <= response.status < 300:
                raise OSError(f"webhook answered {response.status}")

    return post


async def deliver(
    post: Callable[[dict[str, Any]], None], engines: list[Engine], now: datetime
) -> int:
    sent = 0
    for engine in engines:
        sent += await asyncio.to_thread(deliver_due, engine, post, now)
    return sent
