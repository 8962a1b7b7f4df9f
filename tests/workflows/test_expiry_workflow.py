"""Points expiry on the time-skipping server, over a real node ledger (SQLite, PostgreSQL), a
real webhook receiver and a real SMTP server on loopback: 180 days pass, one run a day, as the
node's Schedule would start them; each member is reminded a week and three days before, once
each, on their preferred channel, and their points expire once, on the day."""

from __future__ import annotations

import email
import email.policy
import json
import pathlib
import uuid
from dataclasses import replace
from datetime import timedelta

import pytest
import sqlalchemy as sa
from temporalio.worker import Worker

from coalition_kernel.db import run_in_transaction
from coalition_kernel.keys import generate_keypair
from merchant_node.config import NodeConfig
from merchant_node.ledger.commands import Earn, Enroll
from merchant_node.ledger.schema import journal_lines, journal_transactions
from merchant_node.notify import outbox
from merchant_node.notify.dispatcher import Dispatcher
from tests.conftest import FakeClock, open_test_ledger
from tests.merchant_node.test_notifications import (  # noqa: F401 - fixtures
    Mailbox,
    WebhookReceiver,
    mailbox,
    receiver,
)
from tests.workflows.conftest import HISTORIES
from workflows.expiry.activities import ExpiryActivities
from workflows.expiry.shared import ExpiryInput, node_task_queue
from workflows.expiry.workflows import WORKFLOWS, ExpiryRunWorkflow


def node_config(db_url: str, tmp_path: pathlib.Path, webhook: str, smtp_port: int) -> NodeConfig:
    private, public = tmp_path / "node.pem", tmp_path / "node.pub.pem"
    kid = generate_keypair(private, public)
    config = NodeConfig(
        "tea", db_url, private_key_file=str(private), public_key_file=str(public), key_id=kid
    )
    return replace(
        config,
        notifications=replace(
            config.notifications,
            webhook_url=webhook,
            smtp_host="127.0.0.1",
            smtp_port=smtp_port,
            smtp_starttls=False,
            smtp_from="points@tea.example",
            quiet_hours="",  # the runs happen at whatever hour the test starts
        ),
    )


async def test_a_180_day_expiry_reminds_twice_then_expires_once(
    time_skipping,
    db_url,
    tmp_path,
    receiver: WebhookReceiver,  # noqa: F811 - the fixture imported above
    mailbox: Mailbox,  # noqa: F811
):
    start = await time_skipping.get_current_time()
    clock = FakeClock(start)
    ledger = open_test_ledger(db_url, clock, ttl_days=180)
    config = node_config(db_url, tmp_path, receiver.url, mailbox.port)
    try:
        for member, order in (("m1", "o1"), ("m2", "o2")):
            ledger.enroll(Enroll(f"enroll-{member}", member))
            ledger.earn(Earn(f"earn-{order}", member, order, 50_000, "POS", None))
        run_in_transaction(
            ledger.engine,
            lambda conn: outbox.set_member_contact(
                conn, "m2", start, email="m2@example.com", preferred_channel="email"
            ),
        )
        acts = ExpiryActivities(
            ledger,
            config.notifications,
            lambda clk: Dispatcher.from_config(ledger.engine, config, clock=clk),
        )
        queue = f"{node_task_queue('tea')}-{uuid.uuid4().hex[:6]}"
        outcomes = []
        async with Worker(
            time_skipping.client, task_queue=queue, workflows=WORKFLOWS, activities=acts.all()
        ):
            for day in range(1, 183):
                await time_skipping.sleep(timedelta(days=1))
                handle = await time_skipping.client.start_workflow(
                    ExpiryRunWorkflow.run,
                    ExpiryInput("tea"),
                    id=f"coalition-expiry-tea-day-{day}-{uuid.uuid4().hex[:6]}",
                    task_queue=queue,
                )
                # Time moves only by the sleeps above: while activities run in real time, a
                # skip to their heartbeat timeout would fail them for nothing.
                with time_skipping.auto_time_skipping_disabled():
                    outcomes.append((day, await handle.result()))
                if day in (173, 180) and db_url.startswith("sqlite"):
                    name = "expiry-reminder-day" if day == 173 else "expiry-day"
                    await keep(handle, name)
    finally:
        ledger.engine.dispose()

    reminded = {day: o.reminders_enqueued for day, o in outcomes if o.reminders_enqueued}
    assert sum(reminded.values()) == 4  # two members, two offsets
    assert set(reminded) == {173, 177}  # a week, then three days before day 180
    expired = {day: o.expired.lots for day, o in outcomes if o.expired and o.expired.lots}
    assert expired == {180: 2}
    breakage = [o.breakage.points for _, o in outcomes if o.breakage and o.breakage.points]
    assert breakage == [1000]
    assert all(not o.delivery_error for _, o in outcomes)

    # Exactly what the outbox promised, once each: m1 by webhook, m2 by email.
    bodies = [json.loads(r.body) for r in receiver.requests]
    assert [(b["member_id"], b["kind"], b["data"]["reminder_days"]) for b in bodies] == [
        ("m1", "expiry_reminder", 7),
        ("m1", "expiry_reminder", 3),
    ]
    assert len({r.headers["Coalition-Notification-Id"] for r in receiver.requests}) == 2
    mails = [
        email.message_from_bytes(raw, policy=email.policy.default) for _, _, raw in mailbox.messages
    ]
    assert [m["To"] for m in mails] == ["m2@example.com", "m2@example.com"]
    texts = [m.get_body() for m in mails]
    assert all(t is not None and "500" in t.get_content() for t in texts)  # the points at stake

    with ledger.engine.connect() as conn:
        per_lot = expired_per_lot(conn)
    assert len(per_lot) == 2 and all(count == 1 for _, count in per_lot)
    ledger.engine.dispose()
    assert ledger.balance("m1", 30).available_points == 0
    assert ledger.audit() == []


def expired_per_lot(conn: sa.Connection) -> list[tuple[str, int]]:
    """(lot, how many EXPIRE journal lines it has): once each, in a correct run."""
    return [
        (lot, count)
        for lot, count in conn.execute(
            sa.select(journal_lines.c.lot_id, sa.func.count())
            .join(journal_transactions, journal_transactions.c.id == journal_lines.c.txn_id)
            .where(journal_transactions.c.kind == "EXPIRE", journal_lines.c.lot_id.is_not(None))
            .group_by(journal_lines.c.lot_id)
        )
    ]


async def keep(handle, name: str) -> None:  # type: ignore[no-untyped-def]
    import os

    from temporalio.worker import Replayer

    history = await handle.fetch_history()
    await Replayer(workflows=WORKFLOWS).replay_workflow(history)
    if os.environ.get("COALITION_RECORD_HISTORIES") == "1":
        (HISTORIES / f"{name}.json").write_text(history.to_json())


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_delivery_failure_never_holds_up_expiry(time_skipping, db_url, tmp_path):
    start = await time_skipping.get_current_time()
    clock = FakeClock(start)
    ledger = open_test_ledger(db_url, clock, ttl_days=1)
    config = node_config(db_url, tmp_path, "http://127.0.0.1:9/nowhere", 9)
    ledger.enroll(Enroll("enroll-m1", "m1"))
    ledger.earn(Earn("earn-o1", "m1", "o1", 50_000, "POS", None))

    def broken(_clock):  # type: ignore[no-untyped-def]
        raise ConnectionError("the dispatcher cannot start")

    acts = ExpiryActivities(ledger, config.notifications, broken)
    queue = f"expiry-{uuid.uuid4().hex[:6]}"
    try:
        async with Worker(
            time_skipping.client, task_queue=queue, workflows=WORKFLOWS, activities=acts.all()
        ):
            await time_skipping.sleep(timedelta(days=2))
            with time_skipping.auto_time_skipping_disabled():
                outcome = await time_skipping.client.execute_workflow(
                    ExpiryRunWorkflow.run,
                    ExpiryInput("tea"),
                    id=f"expiry-{uuid.uuid4().hex[:6]}",
                    task_queue=queue,
                )
    finally:
        ledger.engine.dispose()
    assert outcome.expired is not None and outcome.expired.lots == 1
    assert "cannot start" in outcome.delivery_error
