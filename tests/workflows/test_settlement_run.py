"""A whole settlement run with the real activities: a real exchange and three real nodes on
loopback (SQLite and PostgreSQL), their signed statements over gRPC, the workflow on the
time-skipping server. The batch ends confirmed, its figures add up, every step is recorded."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator

import pytest_asyncio
import sqlalchemy as sa
from temporalio.worker import Worker

from exchange.schema import settlement_batches, settlement_positions
from merchant_node.ledger.schema import holds
from settlement import store
from settlement.periods import DAILY
from tests.exchange.conftest import Coalition, start_coalition
from tests.workflows.conftest import WORKFLOWS
from workflows.settlement.activities import SettlementActivities
from workflows.settlement.shared import Decision, SettlementInput
from workflows.settlement.workflows import SettlementWorkflow, settlement_workflow_id


@pytest_asyncio.fixture
async def coalition(new_database, clock) -> AsyncIterator[Coalition]:  # type: ignore[no-untyped-def]
    async for running in start_coalition(new_database, clock):
        yield running


async def trade(coalition: Coalition) -> str:
    """Points earned at each shop and spent at the others; one authorization voided. Returns
    the period the captures were cleared in."""
    clock = coalition.clock
    shops = ("tea", "noodles", "salon")
    for i, shop in enumerate(shops):
        await coalition[shop].client.enroll_member(f"m{i}")
        await coalition[shop].client.earn(f"m{i}", f"seed-{i}", 500_000)
    for round_ in range(3):
        for i, issuer_id in enumerate(shops):
            acquirer = coalition[shops[(i + 1 + round_ % 2) % 3]]
            clock.advance(seconds=31)  # a fresh one-time code
            code = coalition[issuer_id].wallet_code(
                f"m{i}", clock, acquirer.merchant_id, 100 * (round_ + i + 1)
            )
            auth = await acquirer.client.authorize_cross(
                issuer_id,
                f"m{i}",
                f"o-{round_}-{i}",
                points=100 * (round_ + i + 1),
                consent_code=code,
            )
            if (round_, i) == (1, 1):
                await acquirer.client.void_cross(auth.authorization_id)
            else:
                await acquirer.client.capture_cross(auth.authorization_id)
    return DAILY.period_of(clock.now)


def activities(coalition: Coalition, tmp_path) -> SettlementActivities:  # type: ignore[no-untyped-def]
    exchange = coalition.exchange
    return SettlementActivities(
        exchange.engine, exchange.redemptions.statement, tmp_path, clock=coalition.clock
    )


async def until_state(handle, *states: str) -> str:  # type: ignore[no-untyped-def]
    for _ in range(600):
        state = (await handle.query(SettlementWorkflow.state)).state
        if state in states:
            return state
        await asyncio.sleep(0.05)
    raise AssertionError(f"never reached {states}; stuck in {state}")


async def start(env, acts: SettlementActivities, period: str, queue: str):  # type: ignore[no-untyped-def]
    return await env.client.start_workflow(
        SettlementWorkflow.run,
        SettlementInput(period),
        id=f"{settlement_workflow_id(period)}-{uuid.uuid4().hex[:6]}",
        task_queue=queue,
    )


async def test_a_period_settles_with_the_nodes_signed_word_and_the_operators_approval(
    time_skipping, coalition, tmp_path
):
    period = await trade(coalition)
    coalition.clock.advance(days=1)  # the period is over
    acts = activities(coalition, tmp_path)
    queue = f"settle-{uuid.uuid4()}"
    async with Worker(
        time_skipping.client, task_queue=queue, workflows=WORKFLOWS, activities=acts.all()
    ):
        handle = await start(time_skipping, acts, period, queue)
        await until_state(handle, "awaiting_approval")
        status = await handle.query(SettlementWorkflow.state)
        assert status.mismatches == []
        assert 0 < len(status.transfers) <= 3  # at most N−1 for 3 shops and the operator
        with coalition.exchange.engine.connect() as conn:
            batch = store.load_batch(conn, period)
            assert batch is not None and batch.status == "reconciled"
            assert batch.record_count == 8
            nets = conn.execute(sa.select(settlement_positions.c.net_fen)).scalars().all()
            assert sum(nets) == 0
        await handle.execute_update(SettlementWorkflow.approve, Decision("ops-lin"))
        await until_state(handle, "paid")
        await handle.execute_update(SettlementWorkflow.confirm, Decision("ops-lin", "bank ok"))
        final = await handle.result()
    assert final.state == "confirmed"
    report = json.loads((tmp_path / period / "report.json").read_text())
    assert report["record_count"] == 8
    assert sum(p["net_fen"] for p in report["positions"]) == 0
    assert (tmp_path / period / "transfers.csv").read_text().count("\n") == len(final.transfers) + 1
    with coalition.exchange.engine.connect() as conn:
        row = conn.execute(sa.select(settlement_batches)).one()
        history = [(e.status, e.actor) for e in store.events(conn, row.batch_id)]
    assert (row.status, row.approved_by) == ("confirmed", "ops-lin")
    assert [s for s, _ in history] == [
        "open",
        "closed",
        "reconciled",
        "reconciled",  # netted
        "approved",
        "paid",
        "confirmed",
    ]
    assert ("approved", "ops-lin") in history


async def test_an_altered_booking_disputes_the_batch_until_the_node_corrects_it(
    time_skipping, coalition, tmp_path
):
    period = await trade(coalition)
    coalition.clock.advance(days=1)
    tea = coalition["tea"]
    with tea.ledger.engine.begin() as conn:
        hold_ref, points = conn.execute(
            sa.select(holds.c.hold_ref, holds.c.points).where(holds.c.status == "posted").limit(1)
        ).one()
        conn.execute(sa.update(holds).where(holds.c.hold_ref == hold_ref).values(points=points + 1))
    acts = activities(coalition, tmp_path)
    queue = f"settle-{uuid.uuid4()}"
    async with Worker(
        time_skipping.client, task_queue=queue, workflows=WORKFLOWS, activities=acts.all()
    ):
        handle = await start(time_skipping, acts, period, queue)
        await until_state(handle, "disputed")
        status = await handle.query(SettlementWorkflow.state)
        assert status.mismatches == [
            f"tea as issuer: {hold_ref} points: exchange {points}, node {points + 1}"
        ]
        with coalition.exchange.engine.connect() as conn:
            assert store.load_batch(conn, period).status == "disputed"  # type: ignore[union-attr]
        with tea.ledger.engine.begin() as conn:  # the node corrects its books
            conn.execute(sa.update(holds).where(holds.c.hold_ref == hold_ref).values(points=points))
        await handle.execute_update(
            SettlementWorkflow.resolve_dispute, Decision("ops-lin", "tea corrected its hold")
        )
        await until_state(handle, "awaiting_approval")
        await handle.execute_update(
            SettlementWorkflow.reject, Decision("ops-chen", "hold the money until Monday")
        )
        final = await handle.result()
    assert final.state == "rejected"
    with coalition.exchange.engine.connect() as conn:
        batch = store.load_batch(conn, period)
        notes = [e.note for e in store.events(conn, batch.batch_id)]  # type: ignore[union-attr]
    assert batch is not None and batch.status == "disputed"
    assert batch.dispute_reason == "hold the money until Monday"
    assert any(n.startswith("reconciliation round 1: 1 mismatch") for n in notes)
    assert any(n.startswith("reconciliation round 2: every statement agrees") for n in notes)
    assert not (tmp_path / period).exists()  # nothing was paid
