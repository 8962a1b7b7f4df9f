"""The daily expiry run of one node, and the frequent delivery run of its outbox.

The node's Schedule starts `ExpiryRunWorkflow` once a day: reminders for points expiring soon
are enqueued first, then due lots expire to breakage (and lapsed holds are released), then the
day's breakage is reported, and only then is the outbox delivered — so a delivery failure never
holds up expiry. `NotifyWorkflow` (every few minutes) delivers whatever waited: retries after
backoff, notifications deferred past quiet hours. Every activity takes the workflow's time, so
a run decides the same way whenever it is retried, and time-skipping tests can run months.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from workflows.expiry.shared import Breakage, Delivered, Expired, ExpiryInput, ExpiryOutcome

_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1))
# Delivery is retried a little within the run; past that the notify schedule takes over.
_DELIVERY_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30), maximum_attempts=3)


async def _activity(
    name: str,
    arg: object,
    result_type: type | None,
    heartbeat_seconds: int,
    retry: RetryPolicy = _RETRY,
) -> Any:
    return await workflow.execute_activity(
        name,
        arg,
        result_type=result_type,
        start_to_close_timeout=timedelta(hours=1),
        heartbeat_timeout=timedelta(seconds=heartbeat_seconds),
        retry_policy=retry,
    )


@workflow.defn
class ExpiryRunWorkflow:
    @workflow.run
    async def run(self, params: ExpiryInput) -> ExpiryOutcome:
        at = workflow.now().isoformat()
        beat = params.heartbeat_seconds
        outcome = ExpiryOutcome(params.merchant_id, at)
        outcome.reminders_enqueued = await _activity("enqueue_reminders", at, int, beat)
        outcome.expired = await _activity("expire_due", at, Expired, beat)
        outcome.breakage = await _activity("breakage_of_day", at, Breakage, beat)
        try:
            outcome.delivered = await _activity(
                "deliver_notifications", at, Delivered, beat, _DELIVERY_RETRY
            )
        except ActivityError as err:
            outcome.delivery_error = str(err.cause or err)[:300]
        return outcome


@workflow.defn
class NotifyWorkflow:
    @workflow.run
    async def run(self, params: ExpiryInput) -> Delivered:
        delivered: Delivered = await _activity(
            "deliver_notifications",
            workflow.now().isoformat(),
            Delivered,
            params.heartbeat_seconds,
            _DELIVERY_RETRY,
        )
        return delivered


WORKFLOWS = [ExpiryRunWorkflow, NotifyWorkflow]
