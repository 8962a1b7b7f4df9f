"""The warning to the merchant when the at-risk share jumps (issue 13, item 3), over the real
ledger and the nightly steps, delivered by the outbox's dispatcher to real receivers on loopback
(the signed webhook; apprise's json:// target), on SQLite and PostgreSQL.

Ten members, all with one order. m1 bought on day -100, m2-m4 on day 0, m5-m10 on day 20.
Night of day 80: m1 is dormant (90+ days without a purchase): 1 of 10 = 1000 bps.
Night of day 100: m1-m4 are dormant: 4 of 10 = 4000 bps, up 3000 bps from the night before.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from coalition_kernel.keys import generate_keypair, load_public_key
from merchant_node.config import NodeConfig
from merchant_node.ledger.commands import Earn, Enroll
from merchant_node.ledger.schema import notifications
from merchant_node.ledger.service import NodeLedger
from merchant_node.marketing.definitions import DEFAULT_DOCUMENT
from merchant_node.marketing.schema import marketing_runs
from merchant_node.marketing.service import MarketingService
from merchant_node.notify.channels import verify_webhook
from merchant_node.notify.dispatcher import Dispatcher
from merchant_node.rules.base import LineItem
from tests.conftest import FakeClock, open_test_ledger
from tests.merchant_node.test_notifications import (  # noqa: F401 - fixtures
    WebhookReceiver,
    receiver,
    with_settings,
)

START = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
ORDERS = {"m1": -100, **{f"m{i}": 0 for i in (2, 3, 4)}, **{f"m{i}": 20 for i in range(5, 11)}}


def _night(day: int) -> datetime:
    return START + timedelta(days=day, hours=16)  # 02:00 in Shanghai, the next day


@pytest.fixture
def shop(
    db_url: str, tmp_path: pathlib.Path
) -> Iterator[tuple[NodeLedger, FakeClock, NodeConfig, MarketingService]]:
    clock = FakeClock(START + timedelta(days=-120))
    ledger = open_test_ledger(db_url, clock)
    private, public = tmp_path / "node.pem", tmp_path / "node.pub.pem"
    kid = generate_keypair(private, public)
    config = NodeConfig(
        "tea", db_url, private_key_file=str(private), public_key_file=str(public), key_id=kid
    )
    for member in ORDERS:
        ledger.enroll(Enroll(f"enroll-{member}", member))
    for member, day in sorted(ORDERS.items(), key=lambda kv: kv[1]):
        clock.now = START + timedelta(days=day)
        item = (LineItem("tea-1", "tea", 1, 8_000),)
        ledger.earn(Earn(f"earn-{member}", member, f"o-{member}", 8_000, "POS", None, item))
    service = MarketingService(ledger, config.notifications, merchant_id="tea", clock=clock)
    yield ledger, clock, config, service
    ledger.engine.dispose()


def _nightly(service: MarketingService, clock: FakeClock, day: int):  # type: ignore[no-untyped-def]
    clock.now = _night(day)
    service.refresh_facts(clock.now)
    service.place_all(clock.now)
    service.score_churn(clock.now)
    return service.record_run(clock.now)


def _outbox(ledger: NodeLedger) -> list:  # type: ignore[type-arg]
    with ledger.engine.connect() as conn:
        return conn.execute(select(notifications).order_by(notifications.c.id)).all()


def _hostport(receiver: WebhookReceiver) -> str:  # noqa: F811
    return receiver.url.split("://")[1].split("/")[0]


def test_a_jump_past_the_threshold_warns_the_merchant_once_on_her_webhook(
    shop,
    receiver,  # noqa: F811
):
    ledger, clock, config, service = shop
    config = with_settings(config, webhook_url=receiver.url)
    service.settings = config.notifications

    before = _nightly(service, clock, 80)
    assert (before.members, before.at_risk, before.at_risk_share_bps) == (10, 1, 1000)
    assert not before.warned and _outbox(ledger) == []

    night = _nightly(service, clock, 100)
    assert (night.members, night.at_risk, night.at_risk_share_bps, night.warned) == (
        10,
        4,
        4000,
        True,
    )
    # The night re-run (a retried activity, a crashed worker's replay) adds nothing.
    again = service.record_run(clock.now)
    assert again.warned and again.at_risk_share_bps == 4000
    (row,) = _outbox(ledger)
    assert (row.recipient, row.member_pk, row.kind, row.channel, row.dedupe_key) == (
        "merchant",
        None,
        "at_risk_warning",
        "webhook",
        "at_risk_warning:2026-04-16",
    )
    payload = json.loads(row.payload)
    assert {k: v for k, v in payload.items() if k not in ("subject", "text")} == {
        "day": "2026-04-16",
        "at_risk": 4,
        "members": 10,
        "at_risk_share_bps": 4000,
        "previous_share_bps": 1000,
        "warn_jump_bps": 500,
        "causes": {"long_silence": 4},
    }
    assert payload["subject"] == "流失风险会员占比升至 40.00% / At-risk members up to 40.00%"
    assert "4 of 10 members are at risk: 40.00%, up from 10.00%" in payload["text"]

    # 02:00 in Shanghai is within the merchant's quiet hours (22:00-08:00): held until 08:00.
    dispatcher = Dispatcher.from_config(ledger.engine, config, clock=clock)
    held = dispatcher.run_until_idle()
    assert (held.sent, held.deferred, receiver.requests) == (0, 1, [])
    clock.now = _night(100) + timedelta(hours=6)
    sent = dispatcher.run_until_idle()
    assert sent.sent == 1 and not sent.dead
    (got,) = receiver.requests
    body = verify_webhook(
        load_public_key(pathlib.Path(config.public_key_file)), got.headers, got.body, clock.now
    )
    assert (body["kind"], body["member_id"], body["merchant_id"]) == (
        "at_risk_warning",
        "",
        "tea",
    )
    assert body["data"]["at_risk_share_bps"] == 4000

    # The next night the share holds at 4000: no jump, no new warning.
    steady = _nightly(service, clock, 101)
    assert (steady.at_risk_share_bps, steady.warned) == (4000, False)
    assert len(_outbox(ledger)) == 1
    with ledger.engine.connect() as conn:
        runs = conn.execute(
            select(marketing_runs.c.run_day, marketing_runs.c.warned).order_by("run_day")
        ).all()
    assert [tuple(r) for r in runs] == [
        ("2026-03-27", False),
        ("2026-04-16", True),
        ("2026-04-17", False),
    ]


@pytest.mark.parametrize("threshold, warned", [(3000, True), (3001, False)])
def test_the_merchants_threshold_decides(shop, threshold: int, warned: bool):
    ledger, clock, config, service = shop
    document = DEFAULT_DOCUMENT.replace("warn_jump_bps: 500", f"warn_jump_bps: {threshold}")
    service.apply("segments", document, "owner@tea")
    _nightly(service, clock, 80)
    night = _nightly(service, clock, 100)  # up 3000 bps
    assert night.warned is warned
    assert len(_outbox(ledger)) == (1 if warned else 0)


def test_the_warning_goes_to_the_merchants_own_apprise_url(
    shop,
    receiver,  # noqa: F811
):
    ledger, clock, config, service = shop
    config = with_settings(
        config,
        quiet_hours="",
        merchant_alert_url=f"json://{_hostport(receiver)}/boss",
    )
    service.settings = config.notifications
    _nightly(service, clock, 80)
    _nightly(service, clock, 100)
    (row,) = _outbox(ledger)
    assert row.channel == "merchant"
    report = Dispatcher.from_config(ledger.engine, config, clock=clock).run_until_idle()
    assert report.sent == 1
    (got,) = receiver.requests
    body = json.loads(got.body)  # apprise's JSON: title, message
    assert body["title"] == "流失风险会员占比升至 40.00% / At-risk members up to 40.00%"
    assert "(warning at +5.00%). Causes: long_silence 4." in body["message"]
    assert body["message"].endswith(f"[{row.id}]")


def test_a_night_that_died_before_its_share_is_no_baseline(shop):
    ledger, clock, config, service = shop
    _nightly(service, clock, 80)  # 1000 bps
    clock.now = _night(90)
    service.refresh_facts(clock.now)
    service.place_all(clock.now)
    service.score_churn(clock.now)  # leaves the day's row with zeros; record_run never ran
    night = _nightly(service, clock, 100)
    assert night.warned  # against day 80's 1000 bps, not day 90's zero
    assert json.loads(_outbox(ledger)[0].payload)["previous_share_bps"] == 1000
