"""The idempotency record's request hash and stored answer are byte for byte what they were when
they were built with `dataclasses.asdict`: a retry of a request recorded before still matches
its record (not REQUEST_ID_REUSED), and a stored answer still reads back."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from merchant_node.ledger import idempotency
from merchant_node.ledger.commands import Earn, Enroll, PlaceHold, PostHold, Redeem, Refund
from merchant_node.ledger.earning import EarnResult
from merchant_node.ledger.holds import HoldResult
from merchant_node.ledger.orders import RedeemResult, RefundResult
from merchant_node.ledger.service import EnrollResult, _HoldAction, _MemberAction
from merchant_node.rules.base import LineItem, RuleLine

AT = datetime(2026, 12, 4, 13, 30, 5, 123456, tzinfo=UTC)


def _asdict_hash(operation: str, command: Any) -> str:
    body = dataclasses.asdict(command)
    body.pop("request_id", None)
    canonical = json.dumps([operation, body], sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _asdict_encode(result: Any) -> bytes:
    return json.dumps(
        dataclasses.asdict(result), default=idempotency._default, sort_keys=True
    ).encode()


COMMANDS = [
    ("earn", Earn("r-1", "m-1", "o-1", 12_345, "POS", None)),
    (
        "earn",
        Earn(
            "r-2",
            "m-1",
            "o-2",
            10_000,
            "POS",
            AT,
            (LineItem("sku-1", "tea", 2, 1_500), LineItem("sku-2", "", 1, 0)),
            500,
        ),
    ),
    ("redeem", Redeem("r-3", "m-1", "o-3", points=7)),
    ("redeem", Redeem("r-4", "m-1", "o-4", amount_fen=700)),
    ("refund", Refund("r-5", "o-3", full=True)),
    ("enroll", Enroll("r-6", "m-2", "13800000000", "Li Lei", "", 4, client_id="k1")),
    (
        "place_hold",
        PlaceHold(
            request_id="x:r-7",
            hold_ref="h-1",
            member_id="m-1",
            points=50,
            ttl_seconds=300,
            consent_code="123456",
            acquirer_id="noodles",
            consent_max_points=60,
            consent_order_id="o-9",
            issuer_id="tea",
        ),
    ),
    ("post_hold", PostHold("x:r-8", "h-1", "2026-12-04")),
    ("post_hold", _HoldAction("x:r-9", "h-1")),
    ("engage", _MemberAction("r-10", "m-1", "review", "ref-1")),
]

RESULTS = [
    EarnResult(123, 0, AT, 1, 456, [RuleLine("base", "1 point per yuan", 123)], None, "v1"),
    EarnResult(0, 5, None, 2, 0),
    RedeemResult("17", 7, 700, 449, 1),
    RefundResult(1, 2, 3, 4, 5),
    HoldResult("h-1", "pending", 50, AT, "m-1"),
    EnrollResult("m-2", "ABCD2345", "", AT, ""),
]


@pytest.mark.parametrize(("operation", "command"), COMMANDS)
def test_request_hash_is_unchanged(operation: str, command: Any) -> None:
    assert idempotency.request_hash(operation, command) == _asdict_hash(operation, command)


@pytest.mark.parametrize("result", RESULTS)
def test_stored_answer_is_unchanged_and_reads_back(result: Any) -> None:
    stored = idempotency.encode(result)
    assert stored == _asdict_encode(result)
    assert idempotency.decode(type(result), stored) == result
