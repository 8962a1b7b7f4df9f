"""The settlement workflow's activities, over the exchange's database and its signed link to
the nodes.

Each is idempotent, keyed by the batch: run twice (a retry, a worker killed after the work but
before reporting it), it finds its effect in the database and changes nothing more. Database
work runs in a thread, off the worker's event loop.

Breakage moves money, so unlike a statement it cannot be disputed later: a batch closes only
with the signed breakage of every active merchant whose policy gives the operator a share, and
close_period is retried until each of their nodes answers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pathlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import Connection, Engine, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from coalition_kernel.db import run_in_transaction, utc_now
from exchange import registry
from exchange.schema import settlement_batches
from settlement import batches, store
from settlement.batches import BatchStatus, SettlementBatch
from settlement.obligations import (
    BreakageShare,
    StatedBreakage,
    allocate_breakage,
    breakage_obligations,
    gross_obligations,
)
from settlement.periods import DAILY, Calendar
from settlement.reconcile import Mismatch, NodeStatement, Reconciliation, reconcile
from settlement.records import ClearingRecord, stream_records
from settlement.report import SettlementReport, to_csv, to_json
from settlement.settle import settle_period
from workflows.heartbeat import heartbeating
from workflows.settlement.shared import (
    BatchSummary,
    DecisionRecord,
    NettingOutcome,
    ReconcileOutcome,
    Reminder,
    Transfer,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# One merchant's statement for one day stamp of the period.
StatementSource = Callable[[str, str], Awaitable[NodeStatement]]
# One merchant's signed breakage for one day stamp of the period.
BreakageSource = Callable[[str, str], Awaitable[StatedBreakage]]


@dataclass
class SettlementActivities:
    engine: Engine
    statements: StatementSource
    out_dir: pathlib.Path
    calendar: Calendar = DAILY
    clock: Callable[[], datetime] = utc_now
    statement_timeout: float = 60.0
    # None: no breakage is allocated (a batch nets its clearing records only).
    breakage: BreakageSource | None = None

    def all(self) -> list[Callable[..., object]]:
        return [
            self.period_to_settle,
            self.close_period,
            self.reconcile_batch,
            self.net_batch,
            self.send_reminder,
            self.record_decision,
            self.publish_instructions,
        ]

    async def _db(self, work: Callable[[Connection], T]) -> T:
        return await asyncio.to_thread(run_in_transaction, self.engine, work)

    # -- the schedule ----------------------------------------------------------------------

    @activity.defn(name="period_to_settle")
    @heartbeating
    async def period_to_settle(self, at_iso: str) -> str:
        """The last period that ended before `at` (the scheduled run's time)."""
        at = datetime.fromisoformat(at_iso)
        return self.calendar.previous(self.calendar.period_of(at))

    # -- close -----------------------------------------------------------------------------

    @activity.defn(name="close_period")
    @heartbeating
    async def close_period(self, period: str) -> BatchSummary:
        self.calendar.days(period)  # a malformed period fails here, not in SQL
        closes_at = self.calendar.closes_at(period)
        if self.clock() < closes_at:
            # Retried by the workflow's policy: the batch closes once the period is over.
            raise ApplicationError(
                f"period {period} is not over: it closes at {closes_at.isoformat()}",
                type="PeriodNotOver",
            )
        batch = await self._db(lambda conn: store.load_batch(conn, period))
        if batch is not None and batch.status != BatchStatus.OPEN:
            return await self._db(lambda conn: _summary(conn, batch))
        in_flight = await self._db(
            lambda conn: store.captures_in_flight(conn, period, self.calendar)
        )
        if in_flight:
            raise ApplicationError(
                f"period {period} has {in_flight} capture(s) in flight; closing waits for them",
                type="CapturesInFlight",
            )
        report = await asyncio.to_thread(settle_period, self.engine, period, self.calendar)
        root = bytes.fromhex(report.commitment_root)
        value = sum(line.payable_fen for line in report.lines)
        fee = sum(line.fee_fen for line in report.lines)
        shares = await self._breakage(period)
        note = f"closed: {report.record_count} records, root {report.commitment_root}"
        if any(s.operator_fen for s in shares):
            note += (
                f", breakage {sum(s.operator_fen for s in shares)} fen of "
                f"{sum(s.value_fen for s in shares)} to the operator"
            )

        def close(conn: Connection) -> BatchSummary:
            now = self.clock()
            current = store.load_batch(conn, period)
            if current is None:
                current = batches.open_batch(period, now)
                store.insert_batch(conn, current, self.calendar)
            closed = batches.close(current, now, report.record_count, root)
            if closed != current:
                store.store_breakage(conn, current.batch_id, shares)
            store.save_transition(
                conn, current, closed, store.WORKFLOW, note, value_fen=value, fee_fen=fee
            )
            return _summary(conn, closed)

        return await self._db(close)

    async def _breakage(self, period: str) -> list[BreakageShare]:
        """Every active merchant's breakage of the period, signed by its node, and the
        operator's share of it under the merchant's policy now. A node that does not answer
        fails the activity (retried), naming it, unless its merchant keeps all its breakage:
        then no money depends on its answer and it is only left out of the record."""
        if self.breakage is None:
            return []
        source = self.breakage
        merchants = await self._db(registry.all_merchants)
        days = self._days(period)
        missing: dict[str, str] = {}

        async def one(merchant: registry.Merchant) -> BreakageShare | None:
            try:
                stated = [
                    await asyncio.wait_for(
                        source(merchant.merchant_id, day), self.statement_timeout
                    )
                    for day in days
                ]
            except Exception as exc:  # any failure to get the node's word
                reason = f"{type(exc).__name__}: {exc}"[:200]
                activity.logger.warning(
                    "no breakage from %s for %s: %s", merchant.merchant_id, period, reason
                )
                if merchant.breakage_operator_bps:
                    missing[merchant.merchant_id] = reason
                return None
            return allocate_breakage(merchant.merchant_id, stated, merchant.breakage_operator_bps)

        active = [m for m in merchants if m.status == "active"]
        found = await asyncio.gather(*(one(m) for m in active))
        if missing:
            raise ApplicationError(
                f"period {period} cannot close without the breakage of "
                + "; ".join(f"{m} ({why})" for m, why in sorted(missing.items()))
                + ": retrying until each node answers (or the operator suspends it)",
                type="BreakageUnavailable",
            )
        return [share for share in found if share is not None]

    def _days(self, period: str) -> list[str]:
        """The day stamps of the period, in order."""
        first, last = self.calendar.days(period)
        return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]

    # -- reconcile -------------------------------------------------------------------------

    @activity.defn(name="reconcile_batch")
    @heartbeating
    async def reconcile_batch(self, batch_id: str) -> ReconcileOutcome:
        batch = await self._db(lambda conn: _existing(conn, batch_id))
        if batch.status not in (BatchStatus.CLOSED, BatchStatus.DISPUTED):
            return ReconcileOutcome(batch_id)  # reconciled already (a retry)
        records, parties = await self._db(
            lambda conn: _records_and_parties(conn, batch.period, self.calendar)
        )
        statements, unreachable = await self._statements(batch.period, parties)
        result = reconcile(records, statements)
        found = list(result.mismatches)
        # A node that could not be asked is listed as such, with the reason, not as a guess.
        found = [m for m in found if m.merchant_id not in unreachable] + [
            Mismatch(merchant, None, "no_statement", node_value=reason)
            for merchant, reason in sorted(unreachable.items())
        ]
        after = batches.record_reconciliation(batch, _as_result(found), self.clock())

        def save(conn: Connection) -> list[str]:
            current = _existing(conn, batch_id)
            if current.status not in (BatchStatus.CLOSED, BatchStatus.DISPUTED):
                return []
            round_ = store.store_mismatches(conn, batch_id, found)
            note = f"reconciliation round {round_}: " + (
                f"{len(found)} mismatch(es)" if found else "every statement agrees"
            )
            updated = batches.record_reconciliation(current, _as_result(found), after.updated_at)
            if updated == current:  # disputed again: still a new round in the history
                store.append_event(
                    conn, batch_id, current.status, store.WORKFLOW, note, self.clock()
                )
            store.save_transition(conn, current, updated, store.WORKFLOW, note)
            return [store.describe(m) for m in found]

        return ReconcileOutcome(batch_id, await self._db(save))

    async def _statements(
        self, period: str, parties: list[str]
    ) -> tuple[list[NodeStatement], dict[str, str]]:
        days = self._days(period)
        unreachable: dict[str, str] = {}

        async def one(merchant: str) -> NodeStatement | None:
            try:
                parts = [
                    await asyncio.wait_for(self.statements(merchant, day), self.statement_timeout)
                    for day in days
                ]
            except Exception as exc:  # any failure to get the node's word is a dispute line
                activity.logger.warning("no statement from %s for %s: %s", merchant, period, exc)
                unreachable[merchant] = f"{type(exc).__name__}: {exc}"[:100]
                return None
            return NodeStatement(
                merchant,
                tuple(h for part in parts for h in part.posted_holds),
                tuple(r for part in parts for r in part.receivables),
            )

        gathered = await asyncio.gather(*(one(m) for m in parties))
        return [s for s in gathered if s is not None], unreachable

    # -- net -------------------------------------------------------------------------------

    @activity.defn(name="net_batch")
    @heartbeating
    async def net_batch(self, batch_id: str) -> NettingOutcome:
        batch = await self._db(lambda conn: _existing(conn, batch_id))
        if batch.status not in (
            BatchStatus.RECONCILED,
            BatchStatus.APPROVED,
            BatchStatus.PAID,
            BatchStatus.CONFIRMED,
        ):
            raise ApplicationError(
                f"batch {batch_id} is {batch.status}; only a reconciled batch is netted",
                type="NotReconciled",
                non_retryable=True,
            )
        shares = await self._db(lambda conn: store.breakage(conn, batch_id))
        report = await asyncio.to_thread(
            settle_period,
            self.engine,
            batch.period,
            self.calendar,
            breakage_obligations(shares),
        )
        if (batch.commitment_root or b"").hex() != report.commitment_root:
            # Clearing records are append-only and closing waits for the period's end: this
            # would be a bug or tampering, and paying on it would pay the wrong batch.
            raise ApplicationError(
                f"batch {batch_id}: the records no longer match the root committed at close",
                type="CommitmentChanged",
                non_retryable=True,
            )

        def save(conn: Connection) -> list[Transfer]:
            if store.store_netting(conn, batch_id, report):
                store.append_event(
                    conn,
                    batch_id,
                    batch.status,
                    store.WORKFLOW,
                    f"netted: {len(report.lines)} positions, {len(report.transfers)} transfers",
                    self.clock(),
                )
            return [
                Transfer(t.payer, t.payee, t.amount_fen) for t in store.transfers(conn, batch_id)
            ]

        return NettingOutcome(batch_id, await self._db(save))

    # -- the operator ----------------------------------------------------------------------

    @activity.defn(name="send_reminder")
    @heartbeating
    async def send_reminder(self, reminder: Reminder) -> None:
        note = (
            f"reminder {reminder.count}: approval pending for "
            f"{reminder.waiting_seconds // 3600} h {reminder.waiting_seconds % 3600 // 60} min"
        )
        log.warning("settlement %s: %s", reminder.period, note)

        def save(conn: Connection) -> None:
            batch = _existing(conn, reminder.batch_id)
            if not store.has_event(conn, reminder.batch_id, note):
                store.append_event(
                    conn, reminder.batch_id, batch.status, store.WORKFLOW, note, self.clock()
                )

        await self._db(save)

    @activity.defn(name="record_decision")
    @heartbeating
    async def record_decision(self, decision: DecisionRecord) -> None:
        """The operator's decision in the batch's row and history (idempotent)."""

        def save(conn: Connection) -> None:
            batch = _existing(conn, decision.batch_id)
            now = self.clock()
            note = f"{decision.action}" + (f": {decision.note}" if decision.note else "")
            if decision.action == "approve":
                after = batches.approve(batch, decision.by, now)
            elif decision.action == "reject":
                after = batches.reject(batch, decision.note, now)
            elif decision.action == "confirm":
                after = batches.confirm(batch, now)
            elif decision.action == "resolve":
                if not store.has_event(conn, batch.batch_id, note):
                    store.append_event(conn, batch.batch_id, batch.status, decision.by, note, now)
                return
            else:
                raise ApplicationError(
                    f"unknown decision {decision.action!r}",
                    type="UnknownDecision",
                    non_retryable=True,
                )
            if after.status == batch.status:
                return  # the same decision again (a retried activity): already recorded
            store.save_transition(conn, batch, after, decision.by, note)

        await self._db(save)

    @activity.defn(name="publish_instructions")
    @heartbeating
    async def publish_instructions(self, batch_id: str) -> str:
        """Writes the approved batch's payment instructions and report (JSON and CSV), then
        marks the batch paid. The files are rewritten byte for byte the same on a retry."""
        batch, report = await self._db(lambda conn: _approved_report(conn, batch_id))
        folder = self.out_dir / batch.period
        await asyncio.to_thread(_write_report, folder, report)

        def paid(conn: Connection) -> None:
            current = _existing(conn, batch_id)
            if current.status == BatchStatus.APPROVED:
                after = batches.mark_paid(current, self.clock())
                store.save_transition(
                    conn, current, after, store.WORKFLOW, f"instructions published to {folder}"
                )

        await self._db(paid)
        return str(folder)


def _existing(conn: Connection, batch_id: str) -> SettlementBatch:
    batch = store.load_batch_by_id(conn, batch_id)
    if batch is None:
        raise ApplicationError(
            f"no settlement batch {batch_id}", type="NoBatch", non_retryable=True
        )
    return batch


def _summary(conn: Connection, batch: SettlementBatch) -> BatchSummary:
    value = conn.execute(
        select(settlement_batches.c.value_fen).where(
            settlement_batches.c.batch_id == batch.batch_id
        )
    ).scalar()
    return BatchSummary(
        batch.batch_id,
        batch.period,
        batch.record_count or 0,
        value or 0,
        (batch.commitment_root or b"").hex(),
    )


def _records_and_parties(
    conn: Connection, period: str, calendar: Calendar
) -> tuple[list[ClearingRecord], list[str]]:
    """The period's records (reconciliation compares them entry by entry) and its parties."""
    records = list(stream_records(conn, period, calendar))
    obligations = gross_obligations(conn, period, calendar)
    parties = {o.issuer_id for o in obligations} | {o.acquirer_id for o in obligations}
    return records, sorted(parties)


def _as_result(found: list[Mismatch]) -> Reconciliation:
    return Reconciliation(tuple(found))


def _approved_report(conn: Connection, batch_id: str) -> tuple[SettlementBatch, SettlementReport]:
    batch = _existing(conn, batch_id)
    if batch.status not in (BatchStatus.APPROVED, BatchStatus.PAID, BatchStatus.CONFIRMED):
        raise ApplicationError(
            f"batch {batch_id} is {batch.status}; instructions are published once approved",
            type="NotApproved",
            non_retryable=True,
        )
    return batch, store.stored_report(conn, batch)


def _write_report(folder: pathlib.Path, report: SettlementReport) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    files = {"report.json": to_json(report), **to_csv(report)}
    for name, text in files.items():
        tmp = folder / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, folder / name)
