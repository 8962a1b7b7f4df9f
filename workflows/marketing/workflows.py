"""The nightly member intelligence run of one node: facts → segments and tags → tier
evaluation → churn scores → the night's at-risk share → triggers → delivery.

Every activity takes the workflow's time, so a retried step decides exactly as the first
attempt; each is idempotent (facts and placements are replaced, not added to; a trigger decides
once per member and occasion, in the same transaction as its message, bonus or coupon; the
outbox sends a notification once). A worker killed mid-run resumes at the step that was running.
Delivery failing never fails the run: the notify schedule delivers later.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from workflows.expiry.shared import Delivered
    from workflows.marketing.shared import IntelligenceInput, IntelligenceOutcome, TriggerCount

_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1))
_DELIVERY_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30), maximum_attempts=3)


async def _activity(
    name: str, at: str, result_type: type | None, beat: int, retry: RetryPolicy = _RETRY
) -> Any:
    return await workflow.execute_activity(
        name,
        at,
        result_type=result_type,
        start_to_close_timeout=timedelta(hours=2),
        heartbeat_timeout=timedelta(seconds=beat),
        retry_policy=retry,
    )


@workflow.defn
class MemberIntelligenceWorkflow:
    @workflow.run
    async def run(self, params: IntelligenceInput) -> IntelligenceOutcome:
        at = workflow.now().isoformat()
        beat = params.heartbeat_seconds
        out = IntelligenceOutcome(params.merchant_id, at)
        out.facts = await _activity("marketing_facts", at, int, beat)
        out.placed = await _activity("marketing_segments", at, int, beat)
        out.tiers_evaluated = await _activity("marketing_tiers", at, int, beat)
        out.model_fitted = await _activity("marketing_churn", at, bool, beat)
        run: IntelligenceOutcome = await _activity(
            "marketing_record_run", at, IntelligenceOutcome, beat
        )
        out.members, out.at_risk = run.members, run.at_risk
        out.at_risk_share_bps, out.warned = run.at_risk_share_bps, run.warned
        out.triggers = await _activity("marketing_triggers", at, list[TriggerCount], beat)
        try:
            delivered: Delivered = await _activity(
                "deliver_notifications", at, Delivered, beat, _DELIVERY_RETRY
            )
            out.delivered = delivered.sent
        except ActivityError as err:
            out.delivery_error = str(err.cause or err)[:300]
        return out


WORKFLOWS = [MemberIntelligenceWorkflow]
