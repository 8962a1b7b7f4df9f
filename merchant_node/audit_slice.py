"""A merchant checks its own slice of the exchange's audit log, offline from the exchange's word.

Each entry's hash is recomputed from its contents, and every envelope in it signed by this
merchant or by the exchange is checked against their public keys: the exchange cannot show a
merchant a message that merchant never signed, nor deny an answer it signed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from google.protobuf.message import DecodeError

from coalition.envelope.v1.envelope_pb2 import SignedEnvelope
from coalition.exchange.v1 import exchange_pb2 as xpb
from coalition_kernel.envelope import EXCHANGE_ID, signed_bytes
from coalition_kernel.hashchain import Entry, verify_entries
from merchant_node.acquirer import ExchangeLink


@dataclass
class SliceReport:
    entries: int = 0
    signatures_checked: int = 0
    head_sequence: int = 0
    problems: list[str] = field(default_factory=list)


def verify_slice(
    receipt: xpb.AuditSliceReceipt, merchant_id: str, keys: dict[str, Ed25519PublicKey]
) -> SliceReport:
    """Checks one page of entries; `keys` maps signer ids (this merchant, "exchange") to keys."""
    report = SliceReport(entries=len(receipt.entries), head_sequence=receipt.head_sequence)
    entries = [
        Entry(
            e.sequence,
            e.direction,
            e.peer_id,
            e.envelope,
            e.outcome,
            e.recorded_at.ToDatetime(),
            e.previous_hash,
            e.entry_hash,
        )
        for e in receipt.entries
    ]
    report.problems += verify_entries(entries, contiguous=False)
    for e in receipt.entries:
        if e.peer_id != merchant_id:
            report.problems.append(
                f"entry {e.sequence}: belongs to {e.peer_id}, not to {merchant_id}"
            )
        if not e.envelope:
            continue
        try:
            envelope = SignedEnvelope.FromString(e.envelope)
        except DecodeError:
            report.problems.append(f"entry {e.sequence}: the envelope does not parse")
            continue
        key = keys.get(envelope.signer_id)
        if key is None:
            continue  # signed by someone whose key this merchant does not hold
        try:
            key.verify(envelope.signature, signed_bytes(envelope.payload_type, envelope.payload))
            report.signatures_checked += 1
        except InvalidSignature:
            if e.outcome.startswith("refused:"):
                continue  # a forged message the exchange refused, logged as received
            report.problems.append(
                f"entry {e.sequence}: {envelope.signer_id}'s signature is invalid"
            )
    return report


async def fetch_and_verify(
    link: ExchangeLink, own_key: Ed25519PublicKey, exchange_key: Ed25519PublicKey, page: int = 500
) -> SliceReport:
    """Fetches this merchant's whole slice, page by page, and verifies it."""
    merchant_id = link.signer.signer_id
    keys = {merchant_id: own_key, EXCHANGE_ID: exchange_key}
    total = SliceReport()
    after = 0
    while True:
        cmd = xpb.AuditSliceCommand(after_sequence=after, limit=page)
        receipt = await link.call(
            "FetchAuditSlice", cmd, f"audit-{uuid.uuid4().hex}", xpb.AuditSliceReceipt
        )
        report = verify_slice(receipt, merchant_id, keys)
        total.entries += report.entries
        total.signatures_checked += report.signatures_checked
        total.problems += report.problems
        total.head_sequence = report.head_sequence
        if len(receipt.entries) < page:
            return total
        after = receipt.entries[-1].sequence
