"""Tables of the exchange (SQLAlchemy Core), created by exchange/migrations."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    UniqueConstraint,
)

from coalition_kernel.db import Id, UtcDateTime, new_metadata

metadata = new_metadata()
TS = UtcDateTime()

merchants = Table(
    "merchants",
    metadata,
    Column("merchant_id", String(64), primary_key=True),
    Column("display_name", String(100), nullable=False),
    Column("status", String(10), nullable=False),
    Column("fee_bps", Integer, nullable=False),
    Column("endpoint", String(255), nullable=False),
    Column("onboarded_at", TS, nullable=False),
    # Risk: past this unsettled net debit (fen) the exchange authorizes nothing more drawing
    # on this issuer until it settles. NULL: no cap.
    Column("net_debit_cap_fen", BigInteger),
    # The coalition's breakage policy for this issuer: the share of the value of its expired
    # points the operator keeps at settlement (0: the issuer keeps it all; 10000: the operator).
    Column("breakage_operator_bps", Integer, nullable=False, server_default="0"),
    CheckConstraint("status IN ('active', 'suspended')", name="status_known"),
    CheckConstraint("fee_bps >= 0 AND fee_bps <= 10000", name="fee_in_range"),
    CheckConstraint(
        "breakage_operator_bps >= 0 AND breakage_operator_bps <= 10000",
        name="breakage_share_in_range",
    ),
)

merchant_keys = Table(
    "merchant_keys",
    metadata,
    Column("merchant_id", ForeignKey("merchants.merchant_id"), primary_key=True),
    Column("key_id", String(16), primary_key=True),
    Column("public_key", LargeBinary, nullable=False),
    Column("valid_from", TS, nullable=False),
    Column("valid_until", TS),
)

# Point values per issuer, versioned: a clearing record cites the version it used.
merchant_rates = Table(
    "merchant_rates",
    metadata,
    Column("merchant_id", ForeignKey("merchants.merchant_id"), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("fen_per_point", String(32), nullable=False),
    Column("effective_from", TS, nullable=False),
)

quotes = Table(
    "quotes",
    metadata,
    Column("quote_id", String(40), primary_key=True),
    Column("acquirer_id", String(64), nullable=False),
    Column("issuer_id", String(64), nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("value_fen", BigInteger, nullable=False),
    Column("fee_fen", BigInteger, nullable=False),
    Column("rate_version", Integer, nullable=False),
    Column("expires_at", TS, nullable=False),
)

AUTH_STATUSES = ("pending", "authorized", "capturing", "captured", "voiding", "voided", "failed")

authorizations = Table(
    "authorizations",
    metadata,
    Column("authorization_id", String(40), primary_key=True),
    Column("acquirer_id", String(64), nullable=False),
    Column("request_id", String(128), nullable=False),
    Column("issuer_id", String(64), nullable=False),
    Column("member_id", String(64), nullable=False),
    Column("order_id", String(64), nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("value_fen", BigInteger, nullable=False),
    Column("fee_fen", BigInteger, nullable=False),
    Column("rate_version", Integer, nullable=False),
    Column("consent_code", String(10), nullable=False),
    Column("status", String(10), nullable=False),
    Column("failure_reason", String(64)),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("hold_expires_at", TS),
    # The acquirer's signed CaptureCommand, kept from the moment capture starts, so that a
    # capture finished by recovery still carries the acquirer's signature.
    Column("capture_envelope", LargeBinary),
    # Fixed when capture starts and sent to the issuer with the post, so that both sides book
    # the redemption in the same period however late a retry finishes it.
    Column("settlement_period", String(10)),
    # What the member's code is bound to and the issuer checks it against (exchange migration
    # 0004): the most points she agreed to, and the order, or none. NULL on authorizations
    # opened before bound consent.
    Column("consent_max_points", BigInteger),
    Column("consent_order_id", String(64)),
    UniqueConstraint("acquirer_id", "request_id", name="uq_authorizations_request"),
    CheckConstraint("points > 0", name="points_positive"),
    CheckConstraint(
        "status IN ('pending', 'authorized', 'capturing', 'captured', 'voiding', 'voided', "
        "'failed')",
        name="status_known",
    ),
    Index("ix_authorizations_status", "status", "updated_at"),
    Index("ix_authorizations_issuer_open", "issuer_id", "status"),
)

clearing_records = Table(
    "clearing_records",
    metadata,
    Column("clearing_id", String(40), primary_key=True),
    Column(
        "authorization_id",
        ForeignKey("authorizations.authorization_id"),
        nullable=False,
        unique=True,
    ),
    Column("issuer_id", String(64), nullable=False),
    Column("acquirer_id", String(64), nullable=False),
    Column("member_id", String(64), nullable=False),
    Column("order_id", String(64), nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("value_fen", BigInteger, nullable=False),
    Column("fee_fen", BigInteger, nullable=False),
    Column("rate_version", Integer, nullable=False),
    Column("settlement_period", String(10), nullable=False),
    Column("authorized_at", TS, nullable=False),
    Column("captured_at", TS, nullable=False),
    Column("acquirer_envelope", LargeBinary, nullable=False),
    Column("issuer_envelope", LargeBinary, nullable=False),
    # settlement.commitment.leaf_hash of the record, computed when it is written (exchange
    # migration 0005): closing a period reads these 32 bytes a record, not the records.
    Column("leaf_hash", LargeBinary),
    CheckConstraint("points > 0", name="points_positive"),
    CheckConstraint("fee_fen >= 0 AND fee_fen <= value_fen", name="fee_in_range"),
    Index("ix_clearing_records_period", "settlement_period", "issuer_id", "acquirer_id"),
)

# Signed requests received, by signer and request id: a replay returns the stored answer.
inbound_requests = Table(
    "inbound_requests",
    metadata,
    Column("signer_id", String(64), primary_key=True),
    Column("request_id", String(128), primary_key=True),
    Column("payload_type", String(128), nullable=False),
    Column("body_hash", LargeBinary, nullable=False),
    Column("answer", LargeBinary),
    Column("error_code", String(32)),
    Column("error_reason", String(64)),
    Column("error_message", String(500)),
    Column("received_at", TS, nullable=False),
)

# The hash-chained log of every signed message received and sent (law 6).
audit_log = Table(
    "audit_log",
    metadata,
    Column("sequence", Id, primary_key=True, autoincrement=False),
    Column("direction", String(3), nullable=False),
    Column("peer_id", String(64), nullable=False),
    Column("envelope", LargeBinary, nullable=False),
    Column("outcome", String(64), nullable=False),
    Column("recorded_at", TS, nullable=False),
    Column("previous_hash", LargeBinary, nullable=False),
    Column("entry_hash", LargeBinary, nullable=False),
    CheckConstraint("direction IN ('in', 'out')", name="direction_known"),
    Index("ix_audit_log_peer", "peer_id", "sequence"),
)


# Requests refused before their signature was proven, per network peer and UTC day (exchange
# migration 0004, exchange/refusals.py): how many were kept in the audit log as bounded records
# (at most a daily cap), how many were only counted (past the cap, or rate-limited), and the
# bytes they carried. The audit log's growth per unauthenticated peer is bounded by the cap.
refusal_tally = Table(
    "refusal_tally",
    metadata,
    Column("peer", String(64), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("logged", BigInteger, nullable=False),
    Column("counted_only", BigInteger, nullable=False),
    Column("rate_limited", BigInteger, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("last_at", TS, nullable=False),
)


# -- settlement ---------------------------------------------------------------------------------
# One batch per period (settlement/batches.py is its state machine). The batch row and its
# positions, transfers and mismatches are written by the settlement workflow's activities.

BATCH_STATUSES = ("open", "closed", "reconciled", "approved", "paid", "confirmed", "disputed")

settlement_batches = Table(
    "settlement_batches",
    metadata,
    Column("batch_id", String(40), primary_key=True),
    Column("period", String(10), nullable=False, unique=True),
    # The day stamps of the clearing records the period covers (a weekly or monthly period
    # spans many), inclusive.
    Column("first_day", String(10), nullable=False),
    Column("last_day", String(10), nullable=False),
    Column("status", String(10), nullable=False),
    Column("record_count", BigInteger),
    Column("value_fen", BigInteger),
    Column("fee_fen", BigInteger),
    Column("commitment_root", LargeBinary),
    Column("dispute_reason", String(500)),
    Column("approved_by", String(100)),
    Column("opened_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    CheckConstraint(
        "status IN ('open', 'closed', 'reconciled', 'approved', 'paid', 'confirmed', 'disputed')",
        name="status_known",
    ),
)

# Every transition of a batch, who made it and why: the operator's audit trail of settlement.
settlement_events = Table(
    "settlement_events",
    metadata,
    Column("batch_id", ForeignKey("settlement_batches.batch_id"), primary_key=True),
    Column("sequence", Integer, primary_key=True, autoincrement=False),
    Column("status", String(10), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("note", String(500), nullable=False),
    Column("at", TS, nullable=False),
)

settlement_positions = Table(
    "settlement_positions",
    metadata,
    Column("batch_id", ForeignKey("settlement_batches.batch_id"), primary_key=True),
    Column("party", String(64), primary_key=True),
    Column("payable_fen", BigInteger, nullable=False),
    Column("receivable_fen", BigInteger, nullable=False),
    Column("fee_fen", BigInteger, nullable=False),
    Column("net_fen", BigInteger, nullable=False),
    # What the party pays the operator for its breakage; net = receivable − fee − payable − this.
    Column("breakage_fen", BigInteger, nullable=False, server_default="0"),
)

settlement_transfers = Table(
    "settlement_transfers",
    metadata,
    Column("batch_id", ForeignKey("settlement_batches.batch_id"), primary_key=True),
    Column("sequence", Integer, primary_key=True, autoincrement=False),
    Column("payer", String(64), nullable=False),
    Column("payee", String(64), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    CheckConstraint("amount_fen > 0", name="amount_positive"),
)

# What a reconciliation round found (round 1, then one more per re-reconciliation).
settlement_mismatches = Table(
    "settlement_mismatches",
    metadata,
    Column("batch_id", ForeignKey("settlement_batches.batch_id"), primary_key=True),
    Column("round", Integer, primary_key=True, autoincrement=False),
    Column("sequence", Integer, primary_key=True, autoincrement=False),
    Column("merchant_id", String(64), nullable=False),
    Column("side", String(8)),
    Column("kind", String(24), nullable=False),
    Column("authorization_id", String(64)),
    Column("field", String(32)),
    Column("exchange_value", String(100)),
    Column("node_value", String(100)),
)

# Each issuer's breakage of a batch's period and the operator's share of it, fixed at close from
# the issuer's policy then and the node's signed word (settlement/obligations.py).
settlement_breakage = Table(
    "settlement_breakage",
    metadata,
    Column("batch_id", ForeignKey("settlement_batches.batch_id"), primary_key=True),
    Column("issuer_id", String(64), primary_key=True),
    Column("points", BigInteger, nullable=False),
    Column("value_fen", BigInteger, nullable=False),
    Column("operator_bps", Integer, nullable=False),
    Column("operator_fen", BigInteger, nullable=False),
    # The node's signed BreakageReceipt (SignedEnvelope bytes); for a period of several days,
    # every day's, length-delimited (settlement.obligations.pack_receipts).
    Column("issuer_envelope", LargeBinary, nullable=False),
    CheckConstraint("points >= 0 AND value_fen >= 0", name="amounts_not_negative"),
    CheckConstraint("operator_bps >= 0 AND operator_bps <= 10000", name="share_in_range"),
    CheckConstraint(
        "operator_fen >= 0 AND operator_fen <= value_fen", name="operator_fen_in_range"
    ),
)

# The district's flows between shops, rolled up per period (exchange/figures.py, migration 0006):
# imported here so migrations and the schema check see every table of the exchange.
from exchange import figures as _figures  # noqa: E402, F401
