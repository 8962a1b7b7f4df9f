"""`coalition worker`: the Temporal worker (settlement; expiry and campaigns as they land)."""

from __future__ import annotations

import argparse
import asyncio
import pathlib
from datetime import timedelta


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    worker = sub.add_parser(
        "worker", help="run the Temporal worker beside the exchange (and its settlement schedule)"
    )
    worker.add_argument("--exchange-config", type=pathlib.Path, required=True)
    worker.add_argument("--temporal", default="127.0.0.1:7233", help="Temporal frontend address")
    worker.add_argument("--namespace", default="default")
    worker.add_argument("--task-queue", default=None, help="default: coalition-settlement")
    worker.add_argument(
        "--out", type=pathlib.Path, help="where payment instructions go (default: beside config)"
    )
    worker.add_argument("--zone", default="Asia/Shanghai", help="settlement calendar time zone")
    worker.add_argument("--cycle", choices=["daily", "weekly", "monthly"], default="daily")
    worker.add_argument("--grace-minutes", type=int, default=5)
    worker.add_argument(
        "--no-schedule", action="store_true", help="do not create/update the settlement Schedule"
    )
    worker.set_defaults(run=_worker)


def _worker(args: argparse.Namespace) -> int:
    from exchange.runtime import ExchangeConfig
    from settlement.periods import Calendar
    from workflows.settlement.shared import TASK_QUEUE
    from workflows.worker import ExchangeSide, WorkerSettings, out_dir_default, serve

    calendar = Calendar(args.zone, args.cycle, timedelta(minutes=args.grace_minutes))
    settings = WorkerSettings(
        temporal_address=args.temporal,
        namespace=args.namespace,
        task_queue=args.task_queue or TASK_QUEUE,
        schedule=not args.no_schedule,
        calendar=calendar,
    )
    out = args.out or out_dir_default(args.exchange_config)

    async def run() -> None:
        side = ExchangeSide(ExchangeConfig.load(args.exchange_config))
        try:
            await serve(settings, side.activities(out, calendar))
        finally:
            await side.close()

    asyncio.run(run())
    return 0
