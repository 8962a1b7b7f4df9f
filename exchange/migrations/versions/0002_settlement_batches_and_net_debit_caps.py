"""Settlement batches, positions, transfers, mismatches and events; net-debit caps; the capture
period on authorizations; the commitment-order index on clearing records.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 21:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def _batch_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["batch_id"],
        ["settlement_batches.batch_id"],
        name=op.f(f"fk_{table}_batch_id_settlement_batches"),
    )


def upgrade() -> None:
    op.create_table(
        "settlement_batches",
        sa.Column("batch_id", sa.String(length=40), nullable=False),
        sa.Column("period", sa.String(length=10), nullable=False),
        sa.Column("first_day", sa.String(length=10), nullable=False),
        sa.Column("last_day", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("record_count", sa.BigInteger(), nullable=True),
        sa.Column("value_fen", sa.BigInteger(), nullable=True),
        sa.Column("fee_fen", sa.BigInteger(), nullable=True),
        sa.Column("commitment_root", sa.LargeBinary(), nullable=True),
        sa.Column("dispute_reason", sa.String(length=500), nullable=True),
        sa.Column("approved_by", sa.String(length=100), nullable=True),
        sa.Column("opened_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.CheckConstraint(
            "status IN ('open', 'closed', 'reconciled', 'approved', 'paid', 'confirmed', "
            "'disputed')",
            name=op.f("ck_settlement_batches_status_known"),
        ),
        sa.PrimaryKeyConstraint("batch_id", name=op.f("pk_settlement_batches")),
        sa.UniqueConstraint("period", name=op.f("uq_settlement_batches_period")),
    )
    op.create_table(
        "settlement_events",
        sa.Column("batch_id", sa.String(length=40), nullable=False),
        sa.Column("sequence", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("at", _TS, nullable=False),
        _batch_fk("settlement_events"),
        sa.PrimaryKeyConstraint("batch_id", "sequence", name=op.f("pk_settlement_events")),
    )
    op.create_table(
        "settlement_positions",
        sa.Column("batch_id", sa.String(length=40), nullable=False),
        sa.Column("party", sa.String(length=64), nullable=False),
        sa.Column("payable_fen", sa.BigInteger(), nullable=False),
        sa.Column("receivable_fen", sa.BigInteger(), nullable=False),
        sa.Column("fee_fen", sa.BigInteger(), nullable=False),
        sa.Column("net_fen", sa.BigInteger(), nullable=False),
        _batch_fk("settlement_positions"),
        sa.PrimaryKeyConstraint("batch_id", "party", name=op.f("pk_settlement_positions")),
    )
    op.create_table(
        "settlement_transfers",
        sa.Column("batch_id", sa.String(length=40), nullable=False),
        sa.Column("sequence", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("payer", sa.String(length=64), nullable=False),
        sa.Column("payee", sa.String(length=64), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("amount_fen > 0", name=op.f("ck_settlement_transfers_amount_positive")),
        _batch_fk("settlement_transfers"),
        sa.PrimaryKeyConstraint("batch_id", "sequence", name=op.f("pk_settlement_transfers")),
    )
    op.create_table(
        "settlement_mismatches",
        sa.Column("batch_id", sa.String(length=40), nullable=False),
        sa.Column("round", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("sequence", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("merchant_id", sa.String(length=64), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=True),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("authorization_id", sa.String(length=64), nullable=True),
        sa.Column("field", sa.String(length=32), nullable=True),
        sa.Column("exchange_value", sa.String(length=100), nullable=True),
        sa.Column("node_value", sa.String(length=100), nullable=True),
        _batch_fk("settlement_mismatches"),
        sa.PrimaryKeyConstraint(
            "batch_id", "round", "sequence", name=op.f("pk_settlement_mismatches")
        ),
    )
    with op.batch_alter_table("merchants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("net_debit_cap_fen", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("authorizations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("settlement_period", sa.String(length=10), nullable=True))
        batch_op.create_index(
            "ix_authorizations_issuer_open", ["issuer_id", "status"], unique=False
        )
    if op.get_bind().dialect.name == "postgresql":
        # Settlement streams a period's records in code-point order of authorization id; this
        # index serves that sort without a sort step (SQLite's BINARY order needs no COLLATE).
        op.execute(
            "CREATE INDEX ix_clearing_records_commitment_order ON clearing_records "
            '(settlement_period, authorization_id COLLATE "C")'
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_clearing_records_commitment_order")
    with op.batch_alter_table("authorizations", schema=None) as batch_op:
        batch_op.drop_index("ix_authorizations_issuer_open")
        batch_op.drop_column("settlement_period")
    with op.batch_alter_table("merchants", schema=None) as batch_op:
        batch_op.drop_column("net_debit_cap_fen")
    for table in (
        "settlement_mismatches",
        "settlement_transfers",
        "settlement_positions",
        "settlement_events",
        "settlement_batches",
    ):
        op.drop_table(table)
