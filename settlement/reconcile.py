"""Reconciliation: the exchange's clearing records of a period against each node's statement.

Law 5 per captured cross redemption: issuer's posted hold = exchange clearing record =
acquirer's receivable. A node states what it booked for the period: as issuer, its posted holds
(hold_ref is the authorization id); as acquirer, its receivables. Every disagreement is listed,
not just the first, because the operator resolves a dispute entry by entry; a batch with any
mismatch is disputed and is not paid until it is resolved.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from settlement.records import ClearingRecord

Side = Literal["issuer", "acquirer"]
# missing_at_node: the exchange has the record, the node does not; missing_at_exchange: the
# node booked what the exchange never cleared; repeated_at_node: the node lists it twice.
Kind = Literal[
    "missing_at_node", "missing_at_exchange", "altered", "repeated_at_node", "no_statement"
]
Value = int | str | None


@dataclass(frozen=True, slots=True)
class PostedHold:
    hold_ref: str  # the authorization id the exchange gave the hold
    points: int


@dataclass(frozen=True, slots=True)
class Receivable:
    authorization_id: str
    issuer_id: str
    points: int
    value_fen: int
    fee_fen: int


@dataclass(frozen=True)
class NodeStatement:
    """What one merchant's node booked for the period, as issuer and as acquirer."""

    merchant_id: str
    posted_holds: tuple[PostedHold, ...] = ()
    receivables: tuple[Receivable, ...] = ()


@dataclass(frozen=True, slots=True)
class Mismatch:
    merchant_id: str
    side: Side | None
    kind: Kind
    authorization_id: str | None = None
    field: str | None = None
    exchange_value: Value = None
    node_value: Value = None


@dataclass(frozen=True)
class Reconciliation:
    mismatches: tuple[Mismatch, ...]

    @property
    def disputed(self) -> bool:
        return bool(self.mismatches)


def reconcile(
    records: Iterable[ClearingRecord], statements: Iterable[NodeStatement]
) -> Reconciliation:
    """Every mismatch between the period's records and the statements of all parties to them.

    A party to any record that sent no statement is itself a mismatch (`no_statement`).
    """
    # Each node is compared with its own records only: one pass to sort them out, not one
    # pass over the whole batch per node.
    involving: dict[str, list[ClearingRecord]] = defaultdict(list)
    for r in records:
        involving[r.issuer_id].append(r)
        if r.acquirer_id != r.issuer_id:
            involving[r.acquirer_id].append(r)
    by_merchant: dict[str, NodeStatement] = {}
    for statement in statements:
        if statement.merchant_id in by_merchant:
            raise ValueError(f"two statements from {statement.merchant_id}")
        by_merchant[statement.merchant_id] = statement
    found = [Mismatch(m, None, "no_statement") for m in involving.keys() - by_merchant.keys()]
    for merchant, statement in by_merchant.items():
        found += reconcile_node(involving.get(merchant, []), statement)
    return Reconciliation(tuple(sorted(found, key=_order)))


def reconcile_node(records: Iterable[ClearingRecord], statement: NodeStatement) -> list[Mismatch]:
    """The mismatches between the records and one merchant's statement, on both its sides."""
    me = statement.merchant_id
    records = list(records)
    as_issuer = {r.authorization_id: {"points": r.points} for r in records if r.issuer_id == me}
    holds = [(h.hold_ref, {"points": h.points}) for h in statement.posted_holds]
    as_acquirer = {
        r.authorization_id: _receivable_fields(r) for r in records if r.acquirer_id == me
    }
    receivables = [(r.authorization_id, _receivable_fields(r)) for r in statement.receivables]
    return _compare(me, "issuer", as_issuer, holds) + _compare(
        me, "acquirer", as_acquirer, receivables
    )


def _receivable_fields(entry: ClearingRecord | Receivable) -> dict[str, Value]:
    return {
        "issuer_id": entry.issuer_id,
        "points": entry.points,
        "value_fen": entry.value_fen,
        "fee_fen": entry.fee_fen,
    }


def _compare(
    merchant: str,
    side: Side,
    exchange: Mapping[str, Mapping[str, Value]],
    node: Sequence[tuple[str, Mapping[str, Value]]],
) -> list[Mismatch]:
    found: list[Mismatch] = []
    booked: dict[str, Mapping[str, Value]] = {}
    for auth, fields in node:
        if auth in booked:
            found.append(Mismatch(merchant, side, "repeated_at_node", auth))
        booked[auth] = fields
    for auth in exchange.keys() - booked.keys():
        found.append(Mismatch(merchant, side, "missing_at_node", auth))
    for auth in booked.keys() - exchange.keys():
        found.append(Mismatch(merchant, side, "missing_at_exchange", auth))
    for auth in exchange.keys() & booked.keys():
        for name, ours in exchange[auth].items():
            theirs = booked[auth][name]
            if ours != theirs:
                found.append(Mismatch(merchant, side, "altered", auth, name, ours, theirs))
    return found


def _order(m: Mismatch) -> tuple[str, str, str, str, str]:
    return (m.merchant_id, m.side or "", m.authorization_id or "", m.kind, m.field or "")
