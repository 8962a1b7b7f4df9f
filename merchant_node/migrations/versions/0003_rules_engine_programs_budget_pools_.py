"""Rules engine: programs, budget pools, engagement, tiers, pending lots.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 19:56:03.238388
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "budget_pools",
        sa.Column("pool_id", sa.String(length=64), nullable=False),
        sa.Column("budget", sa.BigInteger(), nullable=False),
        sa.Column("granted", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "budget >= 0 AND granted >= 0", name=op.f("ck_budget_pools_amounts_non_negative")
        ),
        sa.PrimaryKeyConstraint("pool_id", name=op.f("pk_budget_pools")),
    )
    op.create_table(
        "rule_programs",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("effective_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("applied_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_rule_programs")),
    )
    op.create_table(
        "engagement_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "member_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("local_day", sa.String(length=10), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_pk"], ["members.id"], name=op.f("fk_engagement_events_member_pk_members")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_engagement_events")),
        sa.UniqueConstraint("member_pk", "kind", "reference", name="uq_engagement_events_once"),
    )
    with op.batch_alter_table("engagement_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_engagement_events_day", ["member_pk", "kind", "local_day"], unique=False
        )

    with op.batch_alter_table("earnings", schema=None) as batch_op:
        batch_op.create_index("ix_earnings_member_time", ["member_pk", "occurred_at"], unique=False)

    with op.batch_alter_table("lots", schema=None) as batch_op:
        batch_op.add_column(sa.Column("available_at", sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("birth_month", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("tier", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("tier_grace_until", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("checkin_last_day", sa.String(length=10), nullable=True))
        batch_op.add_column(
            sa.Column("checkin_streak", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("referred_by_pk", sa.BigInteger(), nullable=True))

    # The program's audit trail is append-only, like the journal.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """CREATE TRIGGER rule_programs_append_only BEFORE UPDATE OR DELETE ON rule_programs
               FOR EACH ROW EXECUTE FUNCTION ledger_append_only()"""
        )
    else:
        for op_ in ("update", "delete"):
            op.execute(
                f"""CREATE TRIGGER rule_programs_append_only_{op_} BEFORE {op_.upper()}
                    ON rule_programs
                    BEGIN SELECT RAISE(ABORT, 'rule_programs is append-only'); END"""
            )


def downgrade() -> None:
    with op.batch_alter_table("earnings", schema=None) as batch_op:
        batch_op.drop_index("ix_earnings_member_time")

    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_column("referred_by_pk")
        batch_op.drop_column("checkin_streak")
        batch_op.drop_column("checkin_last_day")
        batch_op.drop_column("tier_grace_until")
        batch_op.drop_column("tier")
        batch_op.drop_column("birth_month")

    with op.batch_alter_table("lots", schema=None) as batch_op:
        batch_op.drop_column("available_at")

    with op.batch_alter_table("engagement_events", schema=None) as batch_op:
        batch_op.drop_index("ix_engagement_events_day")

    op.drop_table("engagement_events")
    op.drop_table("rule_programs")
    op.drop_table("budget_pools")
