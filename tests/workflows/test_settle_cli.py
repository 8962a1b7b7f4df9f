"""`coalition settle …` against a real Temporal dev server and a real coalition: the operator
starts a period's settlement, is refused what the workflow does not allow (with the reason),
approves, confirms, and reads the status."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import pytest_asyncio

from coalition_cli.main import main
from coalition_kernel.db import utc_now
from settlement.periods import DAILY
from tests.conftest import FakeClock
from tests.exchange.conftest import Coalition, start_coalition
from tests.workflows.test_settlement_run import trade
from workflows.settlement.activities import SettlementActivities
from workflows.settlement.workflows import SettlementWorkflow, settlement_workflow_id
from workflows.worker import settlement_worker


@pytest_asyncio.fixture
async def coalition(new_database) -> AsyncIterator[Coalition]:  # type: ignore[no-untyped-def]
    clock = FakeClock(utc_now() - timedelta(days=2))
    async for running in start_coalition(new_database, clock):
        yield running


async def cli(*args: str) -> int:
    return await asyncio.to_thread(main, ["settle", *args])


@pytest.mark.parametrize("new_database", ["sqlite"], indirect=True)
async def test_the_operator_drives_a_settlement_from_the_command_line(
    dev_server, coalition, tmp_path, capsys
):
    period = await trade(coalition)
    # Each test gets its own period: workflow ids are per period on the shared dev server.
    coalition.clock.now = utc_now()
    target = dev_server.client.service_client.config.target_host
    queue = f"cli-{uuid.uuid4()}"
    where = ["--temporal", target]
    exchange = coalition.exchange
    acts = SettlementActivities(exchange.engine, exchange.redemptions.statement, tmp_path)
    handle = dev_server.client.get_workflow_handle_for(
        SettlementWorkflow.run, settlement_workflow_id(period)
    )
    async with settlement_worker(dev_server.client, acts, queue):
        today = DAILY.period_of(utc_now())
        assert await cli("run-now", "--period", today, "--task-queue", queue, *where) == 2
        assert "is not over" in capsys.readouterr().err
        assert await cli("run-now", "--period", "2026-13-01", *where) == 2
        assert "not a daily settlement period" in capsys.readouterr().err

        assert await cli("run-now", "--period", period, "--task-queue", queue, *where) == 0
        assert f"settlement of {period} started" in capsys.readouterr().out
        assert await cli("run-now", "--period", period, "--task-queue", queue, *where) == 1
        assert "started already" in capsys.readouterr().err

        for _ in range(400):
            state = (await handle.query(SettlementWorkflow.state)).state
            if state == "awaiting_approval":
                break
            await asyncio.sleep(0.05)
        assert await cli("confirm", "--period", period, "--by", "ops-lin", *where) == 1
        assert "only a paid batch is confirmed" in capsys.readouterr().err
        assert await cli("status", "--period", period, *where) == 0
        shown = capsys.readouterr().out
        assert f"period {period}: awaiting_approval" in shown and "transfer 1:" in shown

        assert await cli("approve", "--period", period, "--by", "ops-lin", *where) == 0
        shown = capsys.readouterr().out
        assert "approve: recorded by ops-lin" in shown
        # The fresh state (the worker has paid it), not the one the update found, and amounts.
        assert f"period {period}: paid" in shown and "decided by ops-lin" in shown, shown
        assert "transfer 1:" in shown and " CNY in all" in shown, shown
        assert await cli("approve", "--period", period, "--by", "ops-chen", *where) == 1
        assert "refused" in capsys.readouterr().err
        for _ in range(400):
            if (await handle.query(SettlementWorkflow.state)).state == "paid":
                break
            await asyncio.sleep(0.05)
        assert (
            await cli("confirm", "--period", period, "--by", "ops-lin", "--note", "ok", *where) == 0
        )
        result = await asyncio.wait_for(handle.result(), 30)
        assert result.state == "confirmed" and result.decided_by == "ops-lin"
        assert await cli("status", *where) == 0
        assert settlement_workflow_id(period) in capsys.readouterr().out
