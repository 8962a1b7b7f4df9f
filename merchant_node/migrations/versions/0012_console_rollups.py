"""Console: per-minute rollups of the ledger kept by triggers (merchant_node/figures/schema.py).

Each journal line on an outside account and each enrolment is added to its minute's row in the
same transaction that writes it; existing history is rolled up once here.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 03:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

ACCOUNTS = "('ISSUANCE', 'REDEMPTION', 'CROSS_REDEMPTION', 'BREAKAGE', 'CLAWBACK')"
SHARDS = 64
_UPSERT = """ON CONFLICT (minute, kind, account, shard) DO UPDATE
    SET lines = ledger_minutes.lines + excluded.lines,
        points = ledger_minutes.points + excluded.points"""


def _minute(column: str, dialect: str) -> str:
    if dialect == "postgresql":
        return f"CAST(floor(extract(epoch FROM {column}) / 60) AS BIGINT)"
    return f"CAST(strftime('%s', {column}) AS INTEGER) / 60"


def upgrade() -> None:
    op.create_table(
        "ledger_minutes",
        sa.Column("minute", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("account", sa.String(length=24), nullable=False),
        sa.Column("shard", sa.Integer(), nullable=False),
        sa.Column("lines", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("minute", "kind", "account", "shard", name="pk_ledger_minutes"),
    )
    create_alerts_table()
    dialect = op.get_bind().dialect.name
    journal_row = f"""INSERT INTO ledger_minutes (minute, kind, account, shard, lines, points)
        SELECT {_minute("t.created_at", dialect)}, t.kind, NEW.account,
               COALESCE(t.member_pk, 0) % {SHARDS}, 1, NEW.points
        FROM journal_transactions t WHERE t.id = NEW.txn_id
        {_UPSERT};"""
    member_row = f"""INSERT INTO ledger_minutes (minute, kind, account, shard, lines, points)
        VALUES ({_minute("NEW.enrolled_at", dialect)}, 'ENROLL', '', NEW.id % {SHARDS}, 1, 0)
        {_UPSERT};"""
    if dialect == "postgresql":
        op.execute(
            f"""CREATE FUNCTION ledger_minutes_journal() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN {journal_row} RETURN NULL; END $$"""
        )
        op.execute(
            f"""CREATE TRIGGER ledger_minutes_journal AFTER INSERT ON journal_lines
            FOR EACH ROW WHEN (NEW.account IN {ACCOUNTS})
            EXECUTE FUNCTION ledger_minutes_journal()"""
        )
        op.execute(
            f"""CREATE FUNCTION ledger_minutes_members() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN {member_row} RETURN NULL; END $$"""
        )
        op.execute(
            """CREATE TRIGGER ledger_minutes_members AFTER INSERT ON members
            FOR EACH ROW EXECUTE FUNCTION ledger_minutes_members()"""
        )
    else:
        op.execute(
            f"""CREATE TRIGGER ledger_minutes_journal AFTER INSERT ON journal_lines
            WHEN NEW.account IN {ACCOUNTS} BEGIN {journal_row} END"""
        )
        op.execute(
            f"""CREATE TRIGGER ledger_minutes_members AFTER INSERT ON members
            BEGIN {member_row} END"""
        )
    # History written before this migration, rolled up once.
    op.execute(
        f"""INSERT INTO ledger_minutes (minute, kind, account, shard, lines, points)
        SELECT {_minute("t.created_at", dialect)}, t.kind, l.account,
               COALESCE(t.member_pk, 0) % {SHARDS}, COUNT(*), SUM(l.points)
        FROM journal_lines l JOIN journal_transactions t ON t.id = l.txn_id
        WHERE l.account IN {ACCOUNTS}
        GROUP BY 1, 2, 3, 4"""
    )
    op.execute(
        f"""INSERT INTO ledger_minutes (minute, kind, account, shard, lines, points)
        SELECT {_minute("m.enrolled_at", dialect)}, 'ENROLL', '', m.id % {SHARDS}, COUNT(*), 0
        FROM members m GROUP BY 1, 4"""
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS ledger_minutes_journal ON journal_lines")
        op.execute("DROP TRIGGER IF EXISTS ledger_minutes_members ON members")
        op.execute("DROP FUNCTION IF EXISTS ledger_minutes_journal()")
        op.execute("DROP FUNCTION IF EXISTS ledger_minutes_members()")
    else:
        op.execute("DROP TRIGGER IF EXISTS ledger_minutes_journal")
        op.execute("DROP TRIGGER IF EXISTS ledger_minutes_members")
    op.drop_table("ledger_minutes")
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
