"""The nightly MemberIntelligenceWorkflow on the time-skipping server over a real node ledger
(SQLite, PostgreSQL), a real webhook receiver and a real SMTP server on loopback: 120 days of a
synthetic population (members going quiet for each of the seeds' three causes, members who keep
buying, a silver member whose spend runs out), one run a night. Each dormant member gets their
cause's offer once, on their channel; control members get nothing; the reports' wake-up counts
are the hand count; the silver member goes down after the grace period."""

from __future__ import annotations

import email
import email.policy
import json
import os
import uuid
from datetime import timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from temporalio.worker import Worker

from coalition_kernel.db import run_in_transaction
from merchant_node.ledger.schema import members
from merchant_node.marketing.schema import trigger_actions
from merchant_node.marketing.service import MarketingService
from merchant_node.marketing.triggers import in_control
from merchant_node.notify import outbox
from merchant_node.notify.dispatcher import Dispatcher
from tests.conftest import FakeClock, open_test_ledger
from tests.merchant_node.marketing import population as popmod
from tests.merchant_node.marketing.population import OFFERS, TRIGGERS
from tests.merchant_node.test_notifications import (  # noqa: F401 - fixtures
    Mailbox,
    WebhookReceiver,
    mailbox,
    receiver,
)
from tests.workflows.test_expiry_workflow import node_config
from workflows.expiry.activities import ExpiryActivities
from workflows.expiry.shared import node_task_queue
from workflows.marketing.activities import MarketingActivities
from workflows.marketing.shared import IntelligenceInput
from workflows.marketing.workflows import WORKFLOWS, MemberIntelligenceWorkflow

DAYS = int(os.environ.get("H6_DAYS", "120"))
WOKEN = ("price-0", "price-1", "price-2", "shift-0", "silent-0", "silent-3")  # buy on day 112


async def test_120_nights_wake_each_sleeper_once_with_their_offer_and_tiers_go_down(
    time_skipping,
    db_url,
    tmp_path,
    receiver: WebhookReceiver,  # noqa: F811 - the fixture imported above
    mailbox: Mailbox,  # noqa: F811
):
    start = await time_skipping.get_current_time()
    clock = FakeClock(start)
    ledger = open_test_ledger(db_url, clock)
    config = node_config(db_url, tmp_path, receiver.url, mailbox.port)
    pop = popmod.build(start, per_kind=6)
    for member in WOKEN:
        pop.orders[member].append((112, "tea"))
    evaluation_day = (start + timedelta(days=70)).astimezone(ZoneInfo("Asia/Shanghai"))
    tiers_seen = {}
    try:
        popmod.enroll_all(ledger, clock, pop, evaluation_day.strftime("%m-%d"))
        popmod.earn_days(ledger, clock, pop, popmod.ENROLLED, 0)
        for i in range(6):  # the category-shift members read email
            run_in_transaction(
                ledger.engine,
                lambda c, i=i: outbox.set_member_contact(
                    c, f"shift-{i}", start, email=f"shift{i}@example.com", preferred_channel="email"
                ),
            )
        service = MarketingService(ledger, config.notifications, merchant_id="tea", clock=clock)
        service.apply("triggers", TRIGGERS, "ops@tea")
        deliver = ExpiryActivities(
            ledger,
            config.notifications,
            lambda clk: Dispatcher.from_config(ledger.engine, config, clock=clk),
        ).deliver_notifications
        queue = f"{node_task_queue('tea')}-mi-{uuid.uuid4().hex[:6]}"
        outcomes = []
        async with Worker(
            time_skipping.client,
            task_queue=queue,
            workflows=WORKFLOWS,
            activities=[*MarketingActivities(service).all(), deliver],
        ):
            for day in range(1, DAYS + 1):
                popmod.earn_day(ledger, clock, pop, day - 1)  # yesterday's orders
                await time_skipping.sleep(timedelta(days=1))
                handle = await time_skipping.client.start_workflow(
                    MemberIntelligenceWorkflow.run,
                    IntelligenceInput("tea"),
                    id=f"coalition-intelligence-tea-day-{day}-{uuid.uuid4().hex[:6]}",
                    task_queue=queue,
                )
                with time_skipping.auto_time_skipping_disabled():
                    outcomes.append((day, await handle.result()))
                with ledger.engine.connect() as conn:
                    tiers_seen[day] = conn.execute(
                        sa.select(members.c.tier).where(members.c.member_id == "vip-0")
                    ).scalar_one()
        reports = {t: service.trigger_report(t) for t in OFFERS.values()}
        with ledger.engine.connect() as conn:
            actions = conn.execute(
                sa.select(trigger_actions, members.c.member_id).join(
                    members, members.c.id == trigger_actions.c.member_pk
                )
            ).all()
    finally:
        ledger.engine.dispose()

    assert all(not o.delivery_error for _, o in outcomes)
    # Every quiet member decided once, by their cause's trigger; nobody else. (The silver
    # member's one order, 300 days before, makes them a long silence until it is a year old.)
    offers = {**OFFERS, "vip": "wake_long_silence"}
    decided = {a.member_id: a for a in actions}
    assert len(decided) == len(actions)
    quiet = [m for m in pop.orders if pop.kind(m) in offers]
    assert sorted(decided) == sorted(quiet)
    for member in quiet:
        assert decided[member].trigger_id == offers[pop.kind(member)]
        assert decided[member].in_control is in_control(offers[pop.kind(member)], member, 25)
    treated = [m for m in quiet if not decided[m].in_control]
    held = [m for m in quiet if decided[m].in_control]
    assert treated and held

    # Delivered once each, on the member's channel: shift members by email, others by webhook.
    everything = [json.loads(r.body) for r in receiver.requests]
    ids = [r.headers["Coalition-Notification-Id"] for r in receiver.requests]
    assert len(ids) == len(set(ids))
    bodies = [b for b in everything if b["kind"] != "at_risk_warning"]
    # The merchant, on her webhook: one warning for each night the at-risk share jumped. Each
    # cause's six sleepers fall dormant together: 6 of 25 members, +2400 bps (past the 500),
    # until all 18 are: 7200 bps, 6 of each cause.
    warnings = [b for b in everything if b["kind"] == "at_risk_warning"]
    warned = [o.at_risk_share_bps for _, o in outcomes if o.warned]
    assert warnings and all(b["member_id"] == "" for b in warnings)
    assert sorted(b["data"]["at_risk_share_bps"] for b in warnings) == sorted(warned)
    for b in warnings:
        jump = b["data"]["at_risk_share_bps"] - b["data"]["previous_share_bps"]
        assert jump > 0 and jump % 2400 == 0
    last = max(warnings, key=lambda b: b["data"]["at_risk_share_bps"])["data"]
    assert (last["at_risk"], last["members"], last["at_risk_share_bps"]) == (18, 25, 7200)
    assert last["causes"] == {"category_shift": 6, "long_silence": 6, "price_sensitive": 6}
    mails = [
        email.message_from_bytes(raw, policy=email.policy.default) for _, _, raw in mailbox.messages
    ]
    told = sorted(
        [b["member_id"] for b in bodies if b["kind"] == "marketing"]
        + [m["To"].split("@")[0].replace("shift", "shift-") for m in mails]
    )
    assert told == sorted(treated)
    for body in bodies:
        assert body["data"]["trigger_id"] == offers[pop.kind(body["member_id"])]
    assert all("新品到店" in m["Subject"] for m in mails)

    # The wake-up rate of each offer: a hand count of WOKEN against who was treated and held out.
    for trigger in OFFERS.values():
        r = reports[trigger]
        mine = [m for m in quiet if offers[pop.kind(m)] == trigger]
        t = [m for m in mine if m in treated]
        c = [m for m in mine if m in held]
        assert (r.treated, r.control) == (len(t), len(c))
        assert r.treated_converted == len([m for m in WOKEN if m in t])
        assert r.control_converted == len([m for m in WOKEN if m in c])
        assert r.treated_rate_bps == (r.treated_converted * 10_000 // len(t) if t else 0)

    # The silver member: short on the evaluation day (day 70), kept through 30 days of grace,
    # then moved down.
    assert tiers_seen[69] == "silver" and tiers_seen[99] == "silver"
    assert tiers_seen[120] == "member"
    down = min(d for d, tier in tiers_seen.items() if tier == "member")
    assert 100 <= down <= 101
