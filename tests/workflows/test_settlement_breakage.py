"""Breakage in a settlement run with the real activities: a real exchange and three real nodes on
loopback (SQLite and PostgreSQL), points expiring at each issuer during the period, three
policies (the issuer keeps it, the operator keeps it, a 30 % split), the workflow on the
time-skipping server. The issuers' shares are netted with the clearing records, shown in the
breakage column and kept with the nodes' signed receipts; a node that cannot say what expired
holds the close back when its breakage moves money."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import sqlalchemy as sa
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

from coalition.envelope.v1.envelope_pb2 import SignedEnvelope
from coalition.issuer.v1 import issuer_pb2 as ipb
from coalition_kernel.envelope import signed_bytes
from exchange.schema import settlement_breakage
from settlement import store
from settlement.netting import OPERATOR, Transfer, settles
from settlement.periods import DAILY
from settlement.report import net_of
from settlement.settle import settle_period
from tests.exchange.conftest import Coalition, start_coalition
from tests.exchange.test_breakage import earn_expiring
from tests.workflows.conftest import WORKFLOWS
from tests.workflows.test_settlement_run import start, trade, until_state
from workflows.settlement.activities import SettlementActivities
from workflows.settlement.shared import Decision
from workflows.settlement.workflows import SettlementWorkflow

POLICIES = {"tea": 0, "noodles": 10_000, "salon": 3000}  # issuer keeps, operator keeps, split
EXPIRED = {"tea": 400, "noodles": 250, "salon": 1001}  # points, 1 fen each at every node
SHARES = {"tea": 0, "noodles": 250, "salon": 300}  # 30 % of 1001 fen = 300.3, rounded down


@pytest_asyncio.fixture
async def coalition(new_database, clock) -> AsyncIterator[Coalition]:  # type: ignore[no-untyped-def]
    async for running in start_coalition(new_database, clock):
        yield running


async def expire_and_trade(c: Coalition) -> str:
    """Points that expire at each issuer on the period's day, and cross redemptions on it."""
    for merchant_id, bps in POLICIES.items():
        await c.operator.set_terms(merchant_id, breakage_operator_bps=bps)
        earn_expiring(c[merchant_id].ledger, "lapsed", f"lapse-{merchant_id}", EXPIRED[merchant_id])
    c.clock.advance(days=1, seconds=1)  # 2026-01-06 17:00:01 in Shanghai
    for merchant_id, points in EXPIRED.items():
        assert c[merchant_id].ledger.run_expiry().points_expired == points
    period = await trade(c)
    assert period == DAILY.period_of(c.clock.now) == "2026-01-06"
    # Expiries of the next day are the next batch's.
    earn_expiring(c["salon"].ledger, "later", "lapse-later", 77)
    return period


def activities(c: Coalition, tmp_path, breakage=None) -> SettlementActivities:  # type: ignore[no-untyped-def]
    exchange = c.exchange
    return SettlementActivities(
        exchange.engine,
        exchange.redemptions.statement,
        tmp_path,
        clock=c.clock,
        breakage=breakage or exchange.redemptions.breakage,
    )


async def test_breakage_shares_are_netted_shown_and_kept_with_the_nodes_signed_word(
    time_skipping, coalition, tmp_path
):
    c = coalition
    period = await expire_and_trade(c)
    c.clock.advance(days=1)  # the period is over
    c["salon"].ledger.run_expiry()  # 77 points expire on the next day
    acts = activities(c, tmp_path)
    queue = f"settle-{uuid.uuid4()}"
    async with Worker(
        time_skipping.client, task_queue=queue, workflows=WORKFLOWS, activities=acts.all()
    ):
        handle = await start(time_skipping, acts, period, queue)
        await until_state(handle, "awaiting_approval")
        status = await handle.query(SettlementWorkflow.state)
        assert status.mismatches == []
        with c.exchange.engine.connect() as conn:
            batch = store.load_batch(conn, period)
            assert batch is not None
            lines = {line.party: line for line in store.positions(conn, batch.batch_id)}
            rows = conn.execute(
                sa.select(settlement_breakage).order_by(settlement_breakage.c.issuer_id)
            ).all()
            notes = [e.note for e in store.events(conn, batch.batch_id)]
        await handle.execute_update(SettlementWorkflow.approve, Decision("ops-lin"))
        await until_state(handle, "paid")

    # The rows: each issuer's breakage, its policy at close, the operator's share, and the
    # node's signed receipt of the day, which verifies under that node's key.
    assert [(r.issuer_id, r.points, r.value_fen, r.operator_bps, r.operator_fen) for r in rows] == [
        (m, EXPIRED[m], EXPIRED[m], POLICIES[m], SHARES[m]) for m in sorted(POLICIES)
    ]
    for row in rows:
        envelope = SignedEnvelope.FromString(row.issuer_envelope)
        assert envelope.signer_id == row.issuer_id
        c[row.issuer_id].key.public_key().verify(
            envelope.signature, signed_bytes(envelope.payload_type, envelope.payload)
        )
        receipt = ipb.BreakageReceipt.FromString(envelope.payload)
        assert receipt.settlement_period == period
        assert sum(x.value_fen for x in receipt.lines) == row.value_fen
    assert any(n.startswith("closed: 8 records") and "breakage 550 fen of 1651" in n for n in notes)

    # The positions: the breakage column, the operator's receivable, the nets.
    without = {x.party: x for x in settle_period(c.exchange.engine, period).lines}
    assert {p: x.breakage_fen for p, x in lines.items()} == {**SHARES, OPERATOR: 0}
    for party, line in lines.items():
        assert net_of(line) == line.net_fen
        moved = sum(SHARES.values()) if party == OPERATOR else -SHARES[party]
        assert line.net_fen == without[party].net_fen + moved
        assert (line.payable_fen, line.fee_fen) == (
            without[party].payable_fen,
            without[party].fee_fen,
        )
    fees = sum(x.fee_fen for x in lines.values())
    assert lines[OPERATOR].receivable_fen == fees + 550
    positions = {p: x.net_fen for p, x in lines.items()}
    assert sum(positions.values()) == 0
    transfers = status.transfers
    assert 0 < len(transfers) <= len(lines) - 1
    assert settles(positions, [Transfer(t.payer, t.payee, t.amount_fen) for t in transfers])

    # What the bank and the merchants get shows it too.
    report = json.loads((tmp_path / period / "report.json").read_text())
    assert {p["party"]: p["breakage_fen"] for p in report["positions"]} == {**SHARES, OPERATOR: 0}
    assert sum(p["net_fen"] for p in report["positions"]) == 0
    csv_rows = csv.DictReader(io.StringIO((tmp_path / period / "positions.csv").read_text()))
    assert {r["party"]: int(r["breakage_fen"]) for r in csv_rows} == {**SHARES, OPERATOR: 0}

    # Each merchant checks its share offline, breakage included, against its own books.
    from coalition_kernel.envelope import Signer
    from merchant_node.acquirer import ExchangeLink
    from merchant_node.settlement_check import fetch_proof, verify_proof

    for merchant_id in POLICIES:
        node = c[merchant_id]
        link = ExchangeLink(
            c.exchange_target, Signer(merchant_id, node.key, c.clock), c.exchange.public_key
        )
        try:
            envelope = await fetch_proof(link, period)
        finally:
            await link.close()
        check = verify_proof(
            envelope, merchant_id, period, c.exchange.public_key, node.ledger.engine
        )
        assert check.problems == [], (merchant_id, check.problems)
        assert check.net_fen == lines[merchant_id].net_fen


async def test_a_node_silent_about_its_breakage_holds_the_close_back_only_if_money_moves(
    coalition, tmp_path
):
    c = coalition
    period = await expire_and_trade(c)
    c.clock.advance(days=1)
    salon = next(m for m in await c.operator.list() if m.merchant_id == "salon")
    tea = next(m for m in await c.operator.list() if m.merchant_id == "tea")
    asked: list[str] = []

    async def breakage(merchant_id: str, day: str):  # type: ignore[no-untyped-def]
        asked.append(merchant_id)
        return await c.exchange.redemptions.breakage(merchant_id, day)

    acts = activities(c, tmp_path, breakage)
    env = ActivityEnvironment()
    # Salon's node moves (an endpoint nothing listens on), and so does tea's.
    for merchant_id in ("salon", "tea"):
        await c.operator.set_terms(merchant_id, endpoint="127.0.0.1:9")
    with pytest.raises(ApplicationError) as err:
        await env.run(acts.close_period, period)
    assert err.value.type == "BreakageUnavailable" and not err.value.non_retryable
    assert "salon (" in err.value.message and "tea (" not in err.value.message
    with c.exchange.engine.connect() as conn:
        assert store.load_batch(conn, period) is None  # not closed: retried until salon answers
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(settlement_breakage)).scalar() == 0
        )

    # Salon is back; tea, which keeps its breakage, is still away: the batch closes without
    # tea's word, which moves no money, and nets salon's and noodles' shares.
    await c.operator.set_terms("salon", endpoint=salon.endpoint)
    summary = await env.run(acts.close_period, period)
    assert summary.records == 8
    with c.exchange.engine.connect() as conn:
        kept = conn.execute(
            sa.select(settlement_breakage.c.issuer_id, settlement_breakage.c.operator_fen)
        ).all()
    assert sorted(kept) == [("noodles", 250), ("salon", 300)]
    asked.clear()
    again = await env.run(acts.close_period, period)  # a retry after the close: no new asking
    assert (again, asked) == (summary, [])
    await c.operator.set_terms("tea", endpoint=tea.endpoint)
