"""A synthetic drop of redemptions raises exactly one alert, delivered once to a real webhook
receiver on loopback; the same hour with its usual redemptions raises none."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa

from console import alert_rules
from console.alerting import deliver, run_rules, webhook
from console.alerts_store import recent_alerts
from merchant_node.ledger.commands import Earn, Enroll, Redeem

RULES = alert_rules.parse(
    """
rules:
  - {id: redemptions-drop, kind: hourly_band, measure: redemptions, weeks: 4, min_weeks: 3}
  - {id: participation-drop, kind: hourly_band, measure: participation_rate_bps}
  - {id: outbox-growing, kind: outbox_backlog, above: 100}
"""
)


class Receiver:
    """A real HTTP server on loopback that keeps what it is sent."""

    def __init__(self) -> None:
        received = self.received = []  # type: ignore[var-annotated]

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((self.headers["X-Coalition-Alert"], json.loads(body)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/alerts"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def trade_hour(ledger, clock, week: int, redemptions: int) -> None:  # type: ignore[no-untyped-def]
    """Noon to one o'clock (UTC) of one Monday: 4 members earn, `redemptions` redeem."""
    start = clock.now
    clock.now = start.replace(hour=12, minute=5) - timedelta(weeks=week)
    for i in range(4):
        clock.advance(minutes=5)
        ledger.earn(Earn(f"e-{week}-{i}", f"m-{i}", f"o-{week}-{i}", 10_000, "POS", None))
    for i in range(redemptions):
        clock.advance(minutes=3)
        ledger.redeem(Redeem(f"r-{week}-{i}", f"m-{i % 4}", f"ro-{week}-{i}", points=10))
    clock.now = start


def usual_weeks(ledger, clock) -> None:  # type: ignore[no-untyped-def]
    clock.now = clock.now.replace(hour=13, minute=5) + timedelta(weeks=5)  # a Monday, 13:05
    saved = clock.now
    clock.now = saved - timedelta(weeks=6)
    for i in range(4):
        ledger.enroll(Enroll(f"enroll-{i}", f"m-{i}"))
    clock.now = saved
    for week in (4, 3, 2, 1):
        trade_hour(ledger, clock, week, redemptions=5)


async def test_a_drop_of_redemptions_raises_exactly_one_alert_through_the_webhook(
    ledger, clock, receiver
):
    usual_weeks(ledger, clock)
    trade_hour(ledger, clock, 0, redemptions=1)  # this noon: one redemption instead of five
    nodes = {"tea": ledger.engine}

    raised = await run_rules(RULES, nodes, None, clock.now)
    again = await run_rules(RULES, nodes, None, clock.now + timedelta(minutes=10))
    sent = await deliver(webhook(receiver.url), [ledger.engine], clock.now)
    resent = await deliver(webhook(receiver.url), [ledger.engine], clock.now + timedelta(hours=1))

    assert [a.rule_id for a in raised["tea"]] == ["redemptions-drop"]
    assert raised["tea"][0].details["value"] == 1
    assert raised["tea"][0].details["history"] == [5, 5, 5, 5]
    assert again["tea"] == []  # the same hour's anomaly is raised once
    assert (sent, resent) == (1, 0)
    assert len(receiver.received) == 1
    key, body = receiver.received[0]
    assert body["rule_id"] == "redemptions-drop" and body["scope"] == "tea"
    assert key == body["alert_id"]
    shown = await asyncio.to_thread(recent_alerts, ledger.engine)
    assert [(a["rule_id"], a["status"]) for a in shown] == [("redemptions-drop", "sent")]


async def test_the_usual_redemptions_raise_nothing(ledger, clock, receiver):
    usual_weeks(ledger, clock)
    trade_hour(ledger, clock, 0, redemptions=5)
    raised = await run_rules(RULES, {"tea": ledger.engine}, None, clock.now)
    assert raised["tea"] == []
    assert await deliver(webhook(receiver.url), [ledger.engine], clock.now) == 0
    assert receiver.received == []


async def test_an_unreachable_webhook_keeps_the_alert_for_a_later_attempt(ledger, clock, receiver):
    usual_weeks(ledger, clock)
    trade_hour(ledger, clock, 0, redemptions=0)
    await run_rules(RULES, {"tea": ledger.engine}, None, clock.now)
    dead = receiver.url.replace(str(receiver.server.server_port), "1")  # nothing listens on 1
    assert await deliver(webhook(dead, timeout=2), [ledger.engine], clock.now) == 0
    assert await deliver(webhook(receiver.url), [ledger.engine], clock.now) == 0  # not yet due
    later = clock.now + timedelta(minutes=1)
    assert await deliver(webhook(receiver.url), [ledger.engine], later) == 1
    assert len(receiver.received) == 1


def test_rules_are_validated_whole():
    with pytest.raises(ValueError, match="measure"):
        alert_rules.parse("rules: [{id: x, kind: hourly_band, measure: sales}]")
    assert len(alert_rules.load("").rules) == 5


async def test_compacting_old_minutes_into_hours_keeps_every_figure(ledger, clock):
    from merchant_node.figures import queries
    from merchant_node.figures.compaction import compact
    from merchant_node.figures.schema import ledger_minutes

    usual_weeks(ledger, clock)
    trade_hour(ledger, clock, 0, redemptions=2)

    def snapshot():  # type: ignore[no-untyped-def]
        with ledger.engine.connect() as conn:
            hours = [
                queries.flows(conn, queries.minute_of(h), queries.minute_of(h) + 60)
                for h in (
                    clock.now.replace(hour=12, minute=0) - timedelta(weeks=w) for w in range(5)
                )
            ]
            rows = conn.execute(sa.select(sa.func.count()).select_from(ledger_minutes)).scalar()
            return queries.flows(conn), hours, rows

    before = snapshot()
    removed = compact(ledger.engine, clock.now)
    after = snapshot()
    assert removed > 0 and after[2] < before[2]
    assert after[:2] == before[:2]  # the totals and every hour are what they were
    assert compact(ledger.engine, clock.now) == 0  # idempotent
    raised = await run_rules(RULES, {"tea": ledger.engine}, None, clock.now)
    assert [a.rule_id for a in raised["tea"]] == ["redemptions-drop"]


async def test_an_issuer_near_its_cap_and_a_silent_node_raise_district_alerts(new_database, clock):
    from exchange.registry import unsettled_net_debit
    from exchange.schema import merchants
    from tests.exchange.conftest import start_coalition
    from tests.test_network import free_port
    from tests.workflows.test_settlement_run import trade

    rules = alert_rules.parse(
        """
rules:
  - {id: issuer-near-cap, kind: near_cap, threshold_bps: 8000}
  - {id: node-unreachable, kind: node_unreachable, timeout_seconds: 1}
"""
    )
    async for coalition in start_coalition(new_database, clock):
        await trade(coalition)
        engine = coalition.exchange.engine
        with engine.begin() as conn:
            debits = {
                m: unsettled_net_debit(conn, m, clock.now) for m in ("tea", "noodles", "salon")
            }
            issuer = max(debits, key=lambda m: debits[m])
            assert debits[issuer] > 0
            # Caps: the biggest debtor at 90 % of its cap, the others far below theirs.
            for m, debit in debits.items():
                cap = debit * 10 // 9 if m == issuer else max(debit, 1) * 100
                conn.execute(
                    merchants.update()
                    .where(merchants.c.merchant_id == m)
                    .values(net_debit_cap_fen=cap)
                )
        quiet = await run_rules(rules, {}, engine, clock.now)
        assert [(a.rule_id, a.details["merchant_id"]) for a in quiet["district"]] == [
            ("issuer-near-cap", issuer)
        ]
        with engine.begin() as conn:  # salon's node is now registered where nothing listens
            conn.execute(
                merchants.update()
                .where(merchants.c.merchant_id == "salon")
                .values(endpoint=f"127.0.0.1:{free_port()}")
            )
        later = await run_rules(rules, {}, engine, clock.now + timedelta(minutes=5))
        assert [(a.rule_id, a.details["merchant_id"]) for a in later["district"]] == [
            ("node-unreachable", "salon")
        ]  # the cap alert of this hour was raised already
