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
    CheckConstraint("status IN ('active', 'suspended')", name="status_known"),
    CheckConstraint("fee_bps >= 0 AND fee_bps <= 10000", name="fee_in_range"),
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
    UniqueConstraint("acquirer_id", "request_id", name="uq_authorizations_request"),
    CheckConstraint("points > 0", name="points_positive"),
    CheckConstraint(
        "status IN ('pending', 'authorized', 'capturing', 'captured', 'voiding', 'voided', "
        "'failed')",
        name="status_known",
    ),
    Index("ix_authorizations_status", "status", "updated_at"),
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
