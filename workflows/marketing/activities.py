"""The member intelligence activities of one node, over its own database; each takes the
workflow's time and is idempotent (see workflows.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from temporalio import activity

from merchant_node.marketing.service import MarketingService
from workflows.heartbeat import heartbeating
from workflows.marketing.shared import IntelligenceOutcome, TriggerCount

log = logging.getLogger(__name__)


@dataclass
class MarketingActivities:
    service: MarketingService

    def all(self) -> list[Callable[..., object]]:
        return [
            self.facts,
            self.segments,
            self.tiers,
            self.churn,
            self.record_run,
            self.triggers,
        ]

    @activity.defn(name="marketing_facts")
    @heartbeating
    async def facts(self, at_iso: str) -> int:
        return await asyncio.to_thread(self.service.refresh_facts, datetime.fromisoformat(at_iso))

    @activity.defn(name="marketing_segments")
    @heartbeating
    async def segments(self, at_iso: str) -> int:
        return await asyncio.to_thread(self.service.place_all, datetime.fromisoformat(at_iso))

    @activity.defn(name="marketing_tiers")
    @heartbeating
    async def tiers(self, at_iso: str) -> int:
        return await asyncio.to_thread(self.service.evaluate_tiers, datetime.fromisoformat(at_iso))

    @activity.defn(name="marketing_churn")
    @heartbeating
    async def churn(self, at_iso: str) -> bool:
        return await asyncio.to_thread(self.service.score_churn, datetime.fromisoformat(at_iso))

    @activity.defn(name="marketing_record_run")
    @heartbeating
    async def record_run(self, at_iso: str) -> IntelligenceOutcome:
        run = await asyncio.to_thread(self.service.record_run, datetime.fromisoformat(at_iso))
        if run.warned:
            log.warning(
                "at-risk share of %s jumped to %d bps (%d of %d members): merchant warned",
                self.service.merchant_id,
                run.at_risk_share_bps,
                run.at_risk,
                run.members,
            )
        return IntelligenceOutcome(
            self.service.merchant_id,
            at_iso,
            members=run.members,
            at_risk=run.at_risk,
            at_risk_share_bps=run.at_risk_share_bps,
            warned=run.warned,
        )

    @activity.defn(name="marketing_triggers")
    @heartbeating
    async def triggers(self, at_iso: str) -> list[TriggerCount]:
        outcomes = await asyncio.to_thread(
            self.service.run_triggers, datetime.fromisoformat(at_iso)
        )
        return [TriggerCount(o.trigger_id, o.treated, o.held_out) for o in outcomes]
