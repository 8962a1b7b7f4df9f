"""Clearing leaf hashes computed at write time for settlement.

Each clearing record carries its Merkle leaf hash (settlement.commitment.leaf_hash, 32 bytes),
written by the capture that writes the record; records written before this step get theirs
here. The commitment-order index now carries the hash (PostgreSQL: INCLUDE, for index-only
scans; SQLite: a covering index), so closing a period reads the hashes in commitment order
without touching the records.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 03:45:00
"""

import sqlalchemy as sa
from alembic import op

from settlement.commitment import leaf_hash
from settlement.records import ClearingRecord

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_FIELDS = ", ".join(ClearingRecord._fields)


def upgrade() -> None:
    op.add_column("clearing_records", sa.Column("leaf_hash", sa.LargeBinary(), nullable=True))
    conn = op.get_bind()
    rows = conn.execute(sa.text(f"SELECT {_FIELDS} FROM clearing_records")).all()
    if rows:
        conn.execute(
            sa.text("UPDATE clearing_records SET leaf_hash = :h WHERE authorization_id = :a"),
            [{"h": leaf_hash(ClearingRecord._make(r)), "a": r.authorization_id} for r in rows],
        )
    if conn.dialect.name == "postgresql":
        op.execute("DROP INDEX ix_clearing_records_commitment_order")
        op.execute(
            "CREATE INDEX ix_clearing_records_commitment_order ON clearing_records "
            '(settlement_period, authorization_id COLLATE "C") INCLUDE (leaf_hash)'
        )
    else:
        op.execute(
            "CREATE INDEX ix_clearing_records_commitment_order ON clearing_records "
            "(settlement_period, authorization_id, leaf_hash)"
        )


def downgrade() -> None:
    op.execute("DROP INDEX ix_clearing_records_commitment_order")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE INDEX ix_clearing_records_commitment_order ON clearing_records "
            '(settlement_period, authorization_id COLLATE "C")'
        )
    op.drop_column("clearing_records", "leaf_hash")
