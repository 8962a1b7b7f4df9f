"""Settlement proofs: a merchant's share of a closed settlement batch, which it can check offline.

The answer carries the batch's published commitment root and record count (fixed at close), the
merchant's entries each with its RFC 9162 inclusion proof, and the merchant's position. The
merchant checks every proof against the root, the entries against its own books, and the
position against the entries (merchant_node/settlement_check.py); nothing here is taken on
trust, so the root served is the one stored at close, never one recomputed for the occasion.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, Engine, Row, exists, select

from coalition.envelope.v1.envelope_pb2 import SignedEnvelope
from coalition.exchange.v1 import exchange_pb2 as xpb
from coalition_kernel.errors import FailedPrecondition, NotFound
from coalition_kernel.rpc import Offload
from exchange.schema import settlement_batches, settlement_breakage, settlement_positions
from merchant_node.ledger.commands import check_period
from settlement.commitment import BatchTree, InclusionProof
from settlement.netting import net_positions
from settlement.records import stream_records

log = logging.getLogger(__name__)

_STATUS = {
    "open": xpb.SETTLEMENT_BATCH_STATUS_OPEN,
    "closed": xpb.SETTLEMENT_BATCH_STATUS_CLOSED,
    "reconciled": xpb.SETTLEMENT_BATCH_STATUS_RECONCILED,
    "approved": xpb.SETTLEMENT_BATCH_STATUS_APPROVED,
    "paid": xpb.SETTLEMENT_BATCH_STATUS_PAID,
    "confirmed": xpb.SETTLEMENT_BATCH_STATUS_CONFIRMED,
    "disputed": xpb.SETTLEMENT_BATCH_STATUS_DISPUTED,
}


class SettlementProofs:
    def __init__(self, engine: Engine, offload: Offload) -> None:
        self.engine = engine
        self.offload = offload

    async def get(
        self, cmd: xpb.SettlementProofCommand, envelope: SignedEnvelope
    ) -> xpb.SettlementProofReceipt:
        """The caller's entries of the period's closed batch, with proofs and its position."""
        period = check_period("settlement_period", cmd.settlement_period)
        return await self.offload(self._read, envelope.signer_id, period)

    def _read(self, merchant_id: str, period: str) -> xpb.SettlementProofReceipt:
        # The batch row, the positions and the records must be one snapshot, as when settling:
        # REPEATABLE READ on PostgreSQL; SQLite's transactions are serializable already.
        dialect = self.engine.dialect.name
        options = {"isolation_level": "REPEATABLE READ"} if dialect != "sqlite" else {}
        with self.engine.connect().execution_options(**options) as conn, conn.begin():
            batch = _closed_batch(conn, period)
            tree = BatchTree(stream_records(conn, period))
            position = _stored_position(conn, batch.batch_id, merchant_id)
        if tree.root != batch.commitment_root or len(tree.records) != batch.record_count:
            # Records are append-only and the batch is closed: this should never happen. The
            # stored root is still what is served; the merchant's check will say it fails.
            log.error(
                "batch %s: %d records with root %s now, %s records with root %s at close",
                batch.batch_id,
                len(tree.records),
                tree.root.hex(),
                batch.record_count,
                (batch.commitment_root or b"").hex(),
            )
        proofs = tree.proofs_for(merchant_id)
        if position is None:  # not netted yet: the position netting will compute
            position = _computed_position(merchant_id, proofs)
        return xpb.SettlementProofReceipt(
            settlement_period=period,
            batch_id=batch.batch_id,
            status=_STATUS[batch.status],
            record_count=batch.record_count or 0,
            commitment_root=batch.commitment_root or b"",
            entries=[_proven(p) for p in proofs],
            position=position,
        )


def _closed_batch(conn: Connection, period: str) -> Row:
    batch = conn.execute(
        select(settlement_batches).where(settlement_batches.c.period == period)
    ).first()
    if batch is None:
        raise NotFound("BATCH_NOT_FOUND", f"no settlement batch for period {period}")
    if batch.status == "open":
        raise FailedPrecondition(
            "BATCH_OPEN",
            f"the settlement batch of {period} is still open: its commitment is fixed when it "
            "closes, after the period ends",
        )
    return batch


def _stored_position(
    conn: Connection, batch_id: str, merchant_id: str
) -> xpb.SettlementPosition | None:
    """The merchant's line as stored when the batch was netted; zero if it took no part; None
    if the batch has not been netted yet."""
    c = settlement_positions.c
    netted = conn.execute(select(exists().where(c.batch_id == batch_id))).scalar()
    if not netted:
        return None
    row = conn.execute(
        select(c.payable_fen, c.receivable_fen, c.fee_fen, c.net_fen).where(
            c.batch_id == batch_id, c.party == merchant_id
        )
    ).first()
    b = settlement_breakage.c
    breakage = conn.execute(
        select(b.value_fen, b.operator_bps, b.operator_fen).where(
            b.batch_id == batch_id, b.issuer_id == merchant_id
        )
    ).first()
    position = xpb.SettlementPosition()
    if row is not None:
        position = xpb.SettlementPosition(
            payable_fen=row.payable_fen,
            receivable_fen=row.receivable_fen,
            fee_fen=row.fee_fen,
            net_fen=row.net_fen,
        )
    if breakage is not None:
        position.breakage_fen = breakage.operator_fen
        position.breakage_value_fen = breakage.value_fen
        position.breakage_operator_bps = breakage.operator_bps
    return position


def _computed_position(merchant_id: str, proofs: list[InclusionProof]) -> xpb.SettlementPosition:
    records = [p.record for p in proofs]
    return xpb.SettlementPosition(
        payable_fen=sum(r.value_fen for r in records if r.issuer_id == merchant_id),
        receivable_fen=sum(r.value_fen for r in records if r.acquirer_id == merchant_id),
        fee_fen=sum(r.fee_fen for r in records if r.acquirer_id == merchant_id),
        net_fen=net_positions(records).get(merchant_id, 0),
    )


def _proven(proof: InclusionProof) -> xpb.ProvenSettlementEntry:
    r = proof.record
    return xpb.ProvenSettlementEntry(
        entry=xpb.SettlementEntry(
            authorization_id=r.authorization_id,
            clearing_id=r.clearing_id,
            issuer_id=r.issuer_id,
            acquirer_id=r.acquirer_id,
            points=r.points,
            value_fen=r.value_fen,
            fee_fen=r.fee_fen,
            rate_version=r.rate_version,
            settlement_period=r.settlement_period,
        ),
        proof=xpb.InclusionProof(
            leaf_index=proof.leaf_index, tree_size=proof.tree_size, audit_path=list(proof.path)
        ),
    )
