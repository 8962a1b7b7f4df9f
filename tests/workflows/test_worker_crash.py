"""Crash safety: the worker process is killed (SIGKILL) in the middle of a settlement run, right
after an activity did its work and before Temporal heard of it. A new worker finishes the run;
the batch settles exactly once and every activity's effect happened once."""

from __future__ import annotations

import asyncio
import pathlib
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import pytest_asyncio
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization

from coalition_kernel.db import utc_now
from exchange.runtime import ExchangeConfig
from exchange.schema import settlement_positions, settlement_transfers
from settlement import store
from tests.conftest import FakeClock
from tests.exchange.conftest import Coalition, start_coalition
from tests.workflows.crash_harness import CrashingWorker, attempts
from tests.workflows.test_settlement_run import trade, until_state
from workflows.settlement.shared import Decision, SettlementInput
from workflows.settlement.workflows import SettlementWorkflow


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


@pytest.mark.parametrize(
    "kill_after", ["close_period", "reconcile_batch", "net_batch", "publish_instructions"]
)
async def test_killing_the_worker_mid_run_settles_the_batch_exactly_once(
    dev_server, coalition, tmp_path, kill_after
):
    period = await trade(coalition)
    coalition.clock.now = utc_now()
    config = write_config(coalition, tmp_path)
    out = tmp_path / "out"  # beside the config: where the worker writes the files
    target = dev_server.client.service_client.config.target_host
    async with CrashingWorker("settlement", config, target, kill_after, tmp_path) as worker:
        handle = await dev_server.client.start_workflow(
            SettlementWorkflow.run,
            SettlementInput(period, heartbeat_seconds=2),
            id=f"settlement-{period}-{uuid.uuid4().hex[:6]}",
            task_queue=worker.queue,
        )

        async def operator() -> None:
            await until_state(handle, "awaiting_approval", "paying", "paid")
            if (await handle.query(SettlementWorkflow.state)).state == "awaiting_approval":
                await handle.execute_update(SettlementWorkflow.approve, Decision("ops-lin"))

        approving = asyncio.create_task(operator())
        await worker.kill_at_pause()
        await asyncio.wait_for(approving, 60)
        await until_state(handle, "paid")
        await handle.execute_update(SettlementWorkflow.confirm, Decision("ops-lin"))
        final = await asyncio.wait_for(handle.result(), 60)
        history = await handle.fetch_history()
    assert final.state == "confirmed"
    # The killed attempt was retried: the activity started twice, completed once.
    retried = attempts(history, lambda e: e.activity_type.name == kill_after)
    assert retried and max(retried) >= 2
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
