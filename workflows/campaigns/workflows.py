"""CampaignWorkflow: a durable timer until the start, the campaign switched on at every
participating node, a wait for its end (its time, its budget spent, or the operator's cancel),
switched off again, and an ROI report. Deterministic; every side effect is an activity, every
operator decision an Update with a validator, the state a Query."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.campaigns import roi
    from workflows.campaigns.shared import (
        CampaignReport,
        CampaignSpec,
        CampaignStatus,
        Cancel,
        Extend,
        FiguresQuery,
        MerchantFigures,
        NodeChange,
        NodeChangeResult,
        PoolQuery,
        PoolUsage,
        check_spec,
    )

_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1))
_POLL_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=3)
INVALID = "CampaignInvalid"
_OPEN = ("scheduled", "active")  # the states an operator may still cancel or extend in


@workflow.defn
class CampaignWorkflow:
    @workflow.init
    def __init__(self, spec: CampaignSpec) -> None:
        carried = spec.carried
        self.spec = dataclasses.replace(spec, carried=None)  # what the activities are handed
        self.current = carried or CampaignStatus(
            spec.campaign_id, spec.owner, "scheduled", spec.starts_at, spec.ends_at, spec.merchants
        )
        # The end the nodes' rules carry: a run continued as new carries the current one.
        self.applied_ends_at: datetime | None = carried.ends_at if carried else None
        self.switched_off = False

    @workflow.run
    async def run(self, spec: CampaignSpec) -> CampaignStatus:
        if spec.carried is None:  # else a run continued as new: the campaign runs already
            errors = check_spec(spec)
            if errors:
                raise ApplicationError("; ".join(errors), type=INVALID, non_retryable=True)
            await self._wait(lambda: self.current.cancellation is not None, until=spec.starts_at)
            if self.current.cancellation is None and workflow.now() < self.current.ends_at:
                self.current.activated_at = workflow.now()
                await self._switch_on("activate")
        if self.current.activated:
            self.current.state = "active"
            self.current.end_reason = await self._run_until_the_end()
            self.current.state = "ending"
            await self._switch_off()
        elif self.current.cancellation is not None:
            self.current.end_reason = "cancelled"
        else:  # every node refused it, or it was started after its end
            self.current.end_reason = "refused" if self.current.activated_at else "ends_at"
        self.switched_off = True
        self.current.ended_at = min(workflow.now(), self.current.ends_at)
        if self.current.activated:
            self.current.state = "reporting"
            self.current.report = await self._report()
        self.current.state = "ended"
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.current

    async def _run_until_the_end(self) -> str:
        """Waits for the end, applying extensions as they come; polls the pools every
        poll_minutes and stops when every one is spent. Continues as new now and then, so that
        a months-long campaign's history stays short."""
        poll = timedelta(minutes=self.spec.poll_minutes)
        next_poll, polls = workflow.now() + poll, 0
        while True:
            if self.current.cancellation is not None:
                return "cancelled"
            if self.applied_ends_at != self.current.ends_at:
                await self._switch_on("extend")
                continue
            if workflow.now() >= self.current.ends_at:
                return "ends_at"
            if workflow.now() >= next_poll:
                next_poll, polls = workflow.now() + poll, polls + 1
                if await self._budget_spent():
                    return "budget_spent"
                continue
            long_run = polls >= self.spec.polls_per_run
            if (long_run or workflow.info().is_continue_as_new_suggested()) and (
                workflow.all_handlers_finished()
            ):
                workflow.continue_as_new(dataclasses.replace(self.spec, carried=self.current))
            await self._wait(
                lambda: (
                    self.current.cancellation is not None
                    or self.applied_ends_at != self.current.ends_at
                ),
                until=min(self.current.ends_at, next_poll),
            )

    async def _wait(self, condition: Any, until: datetime) -> None:
        """A durable timer until `until` that `condition` cuts short."""
        left = until - workflow.now()
        if left <= timedelta(0):
            return
        with contextlib.suppress(TimeoutError):  # the time came: not an error
            await workflow.wait_condition(condition, timeout=left)

    # -- the nodes ---------------------------------------------------------------------------

    async def _switch_on(self, step: str) -> None:
        ends_at = self.current.ends_at
        merchants = self.current.activated if step == "extend" else self.spec.merchants
        results = await asyncio.gather(
            *(self._change(m, True, ends_at, step) for m in merchants), return_exceptions=True
        )
        for merchant, result in zip(merchants, results, strict=True):
            if isinstance(result, NodeChangeResult):
                if merchant not in self.current.activated:
                    self.current.activated.append(merchant)
            elif isinstance(result, ActivityError):
                # Refused for good: not switched on, or (an extension) it keeps the old end.
                why = getattr(result.cause, "message", result.cause)
                self.current.refused.append(f"{step} at {merchant}: {why}")
            else:
                raise result
        self.applied_ends_at = ends_at

    async def _switch_off(self) -> None:
        await asyncio.gather(
            *(
                self._change(m, False, self.current.ends_at, "deactivate")
                for m in self.current.activated
            )
        )

    async def _change(
        self, merchant: str, active: bool, ends_at: datetime, step: str
    ) -> NodeChangeResult:
        change = NodeChange(merchant, self.spec, active, ends_at, step)
        result: NodeChangeResult = await self._activity("apply_campaign", change, NodeChangeResult)
        return result

    async def _budget_spent(self) -> bool:
        """Whether every pool is spent. A node that does not answer counts as not spent: the
        poll only advises, the node's pool itself never overspends."""
        polled = await asyncio.gather(
            *(
                self._activity(
                    "campaign_pool", PoolQuery(m, self.spec.pool_id), PoolUsage, _POLL_RETRY
                )
                for m in self.current.activated
            ),
            return_exceptions=True,
        )
        usages = [usage for usage in polled if isinstance(usage, PoolUsage)]
        for failure in (p for p in polled if not isinstance(p, PoolUsage | ActivityError)):
            raise failure
        self.current.pools = usages
        return len(usages) == len(polled) and all(usage.spent for usage in usages)

    async def _report(self) -> CampaignReport:
        spec, ended_at = self.spec, self.current.ended_at
        assert ended_at is not None
        if spec.baseline_starts_at and spec.baseline_ends_at:
            baseline = (spec.baseline_starts_at, spec.baseline_ends_at)
        else:
            baseline = (spec.starts_at - (ended_at - spec.starts_at), spec.starts_at)
        figures: list[MerchantFigures] = list(
            await asyncio.gather(
                *(
                    self._activity(
                        "campaign_figures",
                        FiguresQuery(m, spec.campaign_id, spec.starts_at, ended_at, *baseline),
                        MerchantFigures,
                    )
                    for m in self.current.activated
                )
            )
        )
        days = roi.days(spec.starts_at, ended_at), roi.days(*baseline)
        return CampaignReport(
            spec.campaign_id,
            spec.starts_at,
            ended_at,
            *baseline,
            merchants=[roi.roi(f, *days) for f in figures],
            total=roi.roi(roi.total(figures), *days),
        )

    async def _activity(
        self, name: str, arg: object, result_type: type, retry: RetryPolicy = _RETRY
    ) -> Any:
        """Activities are idempotent (by the state they bring about, or read-only), so they are
        retried without end; they heartbeat, so a killed worker's is retried soon."""
        return await workflow.execute_activity(
            name,
            arg,
            result_type=result_type,
            start_to_close_timeout=timedelta(minutes=2),
            heartbeat_timeout=timedelta(seconds=self.spec.heartbeat_seconds),
            retry_policy=retry,
        )

    # -- the operator ------------------------------------------------------------------------

    @workflow.update
    async def cancel(self, request: Cancel) -> CampaignStatus:
        """Ends the campaign now; returns once every node has it switched off."""
        self.current.cancellation = request
        await workflow.wait_condition(lambda: self.switched_off)
        return self.current

    @cancel.validator
    def _cancellable(self, request: Cancel) -> None:
        self._open()
        if not request.by or not request.reason:
            raise ValueError("say who cancels and why")

    @workflow.update
    async def extend(self, request: Extend) -> CampaignStatus:
        """Moves the end later; once running, returns when every node carries the new end."""
        self.current.ends_at = request.new_ends_at
        self.current.extensions.append(request)
        await workflow.wait_condition(
            lambda: (
                self.current.state == "scheduled"
                or self.switched_off
                or (
                    self.applied_ends_at is not None and self.applied_ends_at >= request.new_ends_at
                )
            )
        )
        return self.current

    @extend.validator
    def _extendable(self, request: Extend) -> None:
        self._open()
        if not request.by:
            raise ValueError("say who extends the campaign")
        if request.new_ends_at.tzinfo is None:
            raise ValueError("new_ends_at needs a UTC offset")
        if request.new_ends_at <= self.current.ends_at:
            raise ValueError(
                f"new_ends_at must be later than the end, {self.current.ends_at.isoformat()}"
            )

    def _open(self) -> None:
        if self.current.state not in _OPEN or self.current.cancellation is not None:
            raise ValueError(f"the campaign has ended ({self.current.state})")
        if workflow.now() >= self.current.ends_at:
            raise ValueError("the campaign has reached its end")

    @workflow.query
    def status(self) -> CampaignStatus:
        return self.current
