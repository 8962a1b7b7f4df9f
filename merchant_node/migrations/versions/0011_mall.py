"""The points mall: catalog and its audit, orders, coupons, lotteries with their prizes and draws.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 03:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "mall_audit",
        sa.Column("id", _ID, nullable=False),
        sa.Column("item_id", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mall_audit")),
    )
    op.create_index("ix_mall_audit_item", "mall_audit", ["item_id", "id"], unique=False)
    op.create_table(
        "mall_coupons",
        sa.Column("code", sa.String(length=20), nullable=False),
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("item_id", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=True),
        sa.Column("draw_id", sa.String(length=200), nullable=True),
        sa.Column("value_fen", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("redeemed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("till_id", sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "status IN ('issued', 'redeemed', 'withdrawn')",
            name=op.f("ck_mall_coupons_status_known"),
        ),
        sa.CheckConstraint("value_fen >= 0", name=op.f("ck_mall_coupons_value_non_negative")),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_mall_coupons")),
    )
    op.create_index("ix_mall_coupons_due", "mall_coupons", ["status", "expires_at"], unique=False)
    op.create_index(
        "ix_mall_coupons_member", "mall_coupons", ["member_id", "issued_at"], unique=False
    )
    op.create_index("ix_mall_coupons_order", "mall_coupons", ["order_id"], unique=False)
    op.create_table(
        "mall_items",
        sa.Column("item_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("price_points", sa.BigInteger(), nullable=False),
        sa.Column("price_fen", sa.BigInteger(), nullable=False),
        sa.Column("stock_total", sa.BigInteger(), nullable=False),
        sa.Column("stock_left", sa.BigInteger(), nullable=False),
        sa.Column("per_member_limit", sa.BigInteger(), nullable=False),
        sa.Column("per_member_daily_limit", sa.BigInteger(), nullable=False),
        sa.Column("available_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("available_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tiers", sa.Text(), nullable=False),
        sa.Column("priority_hours", sa.Integer(), nullable=False),
        sa.Column("priority_top_n", sa.Integer(), nullable=False),
        sa.Column("priority_tiers", sa.Text(), nullable=False),
        sa.Column("coupon_value_fen", sa.BigInteger(), nullable=False),
        sa.Column("coupon_valid_days", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('pickup', 'delivery', 'coupon', 'virtual_card')",
            name=op.f("ck_mall_items_kind_known"),
        ),
        sa.CheckConstraint(
            "price_points >= 0 AND price_fen >= 0", name=op.f("ck_mall_items_price_non_negative")
        ),
        sa.CheckConstraint(
            "stock_left >= 0 AND stock_left <= stock_total",
            name=op.f("ck_mall_items_stock_in_range"),
        ),
        sa.PrimaryKeyConstraint("item_id", name=op.f("pk_mall_items")),
    )
    op.create_table(
        "mall_lotteries",
        sa.Column("lottery_id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("price_points", sa.BigInteger(), nullable=False),
        sa.Column("total_weight", sa.BigInteger(), nullable=False),
        sa.Column("budget_fen", sa.BigInteger(), nullable=False),
        sa.Column("awarded_fen", sa.BigInteger(), nullable=False),
        sa.Column("commitment", sa.String(length=64), nullable=False),
        sa.Column("seed", sa.String(length=128), nullable=False),
        sa.Column("revealed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("opens_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "awarded_fen >= 0 AND awarded_fen <= budget_fen",
            name=op.f("ck_mall_lotteries_within_budget"),
        ),
        sa.CheckConstraint(
            "price_points > 0 AND total_weight > 0",
            name=op.f("ck_mall_lotteries_price_and_weight_positive"),
        ),
        sa.PrimaryKeyConstraint("lottery_id", name=op.f("pk_mall_lotteries")),
    )
    op.create_table(
        "mall_lottery_draws",
        sa.Column("draw_id", sa.String(length=200), nullable=False),
        sa.Column("lottery_id", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("roll", sa.BigInteger(), nullable=False),
        sa.Column("drawn_prize_id", sa.String(length=64), nullable=True),
        sa.Column("awarded", sa.Boolean(), nullable=False),
        sa.Column("coupon_code", sa.String(length=20), nullable=True),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("hold_ref", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["lottery_id"],
            ["mall_lotteries.lottery_id"],
            name=op.f("fk_mall_lottery_draws_lottery_id_mall_lotteries"),
        ),
        sa.PrimaryKeyConstraint("draw_id", name=op.f("pk_mall_lottery_draws")),
        sa.UniqueConstraint("hold_ref", name=op.f("uq_mall_lottery_draws_hold_ref")),
    )
    op.create_index(
        "ix_mall_lottery_draws_lottery", "mall_lottery_draws", ["lottery_id", "at"], unique=False
    )
    op.create_table(
        "mall_lottery_prizes",
        sa.Column("lottery_id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("prize_id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("weight", sa.BigInteger(), nullable=False),
        sa.Column("stock", sa.BigInteger(), nullable=False),
        sa.Column("stock_left", sa.BigInteger(), nullable=False),
        sa.Column("value_fen", sa.BigInteger(), nullable=False),
        sa.Column("valid_days", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "stock_left >= 0 AND stock_left <= stock",
            name=op.f("ck_mall_lottery_prizes_stock_in_range"),
        ),
        sa.CheckConstraint("weight > 0", name=op.f("ck_mall_lottery_prizes_weight_positive")),
        sa.ForeignKeyConstraint(
            ["lottery_id"],
            ["mall_lotteries.lottery_id"],
            name=op.f("fk_mall_lottery_prizes_lottery_id_mall_lotteries"),
        ),
        sa.PrimaryKeyConstraint("lottery_id", "position", name=op.f("pk_mall_lottery_prizes")),
        sa.UniqueConstraint("lottery_id", "prize_id", name="uq_mall_lottery_prizes_id"),
    )
    op.create_table(
        "mall_orders",
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("member_pk", _ID, nullable=True),
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("item_id", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("cash_fen", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("hold_ref", sa.String(length=64), nullable=True),
        sa.Column("issuer_id", sa.String(length=64), nullable=False),
        sa.Column("authorization_id", sa.String(length=64), nullable=True),
        sa.Column("local_day", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pay_by", sa.DateTime(timezone=True), nullable=True),
        sa.Column("payment_ref", sa.String(length=128), nullable=True),
        sa.Column("fulfilment_note", sa.String(length=200), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('awaiting_payment', 'confirmed', 'fulfilled', 'cancelled', 'lapsed', "
            "'refunded')",
            name=op.f("ck_mall_orders_status_known"),
        ),
        sa.CheckConstraint(
            "points >= 0 AND cash_fen >= 0", name=op.f("ck_mall_orders_amounts_non_negative")
        ),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_mall_orders_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["item_id"], ["mall_items.item_id"], name=op.f("fk_mall_orders_item_id_mall_items")
        ),
        sa.ForeignKeyConstraint(
            ["member_pk"], ["members.id"], name=op.f("fk_mall_orders_member_pk_members")
        ),
        sa.PrimaryKeyConstraint("order_id", name=op.f("pk_mall_orders")),
        sa.UniqueConstraint("hold_ref", name=op.f("uq_mall_orders_hold_ref")),
    )
    op.create_index("ix_mall_orders_due", "mall_orders", ["status", "pay_by"], unique=False)
    op.create_index(
        "ix_mall_orders_member_item",
        "mall_orders",
        ["member_id", "item_id", "local_day"],
        unique=False,
    )
    op.create_index("ix_mall_orders_time", "mall_orders", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_mall_orders_time", table_name="mall_orders")
    op.drop_index("ix_mall_orders_member_item", table_name="mall_orders")
    op.drop_index("ix_mall_orders_due", table_name="mall_orders")
    op.drop_table("mall_orders")
    op.drop_table("mall_lottery_prizes")
    op.drop_index("ix_mall_lottery_draws_lottery", table_name="mall_lottery_draws")
    op.drop_table("mall_lottery_draws")
    op.drop_table("mall_lotteries")
    op.drop_table("mall_items")
    op.drop_index("ix_mall_coupons_order", table_name="mall_coupons")
    op.drop_index("ix_mall_coupons_member", table_name="mall_coupons")
    op.drop_index("ix_mall_coupons_due", table_name="mall_coupons")
    op.drop_table("mall_coupons")
    op.drop_index("ix_mall_audit_item", table_name="mall_audit")
    op.drop_table("mall_audit")
