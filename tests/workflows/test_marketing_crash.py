"""Crash safety of the nightly member intelligence run: the node's worker is killed (SIGKILL)
right after the triggers decided (bonuses booked, coupons issued, messages enqueued) or right
after delivery, before Temporal heard of it. A new worker finishes the run: every decision made
once, every bonus granted once, every message delivered once."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from coalition_kernel.db import utc_now
from merchant_node.config import NodeConfig
from merchant_node.ledger.schema import lots
from merchant_node.marketing.schema import trigger_actions
from merchant_node.marketing.service import MarketingService
from merchant_node.runtime import open_ledger
from tests.conftest import FakeClock
from tests.merchant_node.marketing import population as popmod
from tests.merchant_node.marketing.population import TRIGGERS
from tests.merchant_node.test_notifications import WebhookReceiver, receiver  # noqa: F401
from tests.workflows.crash_harness import init_node, run_through_a_crash
from workflows.marketing.shared import IntelligenceInput
from workflows.marketing.workflows import MemberIntelligenceWorkflow


def seed(config: NodeConfig) -> popmod.Population:
    """The synthetic population, its 120 days all in the past: the quiet ones are dormant now.
    Booked through the node's own ledger (its wallet key seals the members' secrets)."""
    start = utc_now() - timedelta(days=121)
    clock = FakeClock(start)
    ledger = open_ledger(config, pool_size=2, clock=clock)
    try:
        pop = popmod.build(start, per_kind=8)
        popmod.enroll_all(ledger, clock, pop, "01-01")
        popmod.earn_days(ledger, clock, pop, popmod.ENROLLED, 120)
        MarketingService(ledger, clock=clock).apply("triggers", TRIGGERS, "ops@tea")
    finally:
        ledger.engine.dispose()
    return pop


@pytest.mark.parametrize("kill_after", ["marketing_triggers", "deliver_notifications"])
async def test_killing_the_worker_mid_run_sends_each_message_once_and_grants_each_bonus_once(
    dev_server,
    new_database,
    tmp_path,
    receiver: WebhookReceiver,  # noqa: F811 - the fixture imported above
    kill_after,
):
    url = new_database("node")
    path = init_node(tmp_path / "tea", url, receiver.url)
    seed(NodeConfig.load(path))
    outcome = await run_through_a_crash(
        dev_server.client,
        "node",
        path,
        kill_after,
        tmp_path,
        MemberIntelligenceWorkflow.run,
        IntelligenceInput("tea", heartbeat_seconds=2),
        f"coalition-intelligence-tea-{uuid.uuid4().hex[:6]}",
    )

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            actions = conn.execute(sa.select(trigger_actions)).all()
            bonus_lots = conn.execute(
                sa.select(lots.c.member_pk).where(lots.c.rule_id == "trigger:wake_long_silence")
            ).all()
    finally:
        engine.dispose()
    treated = [a for a in actions if not a.in_control]
    silent_treated = [a for a in treated if a.trigger_id == "wake_long_silence"]
    # 8 quiet members of each of the three causes (the silver member, 421 days silent, is
    # lost, not dormant): 24 decisions, once each.
    assert len(actions) == 24
    assert len({(a.trigger_id, a.member_pk) for a in actions}) == 24
    assert sorted(m for (m,) in bonus_lots) == sorted(a.member_pk for a in silent_treated)
    ids = [r.headers["Coalition-Notification-Id"] for r in receiver.requests]
    assert len(ids) == len(set(ids)) == len(treated)  # each message delivered once
    kinds = {json.loads(r.body)["data"]["trigger_id"] for r in receiver.requests}
    assert kinds <= {"wake_price_sensitive", "wake_category_shift", "wake_long_silence"}
    if kill_after == "marketing_triggers":
        # The retried attempt found every decision made by the killed one.
        assert sum(t.treated + t.held_out for t in outcome.triggers) == 0
    assert not outcome.delivery_error
