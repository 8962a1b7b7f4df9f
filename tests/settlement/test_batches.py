"""The settlement batch's state machine: the happy path, disputes, retries, and refusals."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from coalition_kernel.errors import FailedPrecondition
from settlement.batches import (
    ALLOWED,
    BatchStatus,
    SettlementBatch,
    approve,
    close,
    confirm,
    mark_paid,
    open_batch,
    record_reconciliation,
    reject,
    transition,
)
from settlement.reconcile import Mismatch, Reconciliation

T0 = datetime(2026, 11, 25, 0, 10, tzinfo=UTC)
ROOT = bytes(range(32))
CLEAN = Reconciliation(())
DISPUTED = Reconciliation((Mismatch("tea", "issuer", "missing_at_node", "a-1"),))


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_a_batch_goes_from_open_to_confirmed() -> None:
    batch = open_batch("2026-11-24", T0)
    assert (batch.batch_id, batch.status) == ("sb-2026-11-24", BatchStatus.OPEN)
    batch = close(batch, at(1), 42, ROOT)
    batch = record_reconciliation(batch, CLEAN, at(2))
    batch = approve(batch, "operator", at(3))
    batch = mark_paid(batch, at(4))
    batch = confirm(batch, at(5))
    assert batch.status == BatchStatus.CONFIRMED
    assert (batch.record_count, batch.commitment_root, batch.approved_by) == (42, ROOT, "operator")
    assert (batch.opened_at, batch.updated_at) == (T0, at(5))


def test_a_mismatch_disputes_the_batch_until_a_clean_reconciliation() -> None:
    batch = close(open_batch("2026-11-24", T0), at(1), 1, ROOT)
    batch = record_reconciliation(batch, DISPUTED, at(2))
    assert batch.status == BatchStatus.DISPUTED and batch.dispute_reason
    with pytest.raises(FailedPrecondition):
        approve(batch, "operator", at(3))
    batch = record_reconciliation(batch, DISPUTED, at(3))  # still wrong: still disputed
    assert batch.status == BatchStatus.DISPUTED
    batch = record_reconciliation(batch, CLEAN, at(4))
    assert (batch.status, batch.dispute_reason) == (BatchStatus.RECONCILED, None)
    assert approve(batch, "operator", at(5)).status == BatchStatus.APPROVED


def test_the_operator_may_reject_instead_of_approving() -> None:
    batch = record_reconciliation(close(open_batch("p", T0), at(1), 1, ROOT), CLEAN, at(2))
    batch = reject(batch, "fee schedule was wrong", at(3))
    assert (batch.status, batch.dispute_reason) == (BatchStatus.DISPUTED, "fee schedule was wrong")


def test_a_retried_transition_with_the_same_facts_changes_nothing() -> None:
    closed = close(open_batch("2026-11-24", T0), at(1), 7, ROOT)
    assert close(closed, at(9), 7, ROOT) is closed
    approved = approve(record_reconciliation(closed, CLEAN, at(2)), "operator", at(3))
    assert approve(approved, "operator", at(9)) is approved


def test_a_second_close_with_another_root_is_not_a_retry() -> None:
    closed = close(open_batch("2026-11-24", T0), at(1), 7, ROOT)
    with pytest.raises(FailedPrecondition) as refused:
        close(closed, at(2), 8, bytes(32))
    assert refused.value.reason == "INVALID_TRANSITION"


ILLEGAL = [
    (source, target)
    for source in BatchStatus
    for target in BatchStatus
    if target not in ALLOWED[source] and target != source
]


@pytest.mark.parametrize(("source", "target"), ILLEGAL, ids=[f"{s}->{t}" for s, t in ILLEGAL])
def test_every_illegal_transition_is_refused(source: BatchStatus, target: BatchStatus) -> None:
    batch = SettlementBatch("sb-p", "p", source, T0, T0)
    with pytest.raises(FailedPrecondition) as refused:
        transition(batch, target, at(1))
    assert refused.value.reason == "INVALID_TRANSITION"
    assert refused.value.metadata == {
        "batch_id": "sb-p",
        "from_status": str(source),
        "to_status": str(target),
    }


def test_nothing_is_disputed_once_money_moves() -> None:
    for status in (BatchStatus.APPROVED, BatchStatus.PAID, BatchStatus.CONFIRMED):
        batch = dataclasses.replace(open_batch("p", T0), status=status)
        with pytest.raises(FailedPrecondition):
            reject(batch, "too late", at(1))
