"""The demo's member intelligence chapter: at hair-salon, four members with months of history on
the demo clock (two gone quiet for 90+ days, one who only bought on promotion Saturdays and
then stopped, one who keeps coming), then the node's nightly steps as MemberIntelligenceWorkflow
runs them — facts → segments and tags → churn → the night's at-risk share → triggers → delivery
(docs/marketing.md). Each member's segment is printed with its reason; the wake-up offers go
out through the shop's signed webhook to the merchant's backend, which checks each signature;
the member drawn into the control group gets nothing."""

from __future__ import annotations

import asyncio
import pathlib
from dataclasses import replace
from datetime import timedelta
from zoneinfo import ZoneInfo

from coalition_kernel.keys import load_private_key
from merchant_node.ledger.commands import Earn, Enroll
from merchant_node.marketing.service import MarketingService
from merchant_node.notify.channels import WebhookChannel
from merchant_node.notify.dispatcher import Dispatcher
from merchant_node.rules.base import LineItem

SHANGHAI = ZoneInfo("Asia/Shanghai")

# Saturdays' double points, tagged as a campaign: orders it credits are responses to campaigns,
# so a member who only bought then is price-sensitive.
PROGRAM = """
timezone: Asia/Shanghai
rules:
  - {id: promo_sat, type: time_window, campaign: promo, multiplier: "2", days_of_week: [sat]}
"""

# The seeds' offers for two of the causes; half of each trigger's members are held out (the
# demo's members were picked so that m-gao falls in the control group: SHA-256, triggers.py).
TRIGGERS = """
frequency_cap: {max_actions: 1, per_days: 30}
triggers:
  - id: wake_price_sensitive
    who: {segments: [dormant], cause: price_sensitive}
    control_percent: 50
    action: {kind: coupon, value_fen: 5000, min_spend_fen: 20000, valid_days: 14,
             subject: 满200减50 限时券, text: 好久不见！送您一张满200减50的限时券，14天内有效。}
  - id: wake_long_silence
    who: {segments: [dormant], cause: long_silence}
    control_percent: 50
    action: {kind: bonus, bonus_points: 100, subject: 欢迎回来礼, text: 送您100积分，欢迎回来}
"""

MEMBERS = {  # member: (what the story says, days ago of each order, on Saturdays only?)
    "m-he": ("gone quiet", (200, 170, 130), False),
    "m-gao": ("gone quiet", (190, 160, 125), False),
    "m-xu": ("bought on promotion Saturdays only", (160, 145, 130), True),
    "m-luo": ("keeps coming", (40, 20, 3), False),
}


def _order_day(clock, days_ago: int, saturday: bool) -> timedelta:  # type: ignore[no-untyped-def]
    """The offset of an order about `days_ago`: moved to the nearest Saturday (Shanghai) before
    it for a promotion buyer, off Saturday for everyone else."""
    offset = timedelta(days=-days_ago)
    while ((clock() - clock.offset + offset).astimezone(SHANGHAI).weekday() == 5) != saturday:
        offset -= timedelta(days=1)
    return offset


def _history(shop, clock) -> None:  # type: ignore[no-untyped-def]
    ledger = shop.ledger
    clock.offset = -timedelta(days=210)
    ledger.apply_program(PROGRAM, "demo")
    for member in MEMBERS:
        ledger.enroll(Enroll(f"enroll-{member}", member))
    for member, (_, days, saturday) in MEMBERS.items():
        for i, days_ago in enumerate(days):
            clock.offset = _order_day(clock, days_ago, saturday)
            order = f"{member}-cut-{i}"
            item = (LineItem("haircut", "haircut", 1, 8_000),)
            ledger.earn(Earn(f"earn-{order}", member, order, 8_000, "POS", None, item))
    clock.offset = timedelta(0)


async def marketing_chapter(shops, clock) -> None:  # type: ignore[no-untyped-def]
    from coalition_cli.demo import _MerchantBackend  # the expiry chapter's receiver

    shop = shops["hair-salon"]
    merchant = shop.config.merchant_id
    print(f"\n-- member intelligence at {merchant} (its nightly 02:00 run, started now)")
    await asyncio.to_thread(_history, shop, clock)
    for member, (story, days, saturday) in MEMBERS.items():
        when = "Saturdays " if saturday else ""
        print(f"  {member:<6} {story}: ¥80 haircuts {when}{', '.join(map(str, days))} days ago")
    settings = replace(shop.config.notifications, quiet_hours="")  # the demo runs at any hour
    service = MarketingService(shop.ledger, settings, merchant_id=merchant, clock=clock)
    service.apply("triggers", TRIGGERS, "demo")
    print("  triggers applied: price-sensitive → 满200减50 coupon, long silence → 100 points")

    now = clock()
    outcomes = await asyncio.to_thread(_nightly, service, now)
    asleep = set()
    for member in MEMBERS:
        p = (await asyncio.to_thread(service.member, member)).placement
        print(f"  {member:<6} → segment {p.segment.id} ({p.segment.name}): {p.segment.reason}")
        if p.cause is not None:
            asleep.add(member)
            name = f" ({p.cause.name})" if p.cause.name != p.cause.id else ""
            print(f"{'':<11}likely cause {p.cause.id}{name}: {p.cause.reason}")
    for o in outcomes:
        print(f"  trigger {o.trigger_id}: {o.treated} treated, {o.held_out} held out (control)")

    key = load_private_key(pathlib.Path(shop.config.private_key_file))
    backend = _MerchantBackend(key.public_key())
    dispatcher = Dispatcher(
        shop.ledger.engine,
        {"webhook": WebhookChannel(backend.url, key, clock=clock)},
        settings,
        merchant_id=merchant,
        clock=clock,
    )
    try:
        await asyncio.to_thread(dispatcher.run_until_idle)
    finally:
        backend.close()
    told = set()
    for event in backend.events:
        data = event["data"]
        told.add(event["member_id"])
        offer = (
            f"coupon {data['coupon_code'][:4]}… ¥{data['coupon_value_fen'] // 100} off "
            f"¥{data['coupon_min_spend_fen'] // 100}"
            if data["action"] == "coupon"
            else f"+{data.get('bonus_points', 0)} points"
        )
        print(
            f"  the merchant's backend got a signed webhook (verified): {event['member_id']} "
            f"← 「{data['subject']}」 {offer}"
        )
    if backend.rejected:
        print(f"  {backend.rejected} webhook(s) REJECTED by the backend")
    control = [m for m in MEMBERS if m in asleep and m not in told]
    awake = [m for m in MEMBERS if m not in asleep]
    print(f"  nothing sent to {', '.join(control)} (control group) or {', '.join(awake)} (awake)")


def _nightly(service: MarketingService, at):  # type: ignore[no-untyped-def]
    """MemberIntelligenceWorkflow's activities, in its order (tiers: no tiers at this shop)."""
    service.refresh_facts(at)
    service.place_all(at)
    service.evaluate_tiers(at)
    service.score_churn(at)
    service.record_run(at)
    return service.run_triggers(at)
