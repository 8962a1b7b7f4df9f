"""`coalition worker`: the Temporal worker. Beside the exchange (`--exchange-config`) it runs
settlement and its Schedule; beside a merchant node (`--node-config`) it runs that node's
expiry and notification delivery and their Schedules. One process may do both."""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import sys
from datetime import timedelta

from coalition_cli.args import minutes, time_zone


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    worker = sub.add_parser(
        "worker", help="run the Temporal worker beside the exchange and/or a merchant node"
    )
    worker.add_argument("--exchange-config", type=pathlib.Path, help="settlement's side")
    worker.add_argument(
        "--node-config",
        type=pathlib.Path,
        action="append",
        default=[],
        help="a node's expiry and notifications (repeatable)",
    )
    worker.add_argument(
        "--campaign-nodes",
        type=pathlib.Path,
        help="run campaigns on the nodes this [[node]] TOML file gives admin access to",
    )
    worker.add_argument("--temporal", default="127.0.0.1:7233", help="Temporal frontend address")
    worker.add_argument("--namespace", default="default")
    worker.add_argument("--task-queue", default=None, help="default: coalition-settlement")
    worker.add_argument(
        "--out", type=pathlib.Path, help="where payment instructions go (default: beside config)"
    )
    worker.add_argument(
        "--zone", type=time_zone, default="Asia/Shanghai", help="settlement calendar time zone"
    )
    worker.add_argument("--cycle", choices=["daily", "weekly", "monthly"], default="daily")
    worker.add_argument("--grace-minutes", type=minutes, default=5)
    worker.add_argument(
        "--no-schedule", action="store_true", help="do not create/update the Schedules"
    )
    worker.set_defaults(run=_worker)


def _worker(args: argparse.Namespace) -> int:
    from exchange.runtime import ExchangeConfig
    from merchant_node.config import NodeConfig
    from settlement.periods import Calendar
    from workflows.settlement.shared import TASK_QUEUE
    from workflows.worker import (
        ExchangeSide,
        NodeSide,
        WorkerSettings,
        campaign_role,
        out_dir_default,
        serve,
        settlement_role,
    )

    if not (args.exchange_config or args.node_config or args.campaign_nodes):
        print(
            "coalition worker: give --exchange-config, --node-config and/or --campaign-nodes",
            file=sys.stderr,
        )
        return 2

    calendar = Calendar(args.zone, args.cycle, timedelta(minutes=args.grace_minutes))
    settings = WorkerSettings(
        temporal_address=args.temporal,
        namespace=args.namespace,
        task_queue=args.task_queue or TASK_QUEUE,
        schedule=not args.no_schedule,
        calendar=calendar,
    )

    async def run() -> None:
        exchange = None
        nodes = [NodeSide(NodeConfig.load(path)) for path in args.node_config]
        try:
            roles = [node.role() for node in nodes]
            if args.campaign_nodes:
                roles.append(campaign_role(args.campaign_nodes))
            if args.exchange_config:
                exchange = ExchangeSide(ExchangeConfig.load(args.exchange_config))
                out = args.out or out_dir_default(args.exchange_config)
                roles.append(settlement_role(settings, exchange.activities(out, calendar)))
            await serve(settings, roles)
        finally:
            for node in nodes:
                node.close()
            if exchange is not None:
                await exchange.close()

    asyncio.run(run())
    return 0
