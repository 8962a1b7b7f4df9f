"""Exchange schema: registry, quotes, authorizations, clearing, requests, audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-23 19:23:20.519143
"""

import sqlalchemy as sa
from alembic import op

# The audit log and the clearing records are append-only: nothing recorded is ever edited.
_APPEND_ONLY = ("audit_log", "clearing_records")
_SQLITE = [
    f"""CREATE TRIGGER {table}_append_only_{op_} BEFORE {op_.upper()} ON {table}
        BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"""
    for table in _APPEND_ONLY
    for op_ in ("update", "delete")
]
_PG = [
    """CREATE FUNCTION exchange_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = '23514'; END $$""",
    *(
        f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION exchange_append_only()"""
        for table in _APPEND_ONLY
    ),
]


revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column(
            "sequence",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("peer_id", sa.String(length=64), nullable=False),
        sa.Column("envelope", sa.LargeBinary(), nullable=False),
        sa.Column("outcome", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("previous_hash", sa.LargeBinary(), nullable=False),
        sa.Column("entry_hash", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint("direction IN ('in', 'out')", name=op.f("ck_audit_log_direction_known")),
        sa.PrimaryKeyConstraint("sequence", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_peer", ["peer_id", "sequence"], unique=False)

    op.create_table(
        "authorizations",
        sa.Column("authorization_id", sa.String(length=40), nullable=False),
        sa.Column("acquirer_id", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("issuer_id", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("value_fen", sa.BigInteger(), nullable=False),
        sa.Column("fee_fen", sa.BigInteger(), nullable=False),
        sa.Column("rate_version", sa.Integer(), nullable=False),
        sa.Column("consent_code", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("failure_reason", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hold_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("capture_envelope", sa.LargeBinary(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'authorized', 'capturing', 'captured', 'voiding', "
            "'voided', 'failed')",
            name=op.f("ck_authorizations_status_known"),
        ),
        sa.CheckConstraint("points > 0", name=op.f("ck_authorizations_points_positive")),
        sa.PrimaryKeyConstraint("authorization_id", name=op.f("pk_authorizations")),
        sa.UniqueConstraint("acquirer_id", "request_id", name="uq_authorizations_request"),
    )
    with op.batch_alter_table("authorizations", schema=None) as batch_op:
        batch_op.create_index("ix_authorizations_status", ["status", "updated_at"], unique=False)

    op.create_table(
        "inbound_requests",
        sa.Column("signer_id", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("payload_type", sa.String(length=128), nullable=False),
        sa.Column("body_hash", sa.LargeBinary(), nullable=False),
        sa.Column("answer", sa.LargeBinary(), nullable=True),
        sa.Column("error_code", sa.String(length=32), nullable=True),
        sa.Column("error_reason", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.String(length=500), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("signer_id", "request_id", name=op.f("pk_inbound_requests")),
    )
    op.create_table(
        "merchants",
        sa.Column("merchant_id", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("fee_bps", sa.Integer(), nullable=False),
        sa.Column("endpoint", sa.String(length=255), nullable=False),
        sa.Column("onboarded_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'suspended')", name=op.f("ck_merchants_status_known")
        ),
        sa.CheckConstraint(
            "fee_bps >= 0 AND fee_bps <= 10000", name=op.f("ck_merchants_fee_in_range")
        ),
        sa.PrimaryKeyConstraint("merchant_id", name=op.f("pk_merchants")),
    )
    op.create_table(
        "quotes",
        sa.Column("quote_id", sa.String(length=40), nullable=False),
        sa.Column("acquirer_id", sa.String(length=64), nullable=False),
        sa.Column("issuer_id", sa.String(length=64), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("value_fen", sa.BigInteger(), nullable=False),
        sa.Column("fee_fen", sa.BigInteger(), nullable=False),
        sa.Column("rate_version", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("quote_id", name=op.f("pk_quotes")),
    )
    op.create_table(
        "clearing_records",
        sa.Column("clearing_id", sa.String(length=40), nullable=False),
        sa.Column("authorization_id", sa.String(length=40), nullable=False),
        sa.Column("issuer_id", sa.String(length=64), nullable=False),
        sa.Column("acquirer_id", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("value_fen", sa.BigInteger(), nullable=False),
        sa.Column("fee_fen", sa.BigInteger(), nullable=False),
        sa.Column("rate_version", sa.Integer(), nullable=False),
        sa.Column("settlement_period", sa.String(length=10), nullable=False),
        sa.Column("authorized_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acquirer_envelope", sa.LargeBinary(), nullable=False),
        sa.Column("issuer_envelope", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint(
            "fee_fen >= 0 AND fee_fen <= value_fen", name=op.f("ck_clearing_records_fee_in_range")
        ),
        sa.CheckConstraint("points > 0", name=op.f("ck_clearing_records_points_positive")),
        sa.ForeignKeyConstraint(
            ["authorization_id"],
            ["authorizations.authorization_id"],
            name=op.f("fk_clearing_records_authorization_id_authorizations"),
        ),
        sa.PrimaryKeyConstraint("clearing_id", name=op.f("pk_clearing_records")),
        sa.UniqueConstraint("authorization_id", name=op.f("uq_clearing_records_authorization_id")),
    )
    with op.batch_alter_table("clearing_records", schema=None) as batch_op:
        batch_op.create_index(
            "ix_clearing_records_period",
            ["settlement_period", "issuer_id", "acquirer_id"],
            unique=False,
        )

    op.create_table(
        "merchant_keys",
        sa.Column("merchant_id", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.merchant_id"],
            name=op.f("fk_merchant_keys_merchant_id_merchants"),
        ),
        sa.PrimaryKeyConstraint("merchant_id", "key_id", name=op.f("pk_merchant_keys")),
    )
    op.create_table(
        "merchant_rates",
        sa.Column("merchant_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("fen_per_point", sa.String(length=32), nullable=False),
        sa.Column("effective_from", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.merchant_id"],
            name=op.f("fk_merchant_rates_merchant_id_merchants"),
        ),
        sa.PrimaryKeyConstraint("merchant_id", "version", name=op.f("pk_merchant_rates")),
    )

    for statement in _PG if op.get_bind().dialect.name == "postgresql" else _SQLITE:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS exchange_append_only() CASCADE")
    op.drop_table("merchant_rates")
    op.drop_table("merchant_keys")
    with op.batch_alter_table("clearing_records", schema=None) as batch_op:
        batch_op.drop_index("ix_clearing_records_period")

    op.drop_table("clearing_records")
    op.drop_table("quotes")
    op.drop_table("merchants")
    op.drop_table("inbound_requests")
    with op.batch_alter_table("authorizations", schema=None) as batch_op:
        batch_op.drop_index("ix_authorizations_status")

    op.drop_table("authorizations")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_peer")

    op.drop_table("audit_log")
