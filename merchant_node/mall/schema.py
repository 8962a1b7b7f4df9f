"""Tables of the points mall (node migration 0011), in the node's one MetaData.

The database keeps the mall's invariants too: stock never below zero nor above what was put on
the shelf, one coupon code once, one draw id once, a lottery never paying out past its budget.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from merchant_node.ledger.schema import TS, metadata

ITEM_KINDS = ("pickup", "delivery", "coupon", "virtual_card")
ORDER_STATUSES = (
    "awaiting_payment",
    "confirmed",
    "fulfilled",
    "cancelled",
    "lapsed",
    "refunded",
)
COUPON_STATUSES = ("issued", "redeemed", "withdrawn")  # expiry is decided by expires_at

mall_items = Table(
    "mall_items",
    metadata,
    Column("item_id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("price_points", BigInteger, nullable=False),
    Column("price_fen", BigInteger, nullable=False),
    Column("stock_total", BigInteger, nullable=False),
    Column("stock_left", BigInteger, nullable=False),
    Column("per_member_limit", BigInteger, nullable=False),
    Column("per_member_daily_limit", BigInteger, nullable=False),
    Column("available_from", TS),
    Column("available_until", TS),
    Column("tiers", Text, nullable=False),  # JSON list
    Column("priority_hours", Integer, nullable=False),
    Column("priority_top_n", Integer, nullable=False),
    Column("priority_tiers", Text, nullable=False),  # JSON list
    Column("coupon_value_fen", BigInteger, nullable=False),
    Column("coupon_valid_days", Integer, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("updated_at", TS, nullable=False),
    # Segment / tag reservation (JSON lists, matched against marketing's member_segments).
    Column("segments", Text, nullable=False, server_default="[]"),
    Column("tags", Text, nullable=False, server_default="[]"),
    # Coupons bought from this item need an order of at least this much at the till (0: none).
    Column("coupon_min_spend_fen", BigInteger, nullable=False, server_default="0"),
    CheckConstraint("price_points >= 0 AND price_fen >= 0", name="price_non_negative"),
    CheckConstraint("stock_left >= 0 AND stock_left <= stock_total", name="stock_in_range"),
    CheckConstraint(f"kind IN {ITEM_KINDS}", name="kind_known"),
)

# Every catalog change, never edited: who changed what, and the item as it became.
mall_audit = Table(
    "mall_audit",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("item_id", String(64), nullable=False),
    Column("action", String(16), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("document", Text, nullable=False),
    Column("at", TS, nullable=False),
    Index("ix_mall_audit_item", "item_id", "id"),
)

mall_orders = Table(
    "mall_orders",
    metadata,
    Column("order_id", String(64), primary_key=True),
    Column("member_pk", ForeignKey("members.id")),  # none when paid with another issuer's points
    Column("member_id", String(64), nullable=False),
    Column("item_id", ForeignKey("mall_items.item_id"), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("cash_fen", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    # The ledger hold of this merchant's points (none when another issuer's points paid).
    Column("hold_ref", String(64), unique=True),
    Column("issuer_id", String(64), nullable=False),
    Column("authorization_id", String(64)),
    Column("local_day", String(10), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("pay_by", TS),
    Column("payment_ref", String(128)),
    Column("fulfilment_note", String(200)),
    Column("finished_at", TS),
    CheckConstraint("quantity > 0", name="quantity_positive"),
    CheckConstraint("points >= 0 AND cash_fen >= 0", name="amounts_non_negative"),
    CheckConstraint(f"status IN {ORDER_STATUSES}", name="status_known"),
    Index("ix_mall_orders_member_item", "member_id", "item_id", "local_day"),
    Index("ix_mall_orders_due", "status", "pay_by"),
    Index("ix_mall_orders_time", "created_at"),
)

mall_coupons = Table(
    "mall_coupons",
    metadata,
    Column("code", String(20), primary_key=True),
    Column("member_id", String(64), nullable=False),
    Column("item_id", String(64), nullable=False),
    Column("order_id", String(64)),
    Column("draw_id", String(200)),
    Column("value_fen", BigInteger, nullable=False),
    Column("status", String(10), nullable=False),
    Column("issued_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("redeemed_at", TS),
    Column("till_id", String(64)),
    # The order amount RedeemCoupon needs (满200减50: 20000); 0: none.
    Column("min_spend_fen", BigInteger, nullable=False, server_default="0"),
    CheckConstraint("value_fen >= 0", name="value_non_negative"),
    CheckConstraint(f"status IN {COUPON_STATUSES}", name="status_known"),
    Index("ix_mall_coupons_member", "member_id", "issued_at"),
    Index("ix_mall_coupons_due", "status", "expires_at"),
    Index("ix_mall_coupons_order", "order_id"),
)

lotteries = Table(
    "mall_lotteries",
    metadata,
    Column("lottery_id", String(64), primary_key=True),
    Column("title", String(200), nullable=False),
    Column("price_points", BigInteger, nullable=False),
    Column("total_weight", BigInteger, nullable=False),
    Column("budget_fen", BigInteger, nullable=False),
    Column("awarded_fen", BigInteger, nullable=False),
    Column("commitment", String(64), nullable=False),
    # The secret seed (hex), kept by the node to draw with; published once revealed_at is set.
    Column("seed", String(128), nullable=False),
    Column("revealed_at", TS),
    Column("opens_at", TS, nullable=False),
    Column("closes_at", TS, nullable=False),
    Column("created_at", TS, nullable=False),
    CheckConstraint("price_points > 0 AND total_weight > 0", name="price_and_weight_positive"),
    CheckConstraint("awarded_fen >= 0 AND awarded_fen <= budget_fen", name="within_budget"),
)

lottery_prizes = Table(
    "mall_lottery_prizes",
    metadata,
    Column("lottery_id", ForeignKey("mall_lotteries.lottery_id"), primary_key=True),
    Column("position", Integer, primary_key=True, autoincrement=False),
    Column("prize_id", String(64), nullable=False),
    Column("title", String(200), nullable=False),
    Column("weight", BigInteger, nullable=False),
    Column("stock", BigInteger, nullable=False),
    Column("stock_left", BigInteger, nullable=False),
    Column("value_fen", BigInteger, nullable=False),
    Column("valid_days", Integer, nullable=False),
    CheckConstraint("weight > 0", name="weight_positive"),
    CheckConstraint("stock_left >= 0 AND stock_left <= stock", name="stock_in_range"),
    UniqueConstraint("lottery_id", "prize_id", name="uq_mall_lottery_prizes_id"),
)

lottery_draws = Table(
    "mall_lottery_draws",
    metadata,
    Column("draw_id", String(200), primary_key=True),
    Column("lottery_id", ForeignKey("mall_lotteries.lottery_id"), nullable=False),
    Column("member_id", String(64), nullable=False),
    Column("roll", BigInteger, nullable=False),
    Column("drawn_prize_id", String(64)),
    Column("awarded", Boolean, nullable=False),
    Column("coupon_code", String(20)),
    Column("points", BigInteger, nullable=False),
    Column("hold_ref", String(64), nullable=False, unique=True),
    Column("at", TS, nullable=False),
    Index("ix_mall_lottery_draws_lottery", "lottery_id", "at"),
)
