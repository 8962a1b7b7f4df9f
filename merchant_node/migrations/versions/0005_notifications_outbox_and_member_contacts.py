"""Expiry and notifications: the notifications outbox, members' contacts, journal by kind and time.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("member_pk", _ID, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'sending', 'sent', 'failed', 'dead')",
            name=op.f("ck_notifications_status_known"),
        ),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_notifications_attempts_non_negative")),
        sa.ForeignKeyConstraint(
            ["member_pk"], ["members.id"], name=op.f("fk_notifications_member_pk_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_notifications_dedupe_key")),
    )
    op.create_index("ix_notifications_due", "notifications", ["status", "next_attempt_at"])

    op.create_table(
        "member_contacts",
        sa.Column("member_pk", _ID, nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("preferred_channel", sa.String(length=16), nullable=True),
        sa.Column("quiet_hours", sa.String(length=11), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_pk"], ["members.id"], name=op.f("fk_member_contacts_member_pk_members")
        ),
        sa.PrimaryKeyConstraint("member_pk", name=op.f("pk_member_contacts")),
    )

    # A plain CREATE INDEX: a batch (copy-and-move) on SQLite would drop the append-only triggers.
    op.create_index(
        "ix_journal_transactions_kind_time", "journal_transactions", ["kind", "created_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_journal_transactions_kind_time", "journal_transactions")
    op.drop_table("member_contacts")
    op.drop_index("ix_notifications_due", "notifications")
    op.drop_table("notifications")
