"""POS API clients (hashed keys, scopes, limits) and wallet secrets encrypted at rest.

`api_clients` holds each caller's key id, the digest of its secret, its scopes and limits.
`members.wallet_secret_sealed` (with `wallet_key_id`) holds the member's wallet secret sealed
with AES-GCM. Sealing needs the node's wallet key, which the database never holds, so this step
only adds the columns: the node seals any clear `members.wallet_secret` (and clears it, and
blanks the secret in stored enrollment answers) when it next starts with its key
(merchant_node/auth/vault.py `reseal`, run by `open_ledger`).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 03:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_clients",
        sa.Column("key_id", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("secret_digest", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("max_points_per_earn", sa.BigInteger(), nullable=True),
        sa.Column("max_points_per_redeem", sa.BigInteger(), nullable=True),
        sa.Column("max_order_fen", sa.BigInteger(), nullable=True),
        sa.Column("calls_per_minute", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "coalesce(max_points_per_earn, 0) >= 0 AND coalesce(max_points_per_redeem, 0) >= 0 "
            "AND coalesce(max_order_fen, 0) >= 0 AND coalesce(calls_per_minute, 0) >= 0",
            name=op.f("ck_api_clients_limits_non_negative"),
        ),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_api_clients")),
    )
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("wallet_secret_sealed", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("wallet_key_id", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_column("wallet_key_id")
        batch_op.drop_column("wallet_secret_sealed")
    op.drop_table("api_clients")
