"""Settlement batches in the exchange's database: the batch row, its history of transitions,
its breakage shares, positions, transfers and reconciliation mismatches.

The state machine is settlement/batches.py; this module stores its transitions. Every write is
idempotent (a retried activity finds its work done and changes nothing) and every transition
appends one `settlement_events` row saying who made it and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Row, func, insert, select, update

from exchange.schema import (
    authorizations,
    settlement_batches,
    settlement_breakage,
    settlement_events,
    settlement_mismatches,
    settlement_positions,
    settlement_transfers,
)
from settlement.batches import BatchStatus, SettlementBatch
from settlement.netting import Transfer
from settlement.obligations import BreakageShare
from settlement.periods import DAILY, Calendar
from settlement.reconcile import Mismatch
from settlement.report import PartyLine, SettlementReport

WORKFLOW = "workflow"  # the actor of transitions the workflow makes by itself


def batch_id_of(period: str) -> str:
    return f"sb-{period}"


def load_batch(conn: Connection, period: str) -> SettlementBatch | None:
    row = conn.execute(
        select(settlement_batches).where(settlement_batches.c.period == period)
    ).first()
    return None if row is None else _batch(row)


def load_batch_by_id(conn: Connection, batch_id: str) -> SettlementBatch | None:
    row = conn.execute(
        select(settlement_batches).where(settlement_batches.c.batch_id == batch_id)
    ).first()
    return None if row is None else _batch(row)


def _batch(row: Row) -> SettlementBatch:
    return SettlementBatch(
        batch_id=row.batch_id,
        period=row.period,
        status=BatchStatus(row.status),
        opened_at=row.opened_at,
        updated_at=row.updated_at,
        record_count=row.record_count,
        commitment_root=row.commitment_root,
        approved_by=row.approved_by,
        dispute_reason=row.dispute_reason,
    )


def insert_batch(
    conn: Connection, batch: SettlementBatch, calendar: Calendar = DAILY, actor: str = WORKFLOW
) -> None:
    first, last = calendar.day_stamps(batch.period)
    conn.execute(
        insert(settlement_batches).values(
            batch_id=batch.batch_id,
            period=batch.period,
            first_day=first,
            last_day=last,
            status=batch.status.value,
            opened_at=batch.opened_at,
            updated_at=batch.updated_at,
        )
    )
    append_event(conn, batch.batch_id, batch.status, actor, "opened", batch.updated_at)


def save_transition(
    conn: Connection,
    before: SettlementBatch,
    after: SettlementBatch,
    actor: str,
    note: str,
    **columns: object,
) -> None:
    """Stores `after` (a transition of `before`) with extra columns; nothing if unchanged."""
    if after == before:
        return
    conn.execute(
        update(settlement_batches)
        .where(settlement_batches.c.batch_id == after.batch_id)
        .values(
            status=after.status.value,
            updated_at=after.updated_at,
            record_count=after.record_count,
            commitment_root=after.commitment_root,
            approved_by=after.approved_by,
            dispute_reason=after.dispute_reason,
            **columns,
        )
    )
    append_event(conn, after.batch_id, after.status, actor, note, after.updated_at)


def append_event(
    conn: Connection, batch_id: str, status: BatchStatus, actor: str, note: str, at: datetime
) -> None:
    last = conn.execute(
        select(func.max(settlement_events.c.sequence)).where(
            settlement_events.c.batch_id == batch_id
        )
    ).scalar()
    conn.execute(
        insert(settlement_events).values(
            batch_id=batch_id,
            sequence=(last or 0) + 1,
            status=status.value,
            actor=actor[:100],
            note=note[:500],
            at=at,
        )
    )


def has_event(conn: Connection, batch_id: str, note: str) -> bool:
    return (
        conn.execute(
            select(settlement_events.c.sequence).where(
                settlement_events.c.batch_id == batch_id, settlement_events.c.note == note[:500]
            )
        ).first()
        is not None
    )


def captures_in_flight(conn: Connection, period: str, calendar: Calendar = DAILY) -> int:
    """Captures of the period started but not finished: closing must wait for them, or the
    batch would miss records that belong to it."""
    first, last = calendar.day_stamps(period)
    return conn.execute(
        select(func.count()).where(
            authorizations.c.status == "capturing",
            authorizations.c.settlement_period.between(first, last),
        )
    ).scalar_one()


def store_netting(conn: Connection, batch_id: str, report: SettlementReport) -> bool:
    """The batch's positions and transfers, once: False if they were stored already."""
    stored = conn.execute(
        select(func.count()).where(settlement_positions.c.batch_id == batch_id)
    ).scalar_one()
    if stored:
        return False
    if report.lines:
        conn.execute(
            insert(settlement_positions),
            [
                dict(
                    batch_id=batch_id,
                    party=line.party,
                    payable_fen=line.payable_fen,
                    receivable_fen=line.receivable_fen,
                    fee_fen=line.fee_fen,
                    net_fen=line.net_fen,
                    breakage_fen=line.breakage_fen,
                )
                for line in report.lines
            ],
        )
    if report.transfers:
        conn.execute(
            insert(settlement_transfers),
            [
                dict(
                    batch_id=batch_id,
                    sequence=i,
                    payer=t.payer,
                    payee=t.payee,
                    amount_fen=t.amount_fen,
                )
                for i, t in enumerate(report.transfers, 1)
            ],
        )
    return True


def positions(conn: Connection, batch_id: str) -> tuple[PartyLine, ...]:
    c = settlement_positions.c
    rows = conn.execute(
        select(c.party, c.payable_fen, c.receivable_fen, c.fee_fen, c.net_fen, c.breakage_fen)
        .where(c.batch_id == batch_id)
        .order_by(c.party)
    )
    return tuple(PartyLine(*row) for row in rows)


def store_breakage(conn: Connection, batch_id: str, shares: Sequence[BreakageShare]) -> bool:
    """The batch's breakage shares, once: False if they were stored already. Written with the
    close, so a batch is closed with the breakage it will be netted with, or not at all."""
    stored = conn.execute(
        select(func.count()).where(settlement_breakage.c.batch_id == batch_id)
    ).scalar_one()
    if stored or not shares:
        return False
    conn.execute(
        insert(settlement_breakage),
        [
            dict(
                batch_id=batch_id,
                issuer_id=s.issuer_id,
                points=s.points,
                value_fen=s.value_fen,
                operator_bps=s.operator_bps,
                operator_fen=s.operator_fen,
                issuer_envelope=s.issuer_envelope,
            )
            for s in shares
        ],
    )
    return True


def breakage(conn: Connection, batch_id: str) -> list[BreakageShare]:
    """The batch's breakage shares as fixed at close, by issuer."""
    c = settlement_breakage.c
    rows = conn.execute(
        select(
            c.issuer_id, c.points, c.value_fen, c.operator_bps, c.operator_fen, c.issuer_envelope
        )
        .where(c.batch_id == batch_id)
        .order_by(c.issuer_id)
    )
    return [BreakageShare(*row) for row in rows]


def transfers(conn: Connection, batch_id: str) -> tuple[Transfer, ...]:
    c = settlement_transfers.c
    rows = conn.execute(
        select(c.payer, c.payee, c.amount_fen).where(c.batch_id == batch_id).order_by(c.sequence)
    )
    return tuple(Transfer(*row) for row in rows)


def stored_report(conn: Connection, batch: SettlementBatch) -> SettlementReport:
    """The report as stored when the batch was netted (what the operator approved)."""
    return SettlementReport(
        batch.period,
        batch.record_count or 0,
        (batch.commitment_root or b"").hex(),
        positions(conn, batch.batch_id),
        transfers(conn, batch.batch_id),
    )


def store_mismatches(conn: Connection, batch_id: str, found: Sequence[Mismatch]) -> int:
    """Records a reconciliation round's mismatches; returns the round's number."""
    last = conn.execute(
        select(func.max(settlement_mismatches.c.round)).where(
            settlement_mismatches.c.batch_id == batch_id
        )
    ).scalar()
    round_ = (last or 0) + 1
    if found:
        conn.execute(
            insert(settlement_mismatches),
            [
                dict(
                    batch_id=batch_id,
                    round=round_,
                    sequence=i,
                    merchant_id=m.merchant_id,
                    side=m.side,
                    kind=m.kind,
                    authorization_id=m.authorization_id,
                    field=m.field,
                    exchange_value=None if m.exchange_value is None else str(m.exchange_value),
                    node_value=None if m.node_value is None else str(m.node_value),
                )
                for i, m in enumerate(found, 1)
            ],
        )
    return round_


@dataclass(frozen=True)
class BatchEvent:
    sequence: int
    status: str
    actor: str
    note: str
    at: datetime


def events(conn: Connection, batch_id: str) -> list[BatchEvent]:
    c = settlement_events.c
    rows = conn.execute(
        select(c.sequence, c.status, c.actor, c.note, c.at)
        .where(c.batch_id == batch_id)
        .order_by(c.sequence)
    )
    return [BatchEvent(*row) for row in rows]


def describe(m: Mismatch) -> str:
    """One line an operator can act on."""
    where = f"{m.merchant_id}" + (f" as {m.side}" if m.side else "")
    what = {
        "missing_at_node": "cleared by the exchange but not booked by the node",
        "missing_at_exchange": "booked by the node but never cleared by the exchange",
        "altered": f"{m.field}: exchange {m.exchange_value}, node {m.node_value}",
        "repeated_at_node": "booked twice by the node",
        "no_statement": "sent no statement"
        + (f" ({m.node_value})" if m.node_value not in (None, "") else ""),
    }[m.kind]
    return f"{where}: {m.authorization_id + ' ' if m.authorization_id else ''}{what}"
