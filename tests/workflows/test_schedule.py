"""The settlement Schedule on a real Temporal dev server: created once (idempotent), fires in
the calendar's time zone, and each firing starts exactly one settlement per period."""

from __future__ import annotations

import asyncio
import uuid
from zoneinfo import ZoneInfo

from temporalio import activity
from temporalio.client import ScheduleHandle
from temporalio.worker import Worker

from settlement.periods import Calendar
from workflows.settlement.shared import BatchSummary, ReconcileOutcome
from workflows.settlement.workflows import SettlementWorkflow, settlement_workflow_id
from workflows.worker import WORKFLOWS, WorkerSettings, ensure_settlement_schedule, settlement_cron


def test_the_cron_runs_after_the_period_and_its_grace():
    assert settlement_cron(Calendar()) == "10 0 * * *"
    assert settlement_cron(Calendar(cycle="weekly")) == "10 0 * * 1"
    assert settlement_cron(Calendar(cycle="monthly")) == "10 0 1 * *"


def fake_activities(period: str, closed: list[str]) -> list:  # type: ignore[type-arg]
    @activity.defn(name="period_to_settle")
    async def period_to_settle(at_iso: str) -> str:
        return period

    @activity.defn(name="close_period")
    async def close_period(p: str) -> BatchSummary:
        closed.append(p)
        return BatchSummary(f"sb-{p}", p, 0, 0, "")

    @activity.defn(name="reconcile_batch")
    async def reconcile_batch(batch_id: str) -> ReconcileOutcome:
        await asyncio.sleep(3600)  # stays reconciling for the test
        raise AssertionError

    return [period_to_settle, close_period, reconcile_batch]


async def wait_for(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(timeout / 0.1)):
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition never met")


async def test_the_schedule_is_created_once_and_each_firing_settles_its_period_once(dev_server):
    client = dev_server.client
    queue = f"settle-{uuid.uuid4()}"
    schedule_id = f"coalition-settlement-{uuid.uuid4().hex[:8]}"
    period = "2031-02-0" + str(uuid.uuid4().int % 9 + 1)
    settings = WorkerSettings(task_queue=queue, calendar=Calendar(zone="Asia/Shanghai"))
    await ensure_settlement_schedule(client, settings, schedule_id)
    await ensure_settlement_schedule(client, settings, schedule_id)  # again: updated, not doubled
    handle: ScheduleHandle = client.get_schedule_handle(schedule_id)
    described = await handle.describe()
    assert described.schedule.spec.time_zone_name == "Asia/Shanghai"
    upcoming = described.info.next_action_times
    assert upcoming
    for at in upcoming:  # each firing at 00:10 in Shanghai, whatever the server's zone
        local = at.astimezone(ZoneInfo("Asia/Shanghai"))
        assert (local.hour, local.minute) == (0, 10)

    closed: list[str] = []
    async with Worker(
        client, task_queue=queue, workflows=WORKFLOWS, activities=fake_activities(period, closed)
    ):
        await handle.trigger()
        settlement = client.get_workflow_handle(settlement_workflow_id(period))

        async def reconciling() -> bool:
            try:
                return (await settlement.query(SettlementWorkflow.state)).state == "reconciling"
            except Exception:
                return False

        await wait_for(reconciling)
        # A second firing for the same period (a catch-up, a repeated run) starts nothing new.
        await handle.trigger()

        async def two_runs() -> bool:
            return (await handle.describe()).info.num_actions >= 2

        await wait_for(two_runs)
        runs = [r async for r in client.list_workflows(f"WorkflowId = '{settlement.id}'")]
        assert len(runs) == 1
        assert closed == [period]
        await settlement.terminate("test over")
    await handle.delete()
