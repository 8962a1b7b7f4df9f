"""SettlementWorkflow: deterministic; every side effect is an activity, every operator decision
an Update with a validator, the state a Query."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from workflows.settlement.shared import (
        BatchSummary,
        Decision,
        DecisionRecord,
        NettingOutcome,
        ReconcileOutcome,
        Reminder,
        ScheduledRun,
        SettlementInput,
        SettlementStatus,
    )

_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1))


async def _activity(
    name: str, arg: object, result_type: type | None = None, heartbeat_seconds: int = 30
) -> Any:
    """Activities are idempotent, keyed by the batch, so retrying them forever is safe. They
    heartbeat: a worker killed mid-activity is noticed after `heartbeat_seconds`."""
    return await workflow.execute_activity(
        name,
        arg,
        result_type=result_type,
        start_to_close_timeout=timedelta(minutes=30),
        heartbeat_timeout=timedelta(seconds=heartbeat_seconds),
        retry_policy=_RETRY,
    )


@workflow.defn
class SettlementWorkflow:
    @workflow.init
    def __init__(self, params: SettlementInput) -> None:
        self.status = SettlementStatus(period=params.period, state="closing")
        self.heartbeat_seconds = params.heartbeat_seconds
        self.approval: Decision | None = None
        self.rejection: Decision | None = None
        self.resolution: Decision | None = None
        self.confirmation: Decision | None = None

    @workflow.run
    async def run(self, params: SettlementInput) -> SettlementStatus:
        batch: BatchSummary = await self._activity("close_period", params.period, BatchSummary)
        self.status.batch_id = batch.batch_id
        while True:
            self.status.state = "reconciling"
            outcome: ReconcileOutcome = await self._activity(
                "reconcile_batch", batch.batch_id, ReconcileOutcome
            )
            self.status.mismatches = outcome.mismatches
            if not outcome.mismatches:
                break
            self.status.state = "disputed"
            self.resolution = None
            await workflow.wait_condition(lambda: self.resolution is not None)
            await self._record(batch, "resolve", self.resolution)
        netting: NettingOutcome = await self._activity("net_batch", batch.batch_id, NettingOutcome)
        self.status.transfers = netting.transfers
        self.status.state = "awaiting_approval"
        await self._wait_for_decision(params, batch)
        if self.rejection is not None:
            await self._record(batch, "reject", self.rejection)
            self.status.state = "rejected"
            self.status.decided_by = self.rejection.by
            return self.status
        assert self.approval is not None
        await self._record(batch, "approve", self.approval)
        self.status.decided_by = self.approval.by
        self.status.state = "paying"
        await self._activity("publish_instructions", batch.batch_id)
        self.status.state = "paid"
        await workflow.wait_condition(lambda: self.confirmation is not None)
        await self._record(batch, "confirm", self.confirmation)
        self.status.state = "confirmed"
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.status

    async def _activity(self, name: str, arg: object, result_type: type | None = None) -> Any:
        return await _activity(name, arg, result_type, self.heartbeat_seconds)

    async def _record(self, batch: BatchSummary, action: str, decision: Decision | None) -> None:
        assert decision is not None
        await self._activity(
            "record_decision", DecisionRecord(batch.batch_id, action, decision.by, decision.note)
        )

    async def _wait_for_decision(self, params: SettlementInput, batch: BatchSummary) -> None:
        waited = 0
        while True:
            try:
                await workflow.wait_condition(
                    lambda: self.approval is not None or self.rejection is not None,
                    timeout=timedelta(seconds=params.remind_after_seconds),
                )
                return
            except TimeoutError:
                waited += params.remind_after_seconds
                if self.status.reminders_sent < params.max_reminders:
                    self.status.reminders_sent += 1
                    reminder = Reminder(
                        batch.batch_id, params.period, waited, self.status.reminders_sent
                    )
                    await self._activity("send_reminder", reminder)

    # -- the operator ------------------------------------------------------------------------

    @workflow.update
    def approve(self, decision: Decision) -> SettlementStatus:
        self.approval = decision
        return self.status

    @approve.validator
    def _approvable(self, decision: Decision) -> None:
        self._deciding(decision)

    @workflow.update
    def reject(self, decision: Decision) -> SettlementStatus:
        self.rejection = decision
        return self.status

    @reject.validator
    def _rejectable(self, decision: Decision) -> None:
        self._deciding(decision)
        if not decision.note:
            raise ValueError("a rejection needs a reason in its note")

    @workflow.update
    def resolve_dispute(self, decision: Decision) -> SettlementStatus:
        self.resolution = decision
        return self.status

    @resolve_dispute.validator
    def _resolvable(self, decision: Decision) -> None:
        if self.status.state != "disputed":
            raise ValueError(f"the batch is {self.status.state}, not disputed")
        if not decision.by:
            raise ValueError("say who resolved the dispute")

    @workflow.update
    def confirm(self, decision: Decision) -> SettlementStatus:
        self.confirmation = decision
        return self.status

    @confirm.validator
    def _confirmable(self, decision: Decision) -> None:
        if self.status.state != "paid":
            raise ValueError(f"the batch is {self.status.state}; only a paid batch is confirmed")
        if not decision.by:
            raise ValueError("say who confirmed the payments")

    def _deciding(self, decision: Decision) -> None:
        if self.status.state != "awaiting_approval":
            raise ValueError(f"the batch is {self.status.state}, not awaiting approval")
        if self.approval is not None or self.rejection is not None:
            raise ValueError("the batch was already decided")
        if not decision.by:
            raise ValueError("say who decides")

    @workflow.query
    def state(self) -> SettlementStatus:
        return self.status


def settlement_workflow_id(period: str) -> str:
    """One settlement workflow per period: starting a second for the same period is refused."""
    return f"settlement-{period}"


@workflow.defn
class SettlementScheduleWorkflow:
    """What the Schedule starts each period: finds the period that just ended and starts its
    SettlementWorkflow, which outlives this run (it waits days for approval). A period whose
    settlement was started already (by run-now, or a schedule run repeated) is left alone."""

    @workflow.run
    async def run(self, params: ScheduledRun) -> str:
        period: str = await _activity("period_to_settle", workflow.now().isoformat(), str)
        try:
            await workflow.start_child_workflow(
                SettlementWorkflow.run,
                SettlementInput(
                    period,
                    params.remind_after_seconds,
                    params.max_reminders,
                    params.heartbeat_seconds,
                ),
                id=settlement_workflow_id(period),
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            workflow.logger.info("settlement of %s already started", period)
        return period
