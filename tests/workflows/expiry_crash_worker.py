"""A node's expiry worker for the crash tests, run as its own process: the real activities,
except that one of them, after doing its work, writes a marker file and hangs, so the test can
kill the process with the work done and its completion never reported.

    python -m tests.workflows.expiry_crash_worker NODE_CONFIG TEMPORAL TASK_QUEUE BATCH [PAUSE MARKER]
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
from workflows.expiry.shared import Delivered, Expired
from workflows.expiry.workflows import WORKFLOWS
from workflows.worker import NodeSide


def pausing(base: Any, originals: list[Any], pause: str, marker: pathlib.Path) -> list[Any]:
    async def after(name: str) -> None:
        if name == pause:
            marker.write_text(name)
            await asyncio.sleep(3600)

    @activity.defn(name="expire_due")
    async def expire_due(at_iso: str) -> Expired:
        out = await base.expire_due(at_iso)
        await after("expire_due")
        return out  # type: ignore[no-any-return]

    @activity.defn(name="deliver_notifications")
    async def deliver_notifications(at_iso: str) -> Delivered:
        out = await base.deliver_notifications(at_iso)
        await after("deliver_notifications")
        return out  # type: ignore[no-any-return]

    replaced = {"expire_due", "deliver_notifications"}
    return [expire_due, deliver_notifications] + [
        fn for fn in originals if fn.__name__ not in replaced
    ]


async def main(argv: list[str]) -> None:
    config, temporal, queue, batch = argv[:4]
    node = NodeSide(NodeConfig.load(pathlib.Path(config)))
    acts = node.activities()
    acts.batch = int(batch)
    activities = acts.all()
    if len(argv) > 4:
        activities = pausing(acts, activities, argv[4], pathlib.Path(argv[5]))
    client = await Client.connect(temporal)
    try:
        async with Worker(
            client,
            task_queue=queue,
            workflows=WORKFLOWS,
            activities=activities,
            sticky_queue_schedule_to_start_timeout=timedelta(seconds=1),
        ):
            await asyncio.Event().wait()
    finally:
        node.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
