"""A merchant checks its share of a settlement batch against its own books, offline.

The exchange's signed SettlementProofReceipt gives the batch's commitment root, this merchant's
entries with their inclusion proofs, and its position. Checked here without asking the exchange
anything more: every proof against the root (RFC 9162), the entries against what this node
booked for the period (its posted holds as issuer, its captured cross redemptions as acquirer),
and the position against the entries. The signed answer can be saved to a file and checked
again later, when the exchange is not reachable or no longer trusted.
"""

from __future__ import annotations

import pathlib
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from google.protobuf.message import DecodeError
from sqlalchemy import Connection, Engine

from coalition.envelope.v1.envelope_pb2 import SignedEnvelope
from coalition.exchange.v1 import exchange_pb2 as xpb
from coalition_kernel.db import run_in_transaction
from coalition_kernel.envelope import EXCHANGE_ID, StaticKeys, Verifier
from coalition_kernel.errors import CoalitionError
from merchant_node.acquirer import ExchangeLink
from merchant_node.ledger.expiry import breakage_report
from merchant_node.ledger.statement import MAX_LIMIT, SIDES, StatementQuery, statement_page
from settlement.commitment import BATCH_CHANGED, InclusionProof, check_entries, root_problems
from settlement.reconcile import Mismatch, NodeStatement, PostedHold, Receivable, reconcile_node
from settlement.records import ClearingRecord
from settlement.store import describe


@dataclass
class ProofCheck:
    """What checking one proof found; `problems` empty means the batch is right for us."""

    period: str
    batch_id: str = ""
    status: str = ""
    record_count: int = 0
    commitment_root: bytes = b""
    entries: int = 0
    net_fen: int = 0
    problems: list[str] = field(default_factory=list)


async def fetch_proof(link: ExchangeLink, period: str) -> SignedEnvelope:
    """The exchange's signed proof of this merchant's share of the period's batch (verified as
    an answer to this very request)."""
    cmd = xpb.SettlementProofCommand(settlement_period=period)
    _, envelope = await link.call_signed(
        "GetSettlementProof", cmd, f"proof-{uuid.uuid4().hex}", xpb.SettlementProofReceipt
    )
    return envelope


def save_proof(path: pathlib.Path, envelope: SignedEnvelope) -> None:
    """Writes the signed answer as received (a serialized SignedEnvelope)."""
    path.write_bytes(envelope.SerializeToString())


def load_proof(path: pathlib.Path) -> SignedEnvelope:
    return SignedEnvelope.FromString(path.read_bytes())


def open_proof(
    envelope: SignedEnvelope, merchant_id: str, exchange_key: Ed25519PublicKey
) -> xpb.SettlementProofReceipt:
    """The proof, if the exchange signed it for this merchant; any age: it is kept as evidence,
    so the ±skew window of live messages does not apply."""
    verifier = Verifier(merchant_id, StaticKeys({EXCHANGE_ID: exchange_key}), skew=timedelta.max)
    return verifier.open(envelope, xpb.SettlementProofReceipt, sender=EXCHANGE_ID)


def booked(conn: Connection, merchant_id: str, period: str) -> NodeStatement:
    """What this node booked for the period, both sides, from its ledger's statement."""
    pages: dict[str, list] = {side: [] for side in SIDES}  # type: ignore[type-arg]
    for side in SIDES:
        after = ""
        while True:
            page = statement_page(conn, StatementQuery(period, side, after, MAX_LIMIT))
            pages[side] += page.entries
            if not (after := page.next_after_id):
                break
    return NodeStatement(
        merchant_id,
        tuple(PostedHold(e.authorization_id, e.points) for e in pages["issuer"]),
        tuple(
            Receivable(e.authorization_id, e.issuer_id, e.points, e.value_fen, e.fee_fen)
            for e in pages["acquirer"]
        ),
    )


def booked_breakage_fen(conn: Connection, period: str) -> int:
    """The value at issue of this node's points expired on the period's day (Asia/Shanghai),
    as its GetBreakage answer states it."""
    zone = ZoneInfo("Asia/Shanghai")
    day = date.fromisoformat(period)
    start = datetime.combine(day, time(), zone)
    end = datetime.combine(day + timedelta(days=1), time(), zone)
    return breakage_report(conn, start, end, "Asia/Shanghai", "day").value_fen


def check_proof(
    receipt: xpb.SettlementProofReceipt,
    period: str,
    books: NodeStatement,
    books_breakage_fen: int | None = None,
) -> list[str]:
    """Everything wrong with a proof of `books.merchant_id`'s share of the period; [] if none."""
    me = books.merchant_id
    problems: list[str] = []
    if receipt.settlement_period != period:
        problems.append(f"the proof is of period {receipt.settlement_period!r}, not {period}")
    proofs = [_inclusion_proof(e) for e in receipt.entries]
    for p in proofs:
        if p.record.settlement_period != period:
            problems.append(
                f"entry {p.record.authorization_id} is of period {p.record.settlement_period}"
            )
        if p.tree_size != receipt.record_count:
            problems.append(
                f"entry {p.record.authorization_id} is proven in a batch of {p.tree_size} "
                f"records; the batch publishes {receipt.record_count}"
            )
    position = receipt.position
    unnettable = [p for p in proofs if not 0 <= p.record.fee_fen <= p.record.value_fen]
    if unnettable:  # netting refuses them; say so and still check every proof
        problems += [
            f"entry {p.record.authorization_id}: fee {p.record.fee_fen} fen outside "
            f"0..{p.record.value_fen}"
            for p in unnettable
        ]
        problems += root_problems(proofs, receipt.commitment_root)
    else:
        # The entries net to what the position nets before its breakage share is paid.
        problems += check_entries(
            me, proofs, receipt.commitment_root, position.net_fen + position.breakage_fen
        )
    records = [p.record for p in proofs]
    for name, ours in (
        ("payable_fen", sum(r.value_fen for r in records if r.issuer_id == me)),
        ("receivable_fen", sum(r.value_fen for r in records if r.acquirer_id == me)),
        ("fee_fen", sum(r.fee_fen for r in records if r.acquirer_id == me)),
    ):
        if getattr(position, name) != ours:
            problems.append(
                f"entries give {name} {ours}, the position says {getattr(position, name)}"
            )
    differing = reconcile_node(records, books)
    problems += [_explain(m) for m in differing]
    if any(p.startswith(BATCH_CHANGED) for p in problems) and not differing:
        problems.append(
            f"none of this merchant's {len(records)} entries differs from its own books: the "
            "record that changed is another merchant's; ask the operator "
            "(`coalition exchange audit verify` names it)"
        )
    problems += _check_breakage(position, books_breakage_fen)
    return problems


def _explain(m: Mismatch) -> str:
    """A difference between the batch and this node's books, naming the record."""
    if m.kind == "altered":
        return (
            f"record {m.authorization_id} differs from this node's books ({m.merchant_id} as "
            f"{m.side}): {m.field} is {m.exchange_value} in the batch, {m.node_value} here"
        )
    return describe(m)


def _check_breakage(position: xpb.SettlementPosition, own_value_fen: int | None) -> list[str]:
    """The breakage share against the policy it cites and, when known, this node's own books."""
    problems = []
    if not 0 <= position.breakage_operator_bps <= 10_000:
        problems.append(f"breakage share of {position.breakage_operator_bps} bps is impossible")
    elif position.breakage_fen != (
        position.breakage_value_fen * position.breakage_operator_bps // 10_000
    ):
        problems.append(
            f"breakage share {position.breakage_fen} fen is not "
            f"{position.breakage_operator_bps} bps of {position.breakage_value_fen} fen"
        )
    if (
        own_value_fen is not None
        and position.breakage_fen
        and (position.breakage_value_fen != own_value_fen)
    ):
        problems.append(
            f"breakage valued at {position.breakage_value_fen} fen; this node's books say "
            f"{own_value_fen} fen"
        )
    return problems


def verify_proof(
    envelope: SignedEnvelope,
    merchant_id: str,
    period: str,
    exchange_key: Ed25519PublicKey,
    engine: Engine,
) -> ProofCheck:
    """Checks a signed proof (fetched just now or loaded from a file) against this node's books."""
    result = ProofCheck(period)
    try:
        receipt = open_proof(envelope, merchant_id, exchange_key)
    except CoalitionError as err:  # nothing in it can be trusted
        result.problems.append(f"the proof is not the exchange's word: {err.reason}: {err.message}")
        return result
    books = run_in_transaction(engine, lambda conn: booked(conn, merchant_id, period))
    result.batch_id = receipt.batch_id
    result.status = xpb.SettlementBatchStatus.Name(receipt.status).removeprefix(
        "SETTLEMENT_BATCH_STATUS_"
    )
    result.record_count = receipt.record_count
    result.commitment_root = receipt.commitment_root
    result.entries = len(receipt.entries)
    result.net_fen = receipt.position.net_fen
    breakage = run_in_transaction(engine, lambda conn: booked_breakage_fen(conn, period))
    result.problems = check_proof(receipt, period, books, breakage)
    return result


def load_and_verify(
    path: pathlib.Path,
    merchant_id: str,
    period: str,
    exchange_key: Ed25519PublicKey,
    engine: Engine,
) -> ProofCheck:
    """Checks a proof saved earlier, without the exchange."""
    try:
        envelope = load_proof(path)
    except DecodeError:
        return ProofCheck(period, problems=[f"{path} is not a saved settlement proof"])
    return verify_proof(envelope, merchant_id, period, exchange_key, engine)


def _inclusion_proof(e: xpb.ProvenSettlementEntry) -> InclusionProof:
    r = e.entry
    record = ClearingRecord(
        r.authorization_id,
        r.clearing_id,
        r.issuer_id,
        r.acquirer_id,
        r.points,
        r.value_fen,
        r.fee_fen,
        r.rate_version,
        r.settlement_period,
    )
    return InclusionProof(record, e.proof.leaf_index, e.proof.tree_size, tuple(e.proof.audit_path))
