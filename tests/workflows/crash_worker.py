"""A settlement worker for the crash tests, run as its own process: the real worker, except that
one activity, after doing its work, writes a marker file and hangs — so the test can kill the
process at the worst moment, the effect done and its completion never reported.

    python -m tests.workflows.crash_worker CONFIG TEMPORAL TASK_QUEUE OUT_DIR [PAUSE MARKER]
"""

from __future__ import annotations

import asyncio
import pathlib
import sys
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio.client import Client

from exchange.runtime import ExchangeConfig
from workflows.settlement.shared import BatchSummary, NettingOutcome, ReconcileOutcome
from workflows.worker import ExchangeSide, settlement_worker


def pausing(base: Any, originals: list[Any], pause: str, marker: pathlib.Path) -> list[Any]:
    async def after(name: str) -> None:
        if name == pause:
            marker.write_text(name)
            await asyncio.sleep(3600)

    @activity.defn(name="close_period")
    async def close_period(period: str) -> BatchSummary:
        out = await base.close_period(period)
        await after("close_period")
        return out  # type: ignore[no-any-return]

    @activity.defn(name="reconcile_batch")
    async def reconcile_batch(batch_id: str) -> ReconcileOutcome:
        out = await base.reconcile_batch(batch_id)
        await after("reconcile_batch")
        return out  # type: ignore[no-any-return]

    @activity.defn(name="net_batch")
    async def net_batch(batch_id: str) -> NettingOutcome:
        out = await base.net_batch(batch_id)
        await after("net_batch")
        return out  # type: ignore[no-any-return]

    @activity.defn(name="publish_instructions")
    async def publish_instructions(batch_id: str) -> str:
        out = await base.publish_instructions(batch_id)
        await after("publish_instructions")
        return out  # type: ignore[no-any-return]

    replaced = {"close_period", "reconcile_batch", "net_batch", "publish_instructions"}
    kept = [fn for fn in originals if fn.__name__ not in replaced]
    return [close_period, reconcile_batch, net_batch, publish_instructions, *kept]


async def main(argv: list[str]) -> None:
    config, temporal, queue, out = argv[:4]
    side = ExchangeSide(ExchangeConfig.load(pathlib.Path(config)))
    acts = side.activities(pathlib.Path(out))
    client = await Client.connect(temporal)
    if len(argv) > 4:
        replaced = pausing(acts, acts.all(), argv[4], pathlib.Path(argv[5]))
        acts.all = lambda: replaced  # type: ignore[method-assign]
    try:
        async with settlement_worker(client, acts, queue, timedelta(seconds=1)):
            print("worker ready", flush=True)
            await asyncio.Event().wait()
    finally:
        await side.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
