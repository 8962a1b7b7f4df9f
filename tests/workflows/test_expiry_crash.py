"""Crash safety of expiry: the node's worker is killed (SIGKILL) right after the expiry of
hundreds of lots, or right after the reminders went out, before Temporal heard of it. A new
worker finishes the run: every lot expired once, every reminder was delivered once."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import signal
import subprocess
import sys
import uuid
from dataclasses import replace
from datetime import timedelta

import pytest
import sqlalchemy as sa

from coalition_kernel.db import utc_now
from merchant_node.config import NodeConfig
from merchant_node.ledger.commands import Earn, Enroll
from merchant_node.ledger.schema import journal_lines, journal_transactions, lots
from tests.conftest import FakeClock, open_test_ledger
from tests.merchant_node.test_cli import coalition
from tests.merchant_node.test_notifications import WebhookReceiver, receiver  # noqa: F401
from workflows.expiry.shared import ExpiryInput
from workflows.expiry.workflows import ExpiryRunWorkflow

ROOT = pathlib.Path(__file__).resolve().parents[2]
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


def start_worker(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.workflows.expiry_crash_worker", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@pytest.mark.parametrize("kill_after", ["expire_due", "deliver_notifications"])
async def test_killing_the_worker_mid_expiry_expires_each_lot_once_and_reminds_once(
    dev_server,
    new_database,
    tmp_path,
    receiver: WebhookReceiver,  # noqa: F811 - the fixture imported above
    kill_after,
):
    url = new_database("node")
    done = coalition(
        "node", "init", "--dir", str(tmp_path / "tea"), "--merchant-id", "tea", "--db", url
    )
    assert done.returncode == 0, done.stderr
    path = tmp_path / "tea" / "node.toml"
    config = NodeConfig.load(path)
    config = replace(
        config,
        notifications=replace(config.notifications, webhook_url=receiver.url, quiet_hours=""),
    )
    config.save(path)
    seed(url)
    queue = f"expiry-crash-{uuid.uuid4().hex[:8]}"
    target = dev_server.client.service_client.config.target_host
    marker = tmp_path / "paused"
    first = start_worker([str(path), target, queue, "50", kill_after, str(marker)])
    second = None
    try:
        handle = await dev_server.client.start_workflow(
            ExpiryRunWorkflow.run,
            ExpiryInput("tea", heartbeat_seconds=2),
            id=f"coalition-expiry-tea-{uuid.uuid4().hex[:6]}",
            task_queue=queue,
        )
        for _ in range(1200):
            if marker.exists():
                break
            assert first.poll() is None, "the worker died before its pause"
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the worker never reached its pause")
        first.send_signal(signal.SIGKILL)
        first.wait()
        second = start_worker([str(path), target, queue, "50"])
        outcome = await asyncio.wait_for(handle.result(), 90)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            per_lot = conn.execute(
                sa.select(journal_lines.c.lot_id, sa.func.count())
                .join(journal_transactions, journal_transactions.c.id == journal_lines.c.txn_id)
                .where(journal_transactions.c.kind == "EXPIRE", journal_lines.c.lot_id.is_not(None))
                .group_by(journal_lines.c.lot_id)
            ).all()
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
