"""A campaign worker for the crash tests, run as its own process: the real worker, except that
one step of `apply_campaign` (activate, extend or deactivate), after changing the node, writes
a marker file and hangs — so the test can kill the process with the change made and its
completion never reported.

    python -m tests.workflows.campaign_crash_worker NODES_TOML TEMPORAL TASK_QUEUE [STEP MARKER]
"""

from __future__ import annotations

import asyncio
import pathlib
import sys
from datetime import timedelta

from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from workflows.campaigns import WORKFLOWS
from workflows.campaigns.activities import CampaignActivities
from workflows.campaigns.nodes import load_nodes
from workflows.campaigns.shared import NodeChange, NodeChangeResult


def pausing(real: CampaignActivities, step: str, marker: pathlib.Path) -> list[object]:
    @activity.defn(name="apply_campaign")
    async def apply_campaign(change: NodeChange) -> NodeChangeResult:
        result = await real.apply_campaign(change)
        if change.step == step:
            marker.write_text(f"{change.step} at {change.merchant_id}: version {result.version}")
            await asyncio.sleep(3600)
        return result

    return [apply_campaign, real.campaign_pool, real.campaign_figures]


async def main(argv: list[str]) -> None:
    nodes, temporal, queue = argv[:3]
    real = CampaignActivities(load_nodes(pathlib.Path(nodes)))
    activities = pausing(real, argv[3], pathlib.Path(argv[4])) if len(argv) > 3 else real.all()
    client = await Client.connect(temporal)
    async with Worker(
        client,
        task_queue=queue,
        workflows=WORKFLOWS,
        activities=activities,
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=1),
    ):
        print("worker ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
