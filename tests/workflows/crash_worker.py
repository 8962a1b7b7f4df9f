"""The worker of every crash test, run as its own process: the real workflows and activities of
one side of `coalition worker`, except that one activity, after doing its work, writes a marker
file and hangs, so the test can kill the process (SIGKILL) with the work done and its completion
never reported. The tests drive it through tests/workflows/crash_harness.py.

    python -m tests.workflows.crash_worker SIDE CONFIG TEMPORAL TASK_QUEUE
        [--pause ACTIVITY[:STEP] MARKER] [--standby GO] [--ready FILE]

SIDE: `settlement` (CONFIG: the exchange's exchange.toml; settlement files go to out/ beside
it), `node` (CONFIG: a node's node.toml: expiry, notifications and member intelligence, expiry
in batches of 50 lots so that a large run takes several) or `campaign` (CONFIG: the [[node]]
file of the campaign nodes).

--pause: the activity that hangs after its work; with :STEP, only when its argument's `step`
is STEP (apply_campaign:activate).
--standby: the process opens everything, then waits for the file GO before it polls
Temporal: a replacement ready the moment the first worker is killed.
--ready: the file written once the worker polls.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import pathlib
import sys
import typing
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from exchange.runtime import ExchangeConfig
from merchant_node.config import NodeConfig
from workflows.expiry.activities import ExpiryActivities
from workflows.worker import (
    ExchangeSide,
    NodeSide,
    Role,
    WorkerSettings,
    campaign_role,
    settlement_role,
)


class SmallBatches(NodeSide):
    """The node's worker, expiring 50 lots a transaction (production: 5000)."""

    def activities(self) -> ExpiryActivities:
        return replace(super().activities(), batch=50)


def pausing(fn: Callable[..., Any], name: str, step: str | None, marker: pathlib.Path) -> Any:
    """`fn` under its activity name, hanging after its work (when its argument's step is
    `step`, if given); its arguments' and result's types are `fn`'s."""

    async def paused(*args: Any) -> Any:
        out = await fn(*args)
        if step is None or getattr(args[0], "step", None) == step:
            marker.write_text(f"{name} {step or ''}: {out!r}")
            await asyncio.sleep(3600)
        return out

    paused.__signature__ = inspect.signature(fn)  # type: ignore[attr-defined]
    paused.__annotations__ = typing.get_type_hints(fn)
    return activity.defn(name=name)(paused)


def with_pause(activities: list[Any], pause: str, marker: pathlib.Path) -> list[Any]:
    name, _, step = pause.partition(":")
    names = [activity._Definition.must_from_callable(fn).name for fn in activities]
    if name not in names:
        raise SystemExit(f"no activity {name!r} to pause: {names}")
    return [
        pausing(fn, name, step or None, marker) if defined == name else fn
        for fn, defined in zip(activities, names, strict=True)
    ]


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="crash_worker")
    parser.add_argument("side", choices=["settlement", "node", "campaign"])
    parser.add_argument("config", type=pathlib.Path)
    parser.add_argument("temporal")
    parser.add_argument("queue")
    parser.add_argument("--pause", nargs=2, metavar=("ACTIVITY", "MARKER"))
    parser.add_argument("--standby", type=pathlib.Path, metavar="GO")
    parser.add_argument("--ready", type=pathlib.Path, metavar="FILE")
    args = parser.parse_args(argv)
    closing: list[Callable[[], Any]] = []
    role: Role
    if args.side == "settlement":
        exchange = ExchangeSide(ExchangeConfig.load(args.config))
        closing.append(exchange.close)
        acts = exchange.activities(args.config.parent / "out")
        role = settlement_role(WorkerSettings(task_queue=args.queue), acts)
    elif args.side == "node":
        node = SmallBatches(NodeConfig.load(args.config))
        closing.append(node.close)
        role = node.role()
    else:
        role = campaign_role(args.config)
    activities = role.activities
    if args.pause:
        activities = with_pause(activities, args.pause[0], pathlib.Path(args.pause[1]))
    while args.standby is not None and not args.standby.exists():
        await asyncio.sleep(0.02)
    client = await Client.connect(args.temporal)
    try:
        async with Worker(
            client,
            task_queue=args.queue,
            workflows=role.workflows,
            activities=activities,
            # A killed worker's workflow tasks go to another worker after a second.
            sticky_queue_schedule_to_start_timeout=timedelta(seconds=1),
        ):
            print("worker ready", flush=True)
            if args.ready is not None:
                args.ready.write_text("polling")
            await asyncio.Event().wait()
    finally:
        for close in closing:
            done = close()
            if inspect.isawaitable(done):
                await done


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
