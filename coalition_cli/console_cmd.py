"""`coalition console init|serve|alerts`: the web console of merchants and the operator."""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import secrets
import sys


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    console = sub.add_parser("console", help="the web console (merchants and the operator)")
    commands = console.add_subparsers(dest="console_command", required=True)

    init = commands.add_parser("init", help="write console.toml; prints the operator password once")
    init.add_argument("--dir", required=True, type=pathlib.Path)
    init.add_argument("--listen", default="127.0.0.1:8800")
    init.add_argument("--exchange-config", type=pathlib.Path, help="the exchange's exchange.toml")
    init.add_argument(
        "--node-config", type=pathlib.Path, action="append", default=[],
        help="a node's node.toml (repeat for each shop the console shows)",
    )  # fmt: skip
    init.add_argument("--temporal", default="127.0.0.1:7233")
    init.add_argument("--webhook", default="", help="URL raised alerts are POSTed to")
    init.set_defaults(run=_init)

    serve = commands.add_parser("serve", help="serve the console until SIGINT/SIGTERM")
    serve.add_argument("--config", required=True, type=pathlib.Path)
    serve.set_defaults(run=_serve)

    alerts = commands.add_parser("alerts", help="run the alert rules once and deliver")
    alerts.add_argument("--config", required=True, type=pathlib.Path)
    alerts.set_defaults(run=_alerts)


def _init(args: argparse.Namespace) -> int:
    from console.config import ConsoleConfig
    from console.logins import password_digest
    from exchange.runtime import ExchangeConfig
    from merchant_node.config import NodeConfig

    path = args.dir / "console.toml"
    if path.exists():
        print(f"coalition console init: {path} exists", file=sys.stderr)
        return 1
    args.dir.mkdir(parents=True, exist_ok=True)
    nodes = {}
    for node_path in args.node_config:
        node = NodeConfig.load(node_path)
        nodes[node.merchant_id] = node.database_url
    exchange_url = (
        ExchangeConfig.load(args.exchange_config).database_url if args.exchange_config else ""
    )
    password = secrets.token_urlsafe(18)
    ConsoleConfig(
        listen=args.listen,
        session_secret=secrets.token_hex(32),
        operator_password_sha256=password_digest(password) if exchange_url else "",
        exchange_database_url=exchange_url,
        temporal_address=args.temporal,
        alert_webhook_url=args.webhook,
        nodes=nodes,
    ).save(path)
    print(f"console initialised: {path}")
    if exchange_url:
        print(f"operator login: operator / {password}  (shown once; only its digest is kept)")
    print("merchants log in with an admin-scoped API key of their node (coalition node client add)")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from console.config import ConsoleConfig
    from console.runtime import serve

    asyncio.run(serve(ConsoleConfig.load(args.config)))
    return 0


def _alerts(args: argparse.Namespace) -> int:
    from coalition_kernel.db import utc_now
    from console import alert_rules
    from console.alerting import deliver, run_rules, webhook
    from console.config import ConsoleConfig
    from console.runtime import open_console

    config = ConsoleConfig.load(args.config)
    opened = open_console(config)

    async def once() -> int:
        now = utc_now()
        raised = await run_rules(alert_rules.load(config.alerts_file), opened.console.nodes,
                                 opened.console.exchange, now)  # fmt: skip
        for scope, alerts in raised.items():
            for alert in alerts:
                print(f"{scope}: {alert.rule_id}: {alert.message}")
        if not any(raised.values()):
            print("no new alerts")
        if config.alert_webhook_url:
            sent = await deliver(webhook(config.alert_webhook_url), opened.engines, now)
            print(f"{sent} alert(s) delivered to the webhook")
        return 0

    try:
        return asyncio.run(once())
    finally:
        opened.close()
