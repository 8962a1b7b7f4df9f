"""Crash safety: the worker process is killed (SIGKILL) in the middle of a settlement run, right
after an activity did its work and before Temporal heard of it. A new worker finishes the run;
the batch settles exactly once and every activity's effect happened once."""

from __future__ import annotations

import asyncio
import os
import pathlib
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import pytest_asyncio
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from temporalio.api.enums.v1 import EventType

from coalition_kernel.db import utc_now
from exchange.runtime import ExchangeConfig
from exchange.schema import settlement_positions, settlement_transfers
from settlement import store
from tests.conftest import FakeClock
from tests.exchange.conftest import Coalition, start_coalition
from tests.workflows.test_settlement_run import trade, until_state
from workflows.settlement.shared import Decision, SettlementInput
from workflows.settlement.workflows import SettlementWorkflow

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest_asyncio.fixture
async def coalition(new_database) -> AsyncIterator[Coalition]:  # type: ignore[no-untyped-def]
    # Trade two days ago (a closed period), then live at the worker's real time.
    clock = FakeClock(utc_now() - timedelta(days=2))
    async for running in start_coalition(new_database, clock):
        yield running


def write_config(coalition: Coalition, folder: pathlib.Path) -> pathlib.Path:
    key = coalition.exchange.signer.private_key
    (folder / "exchange.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (folder / "operator.pub.pem").write_bytes(
        coalition.operator_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    config = ExchangeConfig(
        database_url=coalition.exchange.engine.url.render_as_string(hide_password=False),
        private_key_file=str(folder / "exchange.pem"),
        operator_public_key_file=str(folder / "operator.pub.pem"),
    )
    config.save(folder / "exchange.toml")
    return folder / "exchange.toml"


def start_worker(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.workflows.crash_worker", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


async def wait_for_file(path: pathlib.Path, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(600):
        if path.exists():
            return
        assert proc.poll() is None, "the worker died before reaching its pause"
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


@pytest.mark.parametrize(
    "kill_after", ["close_period", "reconcile_batch", "net_batch", "publish_instructions"]
)
async def test_killing_the_worker_mid_run_settles_the_batch_exactly_once(
    dev_server, coalition, tmp_path, kill_after
):
    period = await trade(coalition)
    coalition.clock.now = utc_now()
    config = write_config(coalition, tmp_path)
    out = tmp_path / "out"
    queue = f"crash-{uuid.uuid4()}"
    target = dev_server.client.service_client.config.target_host
    marker = tmp_path / "paused"
    first = start_worker([str(config), target, queue, str(out), kill_after, str(marker)])
    second = None
    try:
        handle = await dev_server.client.start_workflow(
            SettlementWorkflow.run,
            SettlementInput(period, heartbeat_seconds=2),
            id=f"settlement-{period}-{uuid.uuid4().hex[:6]}",
            task_queue=queue,
        )

        async def operator() -> None:
            await until_state(handle, "awaiting_approval", "paying", "paid")
            if (await handle.query(SettlementWorkflow.state)).state == "awaiting_approval":
                await handle.execute_update(SettlementWorkflow.approve, Decision("ops-lin"))

        approving = asyncio.create_task(operator())
        await wait_for_file(marker, first)
        first.send_signal(signal.SIGKILL)
        first.wait()
        second = start_worker([str(config), target, queue, str(out)])
        await asyncio.wait_for(approving, 60)
        await until_state(handle, "paid")
        await handle.execute_update(SettlementWorkflow.confirm, Decision("ops-lin"))
        final = await asyncio.wait_for(handle.result(), 60)
        history = await handle.fetch_history()
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(10)
    assert final.state == "confirmed"
    # The killed attempt was retried: the activity started twice, completed once.
    scheduled = {
        e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    attempts = [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        and scheduled[e.activity_task_started_event_attributes.scheduled_event_id] == kill_after
    ]
    assert attempts and max(attempts) >= 2
    with coalition.exchange.engine.connect() as conn:
        batch = store.load_batch(conn, period)
        assert batch is not None and batch.status == "confirmed"
        statuses = [e.status for e in store.events(conn, batch.batch_id)]
        notes = [e.note for e in store.events(conn, batch.batch_id)]
        positions = conn.execute(
            sa.select(sa.func.count(), sa.func.sum(settlement_positions.c.net_fen))
        ).one()
        transfers = conn.execute(sa.select(sa.func.count()).select_from(settlement_transfers))
        assert transfers.scalar_one() == len(final.transfers)
    for status in ("open", "closed", "approved", "paid", "confirmed"):
        assert statuses.count(status) == 1, statuses
    assert sum(n.startswith("netted") for n in notes) == 1
    assert sum(n.startswith("reconciliation round") for n in notes) == 1
    assert positions[0] == 4 and positions[1] == 0  # three shops and the operator, net zero
    assert sorted(p.name for p in (out / period).iterdir()) == [
        "positions.csv",
        "report.json",
        "transfers.csv",
    ]
