"""The settlement workflow on the time-skipping test server: a late approval gets reminders,
a rejection ends the batch, a dispute waits for its resolution; histories replay."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import timedelta

import pytest
from temporalio import activity
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.worker import Replayer, Worker

from tests.workflows.conftest import HISTORIES, WORKFLOWS
from workflows.settlement.shared import (
    BatchSummary,
    Decision,
    DecisionRecord,
    NettingOutcome,
    ReconcileOutcome,
    Reminder,
    SettlementInput,
    Transfer,
)
from workflows.settlement.workflows import SettlementWorkflow


class FakeSettlement:
    """Activities under the workflow's activity names, recording what the workflow asked."""

    def __init__(self, disputes: int = 0) -> None:
        self.disputes = disputes
        self.calls: list[str] = []
        self.reminders: list[Reminder] = []

    def activities(self) -> list:  # type: ignore[type-arg]
        @activity.defn(name="close_period")
        async def close_period(period: str) -> BatchSummary:
            self.calls.append("close_period")
            return BatchSummary(f"batch-{period}", period, 3, 900, "ab" * 32)

        @activity.defn(name="reconcile_batch")
        async def reconcile_batch(batch_id: str) -> ReconcileOutcome:
            self.calls.append("reconcile_batch")
            if self.disputes:
                self.disputes -= 1
                return ReconcileOutcome(batch_id, ["a-1: missing at tea"])
            return ReconcileOutcome(batch_id)

        @activity.defn(name="net_batch")
        async def net_batch(batch_id: str) -> NettingOutcome:
            self.calls.append("net_batch")
            return NettingOutcome(batch_id, [Transfer("tea", "noodles", 890)])

        @activity.defn(name="send_reminder")
        async def send_reminder(reminder: Reminder) -> None:
            self.reminders.append(reminder)

        @activity.defn(name="publish_instructions")
        async def publish_instructions(batch_id: str) -> None:
            self.calls.append("publish_instructions")

        @activity.defn(name="record_decision")
        async def record_decision(decision: DecisionRecord) -> None:
            self.calls.append(f"record_decision:{decision.action}")

        return [
            close_period,
            reconcile_batch,
            net_batch,
            send_reminder,
            publish_instructions,
            record_decision,
        ]


async def replay_and_keep(handle, name: str) -> None:  # type: ignore[no-untyped-def]
    """Replays the run's history at once, and with COALITION_RECORD_HISTORIES=1 stores it
    under tests/workflows/histories/ for test_recorded_histories_replay."""
    history = await handle.fetch_history()
    await Replayer(workflows=WORKFLOWS).replay_workflow(history)
    if os.environ.get("COALITION_RECORD_HISTORIES") == "1":
        (HISTORIES / f"{name}.json").write_text(history.to_json())


async def until_state(handle, state: str) -> None:  # type: ignore[no-untyped-def]
    for _ in range(200):
        if (await handle.query(SettlementWorkflow.state)).state == state:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never reached {state}")


async def run(env, fake, body):  # type: ignore[no-untyped-def]
    queue = f"settle-{uuid.uuid4()}"
    async with Worker(
        env.client, task_queue=queue, workflows=[SettlementWorkflow], activities=fake.activities()
    ):
        handle = await env.client.start_workflow(
            SettlementWorkflow.run,
            SettlementInput("2026-11-24", remind_after_seconds=4 * 3600),
            id=f"settlement-{uuid.uuid4()}",
            task_queue=queue,
        )
        await body(handle)
        return handle, await handle.result()


async def test_a_late_approval_gets_reminders_then_the_batch_is_paid_and_confirmed(time_skipping):
    fake = FakeSettlement()

    async def operator(handle) -> None:  # type: ignore[no-untyped-def]
        await until_state(handle, "awaiting_approval")
        await time_skipping.sleep(timedelta(hours=9))  # two reminder periods pass
        await handle.execute_update(SettlementWorkflow.approve, Decision("ops-lin"))
        await until_state(handle, "paid")
        await handle.execute_update(SettlementWorkflow.confirm, Decision("ops-lin"))

    handle, status = await run(time_skipping, fake, operator)
    assert status.state == "confirmed" and status.decided_by == "ops-lin"
    assert [r.count for r in fake.reminders] == [1, 2]
    assert fake.calls == [
        "close_period",
        "reconcile_batch",
        "net_batch",
        "record_decision:approve",
        "publish_instructions",
        "record_decision:confirm",
    ]
    await replay_and_keep(handle, "settlement-late-approval")


async def test_a_rejection_needs_a_reason_and_ends_the_batch_unpaid(time_skipping):
    fake = FakeSettlement()

    async def operator(handle) -> None:  # type: ignore[no-untyped-def]
        await until_state(handle, "awaiting_approval")
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(SettlementWorkflow.reject, Decision("ops-lin"))
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(SettlementWorkflow.confirm, Decision("ops-lin"))
        await handle.execute_update(
            SettlementWorkflow.reject, Decision("ops-lin", "tea disputes a-1")
        )
        with pytest.raises((WorkflowUpdateFailedError, RPCError)):  # decided, and over
            await handle.execute_update(SettlementWorkflow.approve, Decision("ops-chen"))

    handle, status = await run(time_skipping, fake, operator)
    assert status.state == "rejected"
    assert "publish_instructions" not in fake.calls
    assert fake.calls[-1] == "record_decision:reject"
    await replay_and_keep(handle, "settlement-rejected")


async def test_a_disputed_batch_waits_for_resolution_then_reconciles_again(time_skipping):
    fake = FakeSettlement(disputes=1)

    async def operator(handle) -> None:  # type: ignore[no-untyped-def]
        await until_state(handle, "disputed")
        with pytest.raises(WorkflowUpdateFailedError):
            await handle.execute_update(SettlementWorkflow.approve, Decision("ops-lin"))
        await handle.execute_update(
            SettlementWorkflow.resolve_dispute, Decision("ops-lin", "tea re-sent its statement")
        )
        await until_state(handle, "awaiting_approval")
        await handle.execute_update(SettlementWorkflow.approve, Decision("ops-lin"))
        await until_state(handle, "paid")
        await handle.execute_update(SettlementWorkflow.confirm, Decision("ops-lin"))

    handle, status = await run(time_skipping, fake, operator)
    assert status.state == "confirmed" and status.mismatches == []
    assert fake.calls.count("reconcile_batch") == 2
    assert "record_decision:resolve" in fake.calls
    await replay_and_keep(handle, "settlement-disputed-then-resolved")
