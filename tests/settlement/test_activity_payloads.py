"""What settlement activities will hand to Temporal survives its default data converter, so the
workflow (written later) can pass batches, statements, reconciliations and reports as they are."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from temporalio.converter import DataConverter

from settlement.batches import close, open_batch
from settlement.netting import Transfer
from settlement.obligations import Obligation
from settlement.reconcile import Mismatch, NodeStatement, PostedHold, Receivable, Reconciliation
from settlement.report import build_report

T = datetime(2026, 11, 25, 0, 10, tzinfo=UTC)
PAYLOADS = [
    close(open_batch("2026-11-24", T), T, 3, bytes(range(32))),
    NodeStatement("tea", (PostedHold("a-1", 10),), (Receivable("a-2", "salon", 5, 50, 1),)),
    Reconciliation((Mismatch("tea", "issuer", "altered", "a-1", "points", 10, 11),)),
    build_report("2026-11-24", [Obligation("tea", "noodles", 10, 100, 3, 1)], bytes(32)),
    Transfer("tea", "noodles", 97),
]


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: type(p).__name__)
async def test_the_payload_round_trips_through_temporals_converter(payload: object) -> None:
    converter = DataConverter.default
    encoded = await converter.encode([payload])
    assert (await converter.decode(encoded, [type(payload)]))[0] == payload
