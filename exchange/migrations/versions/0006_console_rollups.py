"""Console: the district's flows between shops per period, kept by a trigger on clearing
records (exchange/figures.py), so the operator's pages never scan the clearing records.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 03:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ROW = """INSERT INTO district_flows
        (settlement_period, issuer_id, acquirer_id, records, points, value_fen, fee_fen)
    VALUES (NEW.settlement_period, NEW.issuer_id, NEW.acquirer_id, 1, NEW.points,
            NEW.value_fen, NEW.fee_fen)
    ON CONFLICT (settlement_period, issuer_id, acquirer_id) DO UPDATE SET
        records = district_flows.records + 1,
        points = district_flows.points + excluded.points,
        value_fen = district_flows.value_fen + excluded.value_fen,
        fee_fen = district_flows.fee_fen + excluded.fee_fen;"""


def upgrade() -> None:
    op.create_table(
        "district_flows",
        sa.Column("settlement_period", sa.String(length=10), nullable=False),
        sa.Column("issuer_id", sa.String(length=64), nullable=False),
        sa.Column("acquirer_id", sa.String(length=64), nullable=False),
        sa.Column("records", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("value_fen", sa.BigInteger(), nullable=False),
        sa.Column("fee_fen", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "settlement_period", "issuer_id", "acquirer_id", name="pk_district_flows"
        ),
    )
    create_alerts_table()
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""CREATE FUNCTION district_flows_add() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN {_ROW} RETURN NULL; END $$"""
        )
        op.execute(
            """CREATE TRIGGER district_flows_add AFTER INSERT ON clearing_records
            FOR EACH ROW EXECUTE FUNCTION district_flows_add()"""
        )
    else:
        op.execute(
            f"""CREATE TRIGGER district_flows_add AFTER INSERT ON clearing_records
            BEGIN {_ROW} END"""
        )
    op.execute(
        """INSERT INTO district_flows
            (settlement_period, issuer_id, acquirer_id, records, points, value_fen, fee_fen)
        SELECT settlement_period, issuer_id, acquirer_id, COUNT(*), SUM(points),
               SUM(value_fen), SUM(fee_fen)
        FROM clearing_records GROUP BY settlement_period, issuer_id, acquirer_id"""
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS district_flows_add ON clearing_records")
        op.execute("DROP FUNCTION IF EXISTS district_flows_add()")
    else:
        op.execute("DROP TRIGGER IF EXISTS district_flows_add")
    op.drop_table("district_flows")
    op.drop_index("ix_console_alerts_due", table_name="console_alerts")
    op.drop_table("console_alerts")


def create_alerts_table() -> None:
    """The console's alerts outbox (coalition_kernel/alerts.py)."""
    op.create_table(
        "console_alerts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("rule_id", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=64), nullable=False),
        sa.Column("severity", sa.String(length=8), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text()),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'failed')", name="ck_console_alerts_status_known"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_console_alerts"),
        sa.UniqueConstraint("dedupe_key", name="uq_console_alerts_dedupe_key"),
    )
    op.create_index("ix_console_alerts_due", "console_alerts", ["status", "next_attempt_at"])
