"""The district's live figures at the exchange: flows between shops (rolled up per period by a
trigger on clearing records, exchange migration 0006), net positions of open periods against
each issuer's net-debit cap, settlement batches by status; and the same on /metrics."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import BigInteger, Column, Connection, Engine, String, Table, func, select

from coalition_kernel.alerts import alerts_table
from exchange.schema import authorizations, merchants, metadata, settlement_batches

log = logging.getLogger(__name__)

# One row per (period, issuer, acquirer): written by the trigger, never by the application.
district_flows = Table(
    "district_flows",
    metadata,
    Column("settlement_period", String(10), primary_key=True),
    Column("issuer_id", String(64), primary_key=True),
    Column("acquirer_id", String(64), primary_key=True),
    Column("records", BigInteger, nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("value_fen", BigInteger, nullable=False),
    Column("fee_fen", BigInteger, nullable=False),
)

# Alerts the console's rules raised about the district, and their delivery.
console_alerts = alerts_table(metadata)


@dataclass(frozen=True)
class Flow:
    issuer_id: str  # whose points were spent
    acquirer_id: str  # where
    records: int
    points: int
    value_fen: int
    fee_fen: int


def flows(conn: Connection, periods: list[str] | None = None) -> list[Flow]:
    """Captured redemptions between shops, summed over the given periods (all when None)."""
    f = district_flows
    query = select(
        f.c.issuer_id,
        f.c.acquirer_id,
        func.sum(f.c.records),
        func.sum(f.c.points),
        func.sum(f.c.value_fen),
        func.sum(f.c.fee_fen),
    ).group_by(f.c.issuer_id, f.c.acquirer_id)
    if periods is not None:
        query = query.where(f.c.settlement_period.in_(periods))
    return [
        Flow(i, a, int(r), int(p), int(v), int(fee))
        for i, a, r, p, v, fee in conn.execute(query.order_by(f.c.issuer_id, f.c.acquirer_id))
    ]


def flows_since(conn: Connection, first_day: str) -> list[Flow]:
    """Flows of the periods from `first_day` (YYYY-MM-DD) on: period names start with their
    year and sort by time (daily 2026-01-05, weekly 2026-W02, monthly 2026-01)."""
    f = district_flows
    periods = conn.execute(
        select(f.c.settlement_period).distinct().where(f.c.settlement_period >= first_day[:7])
    ).scalars()
    return flows(conn, [p for p in periods if len(p) < 10 or p >= first_day])


def unsettled_periods(conn: Connection) -> list[str]:
    """Periods with flows whose batch is not yet closed (no batch, or an open one)."""
    f, b = district_flows, settlement_batches
    closed = select(b.c.period).where(b.c.status != "open")
    query = select(f.c.settlement_period).distinct().where(f.c.settlement_period.not_in(closed))
    return sorted(conn.execute(query).scalars())


def batches_by_status(conn: Connection) -> dict[str, int]:
    b = settlement_batches
    rows = conn.execute(select(b.c.status, func.count()).group_by(b.c.status)).all()
    return {status: int(n) for status, n in rows}


def merchants_by_status(conn: Connection) -> dict[str, int]:
    m = merchants
    rows = conn.execute(select(m.c.status, func.count()).group_by(m.c.status)).all()
    return {status: int(n) for status, n in rows}


def open_authorizations(conn: Connection) -> int:
    a = authorizations
    return int(
        conn.execute(
            select(func.count()).where(a.c.status.in_(("pending", "authorized", "capturing")))
        ).scalar_one()
    )


class ExchangeFigures(Collector):
    """Settlement state, onboarding state, open authorizations, open period's flows."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        try:
            with self.engine.connect() as conn:
                batches = batches_by_status(conn)
                onboarded = merchants_by_status(conn)
                pending = open_authorizations(conn)
                open_flows = flows(conn, unsettled_periods(conn))
        except Exception:  # a scrape must not fail because the database is briefly away
            log.warning("exchange figures unavailable for /metrics", exc_info=True)
            return
        g = GaugeMetricFamily(
            "coalition_settlement_batches", "Settlement batches by status", labels=["status"]
        )
        for status, n in sorted(batches.items()):
            g.add_metric([status], n)
        yield g
        g = GaugeMetricFamily("coalition_merchants", "Merchants by status", labels=["status"])
        for status, n in sorted(onboarded.items()):
            g.add_metric([status], n)
        yield g
        g = GaugeMetricFamily("coalition_open_authorizations", "Authorizations not yet final")
        g.add_metric([], pending)
        yield g
        g = GaugeMetricFamily(
            "coalition_unsettled_flow_value_fen",
            "Value of captured redemptions not yet in a closed batch, by issuer and acquirer",
            labels=["issuer", "acquirer"],
        )
        for flow in open_flows:
            g.add_metric([flow.issuer_id, flow.acquirer_id], flow.value_fen)
        yield g
