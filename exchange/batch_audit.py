"""The exchange audits its clearing: closed settlement batches and the clearing records in them.

The audit log's hash chain covers signed messages, not the clearing records the exchange wrote
from them. So `coalition exchange audit verify` also checks, for every closed batch, that its
records still hash to the Merkle root committed at close (and are as many), and, for every
clearing record, that it is backed by the two signed envelopes it was written from: the
acquirer's capture command and the issuer's answer posting the hold, each verified against the
keys registered for its signer at the time, and agreeing with the record (authorization, issuer,
acquirer, member, points; a value no higher than the points are worth at the cited rate), and
that its fields still hash to the Merkle leaf hash written with it at capture.

An insider who alters a record (dropping the append-only guard first) breaks its batch's root
and its agreement with the issuer's signed answer: both are reported, the record by name.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from google.protobuf.message import DecodeError
from sqlalchemy import Connection, Row, select

from coalition.envelope.v1.envelope_pb2 import SignedEnvelope
from coalition.exchange.v1 import exchange_pb2 as xpb
from coalition.issuer.v1 import issuer_pb2 as ipb
from coalition_kernel.envelope import EXCHANGE_ID, Verifier
from coalition_kernel.errors import CoalitionError, Unauthenticated
from coalition_kernel.points import floor_mul, parse_ratio
from exchange.registry import public_key_of
from exchange.schema import clearing_records, merchant_keys, merchant_rates, settlement_batches
from settlement.commitment import leaf_hash, merkle_root
from settlement.periods import Calendar
from settlement.records import STREAM_CHUNK, ClearingRecord, stream_records


@dataclass
class ClearingAudit:
    """What the audit found: counts of what it checked and one line per problem."""

    batches: int = 0
    records: int = 0
    problems: list[str] = field(default_factory=list)


def audit_clearing(conn: Connection) -> ClearingAudit:
    """Checks every closed batch against its commitment and every clearing record against its
    two signed envelopes."""
    found = ClearingAudit()
    for batch in conn.execute(
        select(settlement_batches)
        .where(settlement_batches.c.status != "open")
        .order_by(settlement_batches.c.period)
    ):
        found.batches += 1
        found.problems += check_batch(conn, batch)
    keys = _RegisteredKeys(conn)
    rates = _rates(conn)
    for record in _records(conn):
        found.records += 1
        found.problems += [
            f"clearing record {record.clearing_id} (authorization {record.authorization_id}): "
            f"{problem}"
            for problem in check_record(record, keys, rates)
        ]
    return found


def check_batch(conn: Connection, batch: Row) -> list[str]:
    """Whether a closed batch's records still hash to the root committed at its close."""
    records = list(stream_records(conn, batch.period, _calendar_of(batch.period)))
    root = merkle_root(records)
    problems = []
    if len(records) != batch.record_count:
        problems.append(
            f"settlement batch {batch.batch_id} ({batch.period}): {len(records)} clearing "
            f"records now, {batch.record_count} when it closed"
        )
    if root != batch.commitment_root:
        problems.append(
            f"settlement batch {batch.batch_id} ({batch.period}): its records no longer hash "
            f"to the committed root {(batch.commitment_root or b'').hex()[:16]}… (now "
            f"{root.hex()[:16]}…): a record changed after the batch closed"
        )
    return problems


def check_record(
    record: Row, keys: _RegisteredKeys, rates: dict[tuple[str, int], str]
) -> list[str]:
    """What is wrong with one clearing record against the signed envelopes it was written from."""
    problems = []
    at = record.captured_at
    try:
        capture = _open(record.acquirer_envelope, xpb.CaptureCommand, record.acquirer_id, keys, at)
        if capture.authorization_id != record.authorization_id:
            problems.append(
                f"the acquirer's signed capture is of authorization {capture.authorization_id}"
            )
    except CoalitionError as err:
        problems.append(f"the acquirer's signed capture does not verify: {err.reason}")
    try:
        posted = _open(record.issuer_envelope, ipb.HoldReceipt, record.issuer_id, keys, at)
        for name, signed, recorded in (
            ("authorization", posted.hold_id, record.authorization_id),
            ("member", posted.member_id, record.member_id),
            ("points", posted.points, record.points),
        ):
            if signed != recorded:
                problems.append(
                    f"{name} is {recorded} here, {signed} in the issuer's signed answer"
                )
        if posted.status != ipb.HOLD_STATUS_POSTED:
            problems.append("the issuer's signed answer does not post the hold")
    except CoalitionError as err:
        problems.append(f"the issuer's signed answer does not verify: {err.reason}")
    if record.leaf_hash is not None and record.leaf_hash != leaf_hash(_settled(record)):
        problems.append("its fields no longer hash to the leaf hash written when it was captured")
    rate = rates.get((record.issuer_id, record.rate_version))
    if rate is None:
        problems.append(f"cites rate version {record.rate_version}, which the issuer never had")
    elif record.value_fen > floor_mul(record.points, parse_ratio(rate)):
        problems.append(
            f"value {record.value_fen} fen is more than {record.points} points are worth at "
            f"{rate} fen a point (rate version {record.rate_version})"
        )
    return problems


def _settled(record: Row) -> ClearingRecord:
    return ClearingRecord(*(getattr(record, name) for name in ClearingRecord._fields))


def _open(raw: bytes, expected, signer: str, keys: _RegisteredKeys, at: datetime):  # type: ignore[no-untyped-def]
    # Evidence is verified at the time it was used, whatever its age now.
    verifier = Verifier(EXCHANGE_ID, keys, skew=timedelta.max, clock=lambda: at)
    try:
        envelope = SignedEnvelope.FromString(raw)
    except DecodeError as exc:
        raise Unauthenticated("MALFORMED_ENVELOPE", "not a signed envelope") from exc
    return verifier.open(envelope, expected, sender=signer)


class _RegisteredKeys:
    """Every merchant key ever registered, with its window; read once for the whole audit.
    A suspended merchant's past messages still count: standing is not checked."""

    def __init__(self, conn: Connection) -> None:
        self.keys = {
            (row.merchant_id, row.key_id): row for row in conn.execute(select(merchant_keys))
        }

    def public_key(self, signer_id: str, key_id: str, at: datetime) -> Ed25519PublicKey:
        row = self.keys.get((signer_id, key_id))
        if row is None:
            raise Unauthenticated(
                "UNKNOWN_KEY", f"key {key_id!r} is not registered for {signer_id}"
            )
        if at < row.valid_from or (row.valid_until is not None and at >= row.valid_until):
            raise Unauthenticated("KEY_EXPIRED", f"key {key_id} was not valid at {at.isoformat()}")
        return public_key_of(row.public_key)

    def check_standing(self, signer_id: str) -> None:
        return None


def _calendar_of(period: str) -> Calendar:
    # The period's own form says how it was cut; only its days matter here, not its zone.
    if "W" in period:
        return Calendar(cycle="weekly")
    return Calendar(cycle="daily" if len(period) == 10 else "monthly")


def _rates(conn: Connection) -> dict[tuple[str, int], str]:
    r = merchant_rates.c
    return {
        (row.merchant_id, row.version): row.fen_per_point
        for row in conn.execute(select(r.merchant_id, r.version, r.fen_per_point))
    }


def _records(conn: Connection) -> Iterator[Row]:
    c = clearing_records.c
    stmt = select(clearing_records).order_by(c.settlement_period, c.authorization_id)
    yield from conn.execution_options(yield_per=STREAM_CHUNK).execute(stmt)
