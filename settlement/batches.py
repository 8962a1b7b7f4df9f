"""The settlement batch's life: open → closed → reconciled → approved → paid → confirmed.

A batch is one period's settlement. It closes once the period can receive no more records
(its commitment root and record count are fixed then), is reconciled against every node's
statement, waits for the operator's approval, is paid by the transfer plan, and is confirmed
when the payees acknowledge. A mismatch at reconciliation, or an operator's rejection, makes it
disputed; once the nodes correct their statements, a clean re-reconciliation resumes it. The
clearing records themselves are append-only, so an error at the exchange is corrected by a
later period's records, never by editing this one. Nothing is disputed after approval: money
has started to move, and a problem then is a payment problem, not a settlement one.

Pure: transitions return a new batch, and storing it is the caller's business. A transition
repeated with the same facts returns the batch unchanged, so a retried activity is harmless.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from coalition_kernel.errors import FailedPrecondition
from settlement.reconcile import Reconciliation


class BatchStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    RECONCILED = "reconciled"
    APPROVED = "approved"
    PAID = "paid"
    CONFIRMED = "confirmed"
    DISPUTED = "disputed"


ALLOWED: dict[BatchStatus, frozenset[BatchStatus]] = {
    BatchStatus.OPEN: frozenset({BatchStatus.CLOSED}),
    BatchStatus.CLOSED: frozenset({BatchStatus.RECONCILED, BatchStatus.DISPUTED}),
    BatchStatus.RECONCILED: frozenset({BatchStatus.APPROVED, BatchStatus.DISPUTED}),
    BatchStatus.APPROVED: frozenset({BatchStatus.PAID}),
    BatchStatus.PAID: frozenset({BatchStatus.CONFIRMED}),
    BatchStatus.CONFIRMED: frozenset(),
    BatchStatus.DISPUTED: frozenset({BatchStatus.RECONCILED, BatchStatus.DISPUTED}),
}


@dataclass(frozen=True)
class SettlementBatch:
    """One row of a future `settlement_batches` table (one batch per period)."""

    batch_id: str
    period: str
    status: BatchStatus
    opened_at: datetime
    updated_at: datetime
    record_count: int | None = None
    commitment_root: bytes | None = None
    approved_by: str | None = None
    dispute_reason: str | None = None


def open_batch(period: str, at: datetime) -> SettlementBatch:
    """The period's batch; its id derives from the period, so opening twice finds the same."""
    return SettlementBatch(f"sb-{period}", period, BatchStatus.OPEN, at, at)


def close(batch: SettlementBatch, at: datetime, record_count: int, root: bytes) -> SettlementBatch:
    return transition(
        batch, BatchStatus.CLOSED, at, record_count=record_count, commitment_root=root
    )


def record_reconciliation(
    batch: SettlementBatch, result: Reconciliation, at: datetime
) -> SettlementBatch:
    """Reconciled when every statement agrees, else disputed with a count of what did not."""
    if not result.disputed:
        return transition(batch, BatchStatus.RECONCILED, at, dispute_reason=None)
    reason = f"{len(result.mismatches)} mismatch(es) with the nodes' statements"
    return transition(batch, BatchStatus.DISPUTED, at, dispute_reason=reason)


def approve(batch: SettlementBatch, operator_id: str, at: datetime) -> SettlementBatch:
    return transition(batch, BatchStatus.APPROVED, at, approved_by=operator_id)


def reject(batch: SettlementBatch, reason: str, at: datetime) -> SettlementBatch:
    return transition(batch, BatchStatus.DISPUTED, at, dispute_reason=reason)


def mark_paid(batch: SettlementBatch, at: datetime) -> SettlementBatch:
    return transition(batch, BatchStatus.PAID, at)


def confirm(batch: SettlementBatch, at: datetime) -> SettlementBatch:
    return transition(batch, BatchStatus.CONFIRMED, at)


def transition(
    batch: SettlementBatch, to: BatchStatus, at: datetime, **facts: object
) -> SettlementBatch:
    """The batch moved to `to` with `facts` recorded, or FAILED_PRECONDITION/INVALID_TRANSITION.

    Already in `to` with the same facts: returned unchanged (a retry). Already in `to` with
    other facts (say, a different commitment root at close) is refused: it is not a retry.
    """
    same_facts = all(getattr(batch, name) == value for name, value in facts.items())
    if batch.status == to and to not in ALLOWED[to] and same_facts:
        return batch
    if to not in ALLOWED[batch.status]:
        raise FailedPrecondition(
            "INVALID_TRANSITION",
            f"settlement batch {batch.batch_id} cannot go from {batch.status} to {to}"
            + (" with different facts" if batch.status == to else ""),
            batch_id=batch.batch_id,
            from_status=str(batch.status),
            to_status=str(to),
        )
    return replace(batch, status=to, updated_at=at, **facts)  # type: ignore[arg-type]
