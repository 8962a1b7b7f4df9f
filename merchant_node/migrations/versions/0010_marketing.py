"""Member intelligence: order lines' categories, member facts, segment/trigger definitions,
members' segments and tags, trigger actions, nightly runs (merchant_node/marketing/schema.py).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 03:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_TS = sa.DateTime(timezone=True)


def _member_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["member_pk"], ["members.id"], name=op.f(f"fk_{table}_member_pk_members")
    )


def _count(name: str) -> sa.Column:
    return sa.Column(name, sa.BigInteger(), server_default="0", nullable=False)


_FACT_COUNTS = [
    "recency_days",
    "tenure_days",
    "orders_30d",
    "orders_90d",
    "orders_365d",
    "orders_total",
    "spend_30d_fen",
    "spend_90d_fen",
    "spend_365d_fen",
    "spend_total_fen",
    "avg_order_90d_fen",
    "avg_order_365d_fen",
    "points_paid_orders_365d",
    "points_paid_share_bps",
    "earned_points_365d",
    "redeemed_points_365d",
    "redemption_rate_bps",
    "campaign_orders_365d",
    "campaign_share_bps",
    "evening_share_bps",
]


def upgrade() -> None:
    op.create_table(
        "order_lines",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("member_pk", _ID, nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("occurred_at", _TS, nullable=False),
        sa.CheckConstraint("amount_fen >= 0", name=op.f("ck_order_lines_amount_non_negative")),
        _member_fk("order_lines"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_lines")),
    )
    op.create_index("ix_order_lines_member_time", "order_lines", ["member_pk", "occurred_at"])
    op.create_index("ix_order_lines_order", "order_lines", ["order_id"])

    op.create_table(
        "member_facts",
        sa.Column("member_pk", _ID, nullable=False),
        sa.Column("as_of", _TS, nullable=False),
        sa.Column("first_order_at", _TS, nullable=True),
        sa.Column("last_order_at", _TS, nullable=True),
        *[_count(name) for name in _FACT_COUNTS],
        sa.Column("top_category_90d", sa.String(length=64), nullable=True),
        sa.Column("top_category_prev", sa.String(length=64), nullable=True),
        sa.Column("category_shift", sa.Boolean(), server_default="0", nullable=False),
        sa.Column("p_alive_bps", sa.Integer(), nullable=True),
        sa.Column("expected_orders_90d_milli", sa.BigInteger(), nullable=True),
        sa.Column("expected_order_value_fen", sa.BigInteger(), nullable=True),
        sa.Column("churn_cause", sa.String(length=24), nullable=True),
        sa.CheckConstraint(
            "orders_total >= 0 AND spend_total_fen >= 0",
            name=op.f("ck_member_facts_totals_non_negative"),
        ),
        _member_fk("member_facts"),
        sa.PrimaryKeyConstraint("member_pk", name=op.f("pk_member_facts")),
    )

    op.create_table(
        "marketing_definitions",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("applied_at", _TS, nullable=False),
        sa.Column("applied_by", sa.String(length=100), nullable=False),
        sa.CheckConstraint(
            "kind IN ('segments', 'triggers')", name=op.f("ck_marketing_definitions_kind_known")
        ),
        sa.PrimaryKeyConstraint("kind", "version", name=op.f("pk_marketing_definitions")),
    )

    op.create_table(
        "member_segments",
        sa.Column("member_pk", _ID, nullable=False),
        sa.Column("definitions_version", sa.Integer(), nullable=False),
        sa.Column("segment", sa.String(length=32), nullable=False),
        sa.Column("r_score", sa.Integer(), nullable=False),
        sa.Column("f_score", sa.Integer(), nullable=False),
        sa.Column("m_score", sa.Integer(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("computed_at", _TS, nullable=False),
        _member_fk("member_segments"),
        sa.PrimaryKeyConstraint("member_pk", name=op.f("pk_member_segments")),
    )
    op.create_index("ix_member_segments_segment", "member_segments", ["segment"])

    op.create_table(
        "trigger_actions",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("trigger_id", sa.String(length=64), nullable=False),
        sa.Column("trigger_version", sa.Integer(), nullable=False),
        sa.Column("member_pk", _ID, nullable=False),
        sa.Column("occasion", sa.String(length=32), nullable=False),
        sa.Column("in_control", sa.Boolean(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("decided_at", _TS, nullable=False),
        _member_fk("trigger_actions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trigger_actions")),
        sa.UniqueConstraint("trigger_id", "member_pk", "occasion", name="uq_trigger_actions_once"),
    )
    op.create_index(
        "ix_trigger_actions_member_time", "trigger_actions", ["member_pk", "decided_at"]
    )

    op.create_table(
        "marketing_runs",
        sa.Column("run_day", sa.String(length=10), nullable=False),
        sa.Column("as_of", _TS, nullable=False),
        sa.Column("members", sa.BigInteger(), nullable=False),
        sa.Column("at_risk", sa.BigInteger(), nullable=False),
        sa.Column("at_risk_share_bps", sa.Integer(), nullable=False),
        sa.Column("warned", sa.Boolean(), nullable=False),
        sa.Column("model_params", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("run_day", name=op.f("pk_marketing_runs")),
    )


def downgrade() -> None:
    for table in (
        "marketing_runs",
        "trigger_actions",
        "member_segments",
        "marketing_definitions",
        "member_facts",
        "order_lines",
    ):
        op.drop_table(table)
