"""A node's member intelligence worker for the crash test, run as its own process: the real
activities, except that one, after doing its work, writes a marker file and hangs, so the test
can kill the process with the work done and its completion never reported.

    python -m tests.workflows.marketing_crash_worker NODE_CONFIG TEMPORAL TASK_QUEUE [PAUSE MARKER]
"""

from __future__ import annotations

import asyncio
import pathlib
import sys
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from merchant_node.config import NodeConfig
from merchant_node.marketing.service import MarketingService
from workflows.expiry.shared import Delivered
from workflows.marketing.activities import MarketingActivities
from workflows.marketing.shared import TriggerCount
from workflows.marketing.workflows import WORKFLOWS
from workflows.worker import NodeSide


def activities(node: NodeSide, pause: str | None, marker: pathlib.Path | None) -> list[Any]:
    config = node.config
    service = MarketingService(node.ledger, config.notifications, merchant_id=config.merchant_id)
    marketing = MarketingActivities(service)
    expiry = node.activities()

    async def after(name: str) -> None:
        if name == pause and marker is not None:
            marker.write_text(name)
            await asyncio.sleep(3600)

    @activity.defn(name="marketing_triggers")
    async def triggers(at_iso: str) -> list[TriggerCount]:
        out = await marketing.triggers(at_iso)
        await after("marketing_triggers")
        return out  # type: ignore[no-any-return]

    @activity.defn(name="deliver_notifications")
    async def deliver_notifications(at_iso: str) -> Delivered:
        out = await expiry.deliver_notifications(at_iso)
        await after("deliver_notifications")
        return out  # type: ignore[no-any-return]

    others = [fn for fn in marketing.all() if fn.__name__ != "triggers"]
    return [triggers, deliver_notifications, *others]


async def main(argv: list[str]) -> None:
    config, temporal, queue = argv[:3]
    node = NodeSide(NodeConfig.load(pathlib.Path(config)))
    pause, marker = (argv[3], pathlib.Path(argv[4])) if len(argv) > 3 else (None, None)
    client = await Client.connect(temporal)
    try:
        async with Worker(
            client,
            task_queue=queue,
            workflows=WORKFLOWS,
            activities=activities(node, pause, marker),
            sticky_queue_schedule_to_start_timeout=timedelta(seconds=1),
        ):
            await asyncio.Event().wait()
    finally:
        node.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
