"""Crash safety of expiry: the node's worker is killed (SIGKILL) right after the expiry of
hundreds of lots, or right after the reminders went out, before Temporal heard of it. A new
worker finishes the run: every lot expired once, every reminder was delivered once."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from coalition_kernel.db import utc_now
from merchant_node.ledger.commands import Earn, Enroll
from merchant_node.ledger.schema import lots
from tests.conftest import FakeClock, open_test_ledger
from tests.merchant_node.test_notifications import WebhookReceiver, receiver  # noqa: F401
from tests.workflows.crash_harness import init_node, run_through_a_crash
from tests.workflows.test_expiry_workflow import expired_per_lot
from workflows.expiry.shared import ExpiryInput
from workflows.expiry.workflows import ExpiryRunWorkflow

EXPIRING, WARNED = 240, 12  # members whose points are due now; members warned (5 days left)


def seed(url: str) -> None:
    now = utc_now()
    clock = FakeClock(now - timedelta(days=181))
    ledger = open_test_ledger(url, clock, ttl_days=180)
    try:
        for i in range(EXPIRING):
            ledger.enroll(Enroll(f"e-{i}", f"m{i}"))
            ledger.earn(Earn(f"earn-{i}", f"m{i}", f"o{i}", 10_000 + i * 100, "POS", None))
        clock.now = now - timedelta(days=175)
        for i in range(WARNED):
            ledger.earn(Earn(f"earn-w{i}", f"m{i}", f"w{i}", 5_000, "POS", None))
    finally:
        ledger.engine.dispose()


@pytest.mark.parametrize("kill_after", ["expire_due", "deliver_notifications"])
async def test_killing_the_worker_mid_expiry_expires_each_lot_once_and_reminds_once(
    dev_server,
    new_database,
    tmp_path,
    receiver: WebhookReceiver,  # noqa: F811 - the fixture imported above
    kill_after,
):
    url = new_database("node")
    path = init_node(tmp_path / "tea", url, receiver.url)
    seed(url)
    outcome = await run_through_a_crash(
        dev_server.client,
        "node",
        path,
        kill_after,
        tmp_path,
        ExpiryRunWorkflow.run,
        ExpiryInput("tea", heartbeat_seconds=2),
        f"coalition-expiry-tea-{uuid.uuid4().hex[:6]}",
    )

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            per_lot = expired_per_lot(conn)
            left_due = conn.execute(
                sa.select(sa.func.count()).where(
                    lots.c.remaining > 0, lots.c.expires_at <= utc_now()
                )
            ).scalar_one()
    finally:
        engine.dispose()
    assert len(per_lot) == EXPIRING and all(count == 1 for _, count in per_lot)
    assert left_due == 0
    assert outcome.expired is not None
    if kill_after == "expire_due":
        # The retried attempt found the lots expired by the killed one: nothing more to do;
        # the day's breakage report still counts them.
        assert outcome.expired.lots == 0
    assert outcome.breakage is not None
    assert outcome.breakage.points == sum(100 + i for i in range(EXPIRING))
    ids = [r.headers["Coalition-Notification-Id"] for r in receiver.requests]
    members = sorted(json.loads(r.body)["member_id"] for r in receiver.requests)
    assert len(ids) == len(set(ids)) == WARNED  # each reminder delivered once
    assert members == sorted(f"m{i}" for i in range(WARNED))
