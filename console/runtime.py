"""Wiring the console from its config: databases, sessions, Temporal, uvicorn, and the alert
loop (rules every minute, delivery of what they raise to the webhook)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

import uvicorn
from sqlalchemy import Engine
from temporalio.client import Client

from coalition_kernel.db import make_engine, utc_now
from console import alert_rules
from console.alerting import deliver, run_rules, webhook
from console.app import Console
from console.config import ConsoleConfig
from console.sessions import Sessions
from merchant_node.figures.compaction import compact

log = logging.getLogger(__name__)
ALERT_EVERY_SECONDS = 60.0


@dataclass
class Opened:
    console: Console
    engines: list[Engine]

    def close(self) -> None:
        for engine in self.engines:
            engine.dispose()


def open_console(config: ConsoleConfig) -> Opened:
    nodes = {m: make_engine(url, pool_size=4) for m, url in config.nodes.items()}
    exchange = (
        make_engine(config.exchange_database_url, pool_size=4)
        if config.exchange_database_url
        else None
    )

    async def temporal() -> Client:
        return await Client.connect(config.temporal_address, namespace=config.namespace)

    console = Console(
        sessions=Sessions(bytes.fromhex(config.session_secret)),
        nodes=nodes,
        exchange=exchange,
        operator_name=config.operator_name,
        operator_password_sha256=config.operator_password_sha256,
        temporal=temporal,
        refresh_seconds=config.refresh_seconds,
    )
    return Opened(console, [*nodes.values(), *([exchange] if exchange else [])])


async def alert_loop(
    config: ConsoleConfig, opened: Opened, every: float = ALERT_EVERY_SECONDS
) -> None:
    rules = alert_rules.load(config.alerts_file)
    console = opened.console
    while True:
        try:
            now = utc_now()
            for engine in console.nodes.values():  # past hours' minutes, into hours
                await asyncio.to_thread(compact, engine, now)
            raised = await run_rules(rules, console.nodes, console.exchange, now)
            for scope, alerts in raised.items():
                for alert in alerts:
                    log.warning("alert %s (%s): %s", alert.rule_id, scope, alert.message)
            if config.alert_webhook_url:
                await deliver(webhook(config.alert_webhook_url), opened.engines, now)
        except Exception:  # the loop outlives a bad minute (a database restarting)
            log.exception("alert rules failed this round")
        await asyncio.sleep(every)


async def serve(config: ConsoleConfig) -> None:
    opened = open_console(config)
    host, _, port = config.listen.rpartition(":")
    server = uvicorn.Server(
        uvicorn.Config(
            opened.console,
            host=host or "127.0.0.1",
            port=int(port),
            log_level="warning",
            lifespan="on",
        )  # fmt: skip
    )
    alerts = asyncio.ensure_future(alert_loop(config, opened))
    log.info("console serving on http://%s", config.listen)
    try:
        await server.serve()
    finally:
        alerts.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await alerts
        opened.close()
