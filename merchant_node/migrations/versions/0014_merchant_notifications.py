"""Notifications to the merchant: the outbox also carries messages for the merchant herself
(the at-risk share warning, issue 13), delivered by the same dispatcher, leases and retries.

`recipient` says who is told: 'member' (every existing row; `member_pk` names her) or 'merchant'
(no member: `member_pk` is NULL). A check ties the two, so a member notification without its
member, or a merchant one naming a member, cannot be written.

SQLite cannot relax NOT NULL in place: the table is copied (batch). The outbox has no triggers;
its index, unique key and checks are carried over.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 10:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_RECIPIENT = (
    "(recipient = 'member' AND member_pk IS NOT NULL)"
    " OR (recipient = 'merchant' AND member_pk IS NULL)"
)


def upgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(
            sa.Column("recipient", sa.String(length=8), nullable=False, server_default="member")
        )
        batch.alter_column("member_pk", existing_type=_ID, nullable=True)
        batch.create_check_constraint(op.f("ck_notifications_recipient_known"), _RECIPIENT)


def downgrade() -> None:
    # Merchant notifications have no member: they cannot stay in a member-only outbox.
    op.execute("DELETE FROM notifications WHERE recipient = 'merchant'")
    with op.batch_alter_table("notifications") as batch:
        batch.drop_constraint(op.f("ck_notifications_recipient_known"), type_="check")
        batch.alter_column("member_pk", existing_type=_ID, nullable=False)
        batch.drop_column("recipient")
