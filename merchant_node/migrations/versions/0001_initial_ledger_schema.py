"""Initial ledger schema: members, rates, lots, orders, holds, journal, idempotency.

Revision ID: 0001
Revises:
Create Date: 2026-11-23 19:07:01.830001
"""

import sqlalchemy as sa
from alembic import op

# The journal is append-only (law 1): corrections are reversing entries, never edits.
_SQLITE_APPEND_ONLY = [
    f"""CREATE TRIGGER {table}_append_only_{op_} BEFORE {op_.upper()} ON {table}
        BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"""
    for table in ("journal_transactions", "journal_lines")
    for op_ in ("update", "delete")
]

_PG_APPEND_ONLY = [
    """CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = '23514'; END $$""",
    *(
        f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
            FOR EACH ROW EXECUTE FUNCTION ledger_append_only()"""
        for table in ("journal_transactions", "journal_lines")
    ),
    # Every journal transaction balances, checked at commit (as django-hordak does).
    """CREATE FUNCTION journal_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF (SELECT COALESCE(SUM(points), 0) FROM journal_lines WHERE txn_id = NEW.txn_id) <> 0 THEN
           RAISE EXCEPTION 'journal transaction % does not balance', NEW.txn_id
             USING ERRCODE = '23514';
         END IF;
         RETURN NULL;
       END $$""",
    """CREATE CONSTRAINT TRIGGER journal_lines_balanced AFTER INSERT ON journal_lines
       DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION journal_check_balanced()""",
]


revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotency",
        sa.Column("request_id", sa.String(length=128), nullable=False),
        sa.Column("operation", sa.String(length=32), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=8), nullable=False),
        sa.Column("response", sa.LargeBinary(), nullable=True),
        sa.Column("error_code", sa.String(length=32), nullable=True),
        sa.Column("error_reason", sa.String(length=64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('ok', 'refused')", name=op.f("ck_idempotency_outcome_known")
        ),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_idempotency")),
    )
    op.create_table(
        "members",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("display_name", sa.String(length=100), nullable=True),
        sa.Column("referral_code", sa.String(length=16), nullable=False),
        sa.Column("referred_by_code", sa.String(length=16), nullable=True),
        sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lifetime_earned", sa.BigInteger(), nullable=False),
        sa.Column("debt", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("debt >= 0", name=op.f("ck_members_debt_non_negative")),
        sa.CheckConstraint(
            "lifetime_earned >= 0", name=op.f("ck_members_lifetime_earned_non_negative")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_members")),
        sa.UniqueConstraint("member_id", name=op.f("uq_members_member_id")),
        sa.UniqueConstraint("referral_code", name=op.f("uq_members_referral_code")),
    )
    op.create_table(
        "rate_versions",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("points_per_yuan", sa.String(length=32), nullable=False),
        sa.Column("fen_per_point", sa.String(length=32), nullable=False),
        sa.Column("rule_version", sa.String(length=64), nullable=False),
        sa.Column("effective_from", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_rate_versions")),
    )
    op.create_table(
        "holds",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("hold_ref", sa.String(length=64), nullable=False),
        sa.Column(
            "member_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rate_version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status IN ('pending', 'posted', 'voided', 'expired')",
            name=op.f("ck_holds_status_known"),
        ),
        sa.CheckConstraint("points > 0", name=op.f("ck_holds_points_positive")),
        sa.ForeignKeyConstraint(
            ["member_pk"], ["members.id"], name=op.f("fk_holds_member_pk_members")
        ),
        sa.ForeignKeyConstraint(
            ["rate_version"],
            ["rate_versions.version"],
            name=op.f("fk_holds_rate_version_rate_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_holds")),
        sa.UniqueConstraint("hold_ref", name=op.f("uq_holds_hold_ref")),
    )
    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.create_index(
            "ix_holds_member_status", ["member_pk", "status", "expires_at"], unique=False
        )

    op.create_table(
        "journal_transactions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("member_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("order_id", sa.String(length=64), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rate_version", sa.Integer(), nullable=False),
        sa.Column("rule_version", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_pk"], ["members.id"], name=op.f("fk_journal_transactions_member_pk_members")
        ),
        sa.ForeignKeyConstraint(
            ["rate_version"],
            ["rate_versions.version"],
            name=op.f("fk_journal_transactions_rate_version_rate_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journal_transactions")),
    )
    with op.batch_alter_table("journal_transactions", schema=None) as batch_op:
        batch_op.create_index("ix_journal_transactions_member", ["member_pk", "id"], unique=False)

    op.create_table(
        "lots",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "member_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("remaining", sa.BigInteger(), nullable=False),
        sa.Column("earned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("source_order_id", sa.String(length=64), nullable=False),
        sa.Column("rule_id", sa.String(length=64), nullable=False),
        sa.Column("rule_version", sa.String(length=64), nullable=False),
        sa.Column("rate_version", sa.Integer(), nullable=False),
        sa.CheckConstraint("points > 0", name=op.f("ck_lots_points_positive")),
        sa.CheckConstraint(
            "remaining >= 0 AND remaining <= points", name=op.f("ck_lots_remaining_in_range")
        ),
        sa.ForeignKeyConstraint(
            ["member_pk"], ["members.id"], name=op.f("fk_lots_member_pk_members")
        ),
        sa.ForeignKeyConstraint(
            ["rate_version"],
            ["rate_versions.version"],
            name=op.f("fk_lots_rate_version_rate_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lots")),
    )
    with op.batch_alter_table("lots", schema=None) as batch_op:
        batch_op.create_index(
            "ix_lots_member_expiry", ["member_pk", "expires_at", "id"], unique=False
        )

    op.create_table(
        "redemptions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column(
            "member_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("value_fen", sa.BigInteger(), nullable=False),
        sa.Column("returned", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rate_version", sa.Integer(), nullable=False),
        sa.CheckConstraint("points > 0", name=op.f("ck_redemptions_points_positive")),
        sa.CheckConstraint(
            "returned >= 0 AND returned <= points", name=op.f("ck_redemptions_returned_in_range")
        ),
        sa.CheckConstraint("value_fen >= 0", name=op.f("ck_redemptions_value_non_negative")),
        sa.ForeignKeyConstraint(
            ["member_pk"], ["members.id"], name=op.f("fk_redemptions_member_pk_members")
        ),
        sa.ForeignKeyConstraint(
            ["rate_version"],
            ["rate_versions.version"],
            name=op.f("fk_redemptions_rate_version_rate_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_redemptions")),
        sa.UniqueConstraint("order_id", name=op.f("uq_redemptions_order_id")),
    )
    op.create_table(
        "allocations",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "redemption_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("hold_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("lot_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("returned", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "(redemption_id IS NULL) <> (hold_id IS NULL)",
            name=op.f("ck_allocations_exactly_one_owner"),
        ),
        sa.CheckConstraint("points > 0", name=op.f("ck_allocations_points_positive")),
        sa.CheckConstraint(
            "returned >= 0 AND returned <= points", name=op.f("ck_allocations_returned_in_range")
        ),
        sa.ForeignKeyConstraint(
            ["hold_id"], ["holds.id"], name=op.f("fk_allocations_hold_id_holds")
        ),
        sa.ForeignKeyConstraint(["lot_id"], ["lots.id"], name=op.f("fk_allocations_lot_id_lots")),
        sa.ForeignKeyConstraint(
            ["redemption_id"],
            ["redemptions.id"],
            name=op.f("fk_allocations_redemption_id_redemptions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_allocations")),
    )
    with op.batch_alter_table("allocations", schema=None) as batch_op:
        batch_op.create_index("ix_allocations_hold", ["hold_id"], unique=False)
        batch_op.create_index("ix_allocations_redemption", ["redemption_id"], unique=False)

    op.create_table(
        "earnings",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column(
            "member_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("lot_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("refunded_fen", sa.BigInteger(), nullable=False),
        sa.Column("clawed_back", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("breakdown", sa.Text(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rate_version", sa.Integer(), nullable=False),
        sa.Column("rule_version", sa.String(length=64), nullable=False),
        sa.CheckConstraint("amount_fen > 0", name=op.f("ck_earnings_amount_positive")),
        sa.CheckConstraint(
            "clawed_back >= 0 AND clawed_back <= points", name=op.f("ck_earnings_clawback_in_range")
        ),
        sa.CheckConstraint("points >= 0", name=op.f("ck_earnings_points_non_negative")),
        sa.CheckConstraint(
            "refunded_fen >= 0 AND refunded_fen <= amount_fen",
            name=op.f("ck_earnings_refund_in_range"),
        ),
        sa.ForeignKeyConstraint(["lot_id"], ["lots.id"], name=op.f("fk_earnings_lot_id_lots")),
        sa.ForeignKeyConstraint(
            ["member_pk"], ["members.id"], name=op.f("fk_earnings_member_pk_members")
        ),
        sa.ForeignKeyConstraint(
            ["rate_version"],
            ["rate_versions.version"],
            name=op.f("fk_earnings_rate_version_rate_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_earnings")),
        sa.UniqueConstraint("order_id", name=op.f("uq_earnings_order_id")),
    )
    op.create_table(
        "journal_lines",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("txn_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account", sa.String(length=24), nullable=False),
        sa.Column("member_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("lot_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("rate_version", sa.Integer(), nullable=False),
        sa.Column("rule_version", sa.String(length=64), nullable=False),
        sa.CheckConstraint("points <> 0", name=op.f("ck_journal_lines_points_non_zero")),
        sa.ForeignKeyConstraint(["lot_id"], ["lots.id"], name=op.f("fk_journal_lines_lot_id_lots")),
        sa.ForeignKeyConstraint(
            ["member_pk"], ["members.id"], name=op.f("fk_journal_lines_member_pk_members")
        ),
        sa.ForeignKeyConstraint(
            ["txn_id"],
            ["journal_transactions.id"],
            name=op.f("fk_journal_lines_txn_id_journal_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journal_lines")),
    )
    with op.batch_alter_table("journal_lines", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_journal_lines_txn_id"), ["txn_id"], unique=False)

    dialect = op.get_bind().dialect.name
    for statement in _PG_APPEND_ONLY if dialect == "postgresql" else _SQLITE_APPEND_ONLY:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS ledger_append_only() CASCADE")
        op.execute("DROP FUNCTION IF EXISTS journal_check_balanced() CASCADE")
    with op.batch_alter_table("journal_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_journal_lines_txn_id"))

    op.drop_table("journal_lines")
    op.drop_table("earnings")
    with op.batch_alter_table("allocations", schema=None) as batch_op:
        batch_op.drop_index("ix_allocations_redemption")
        batch_op.drop_index("ix_allocations_hold")

    op.drop_table("allocations")
    op.drop_table("redemptions")
    with op.batch_alter_table("lots", schema=None) as batch_op:
        batch_op.drop_index("ix_lots_member_expiry")

    op.drop_table("lots")
    with op.batch_alter_table("journal_transactions", schema=None) as batch_op:
        batch_op.drop_index("ix_journal_transactions_member")

    op.drop_table("journal_transactions")
    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.drop_index("ix_holds_member_status")

    op.drop_table("holds")
    op.drop_table("rate_versions")
    op.drop_table("members")
    op.drop_table("idempotency")
