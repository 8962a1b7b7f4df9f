"""Tables of member intelligence (node migration 0010), on the ledger's MetaData.

Facts and segments are recomputed each night from the ledger, set-based; they are derived data
and may be rebuilt any time. Definitions and trigger actions are history: never edited.
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

from coalition_kernel.db import Id, UtcDateTime
from merchant_node.ledger.schema import metadata

TS = UtcDateTime()

# The categories an order's lines were in: written by the earning that books the order, read by
# the facts (category preferences and their shift) and by association analysis.
order_lines = Table(
    "order_lines",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("order_id", String(64), nullable=False),
    Column("member_pk", ForeignKey("members.id"), nullable=False),
    Column("sku", String(64), nullable=False),
    Column("category", String(64), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("occurred_at", TS, nullable=False),
    CheckConstraint("amount_fen >= 0", name="amount_non_negative"),
    Index("ix_order_lines_member_time", "member_pk", "occurred_at"),
    Index("ix_order_lines_order", "order_id"),
)


def _count(name: str) -> Column:  # type: ignore[type-arg]
    return Column(name, BigInteger, nullable=False, default=0, server_default="0")


# One row per member: the nightly facts (or one member's, recomputed on demand). Amounts are fen
# net of refunds; shares are basis points; windows end at `as_of`.
member_facts = Table(
    "member_facts",
    metadata,
    Column("member_pk", ForeignKey("members.id"), primary_key=True),
    Column("as_of", TS, nullable=False),
    Column("first_order_at", TS),
    Column("last_order_at", TS),
    # Days since the last order (since enrolment for a member who never bought).
    _count("recency_days"),
    _count("tenure_days"),
    _count("orders_30d"),
    _count("orders_90d"),
    _count("orders_365d"),
    _count("orders_total"),
    _count("spend_30d_fen"),
    _count("spend_90d_fen"),
    _count("spend_365d_fen"),
    _count("spend_total_fen"),
    _count("avg_order_90d_fen"),
    _count("avg_order_365d_fen"),
    # Orders of the last 365 days paid partly with points (a redemption on the same order).
    _count("points_paid_orders_365d"),
    _count("points_paid_share_bps"),
    _count("earned_points_365d"),
    _count("redeemed_points_365d"),
    _count("redemption_rate_bps"),
    # Orders of the last 365 days credited by a campaign rule: response to campaigns.
    _count("campaign_orders_365d"),
    _count("campaign_share_bps"),
    # Orders of the last 365 days placed 17:00-23:59 in the node's zone (visit times).
    _count("evening_share_bps"),
    # Top category by spend in the 90 days up to the last order, and in the 275 days before.
    Column("top_category_90d", String(64)),
    Column("top_category_prev", String(64)),
    Column("category_shift", Boolean, nullable=False, default=False, server_default="0"),
    # Churn model (nightly): P(alive), expected orders over 90 days, expected value per order.
    Column("p_alive_bps", Integer),
    Column("expected_orders_90d_milli", BigInteger),
    Column("expected_order_value_fen", BigInteger),
    Column("churn_cause", String(24)),
    CheckConstraint("orders_total >= 0 AND spend_total_fen >= 0", name="totals_non_negative"),
)

DEFINITION_KINDS = ("segments", "triggers")

# Every applied version of a merchant's segment/tag definitions and trigger definitions.
marketing_definitions = Table(
    "marketing_definitions",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("document", Text, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("applied_at", TS, nullable=False),
    Column("applied_by", String(100), nullable=False),
    CheckConstraint("kind IN ('segments', 'triggers')", name="kind_known"),
)

# Each member's current segment, RFM scores and tags (",tag_a,tag_b," so one LIKE finds a tag),
# under the definitions version that decided them; reasons come from that version's rules.
member_segments = Table(
    "member_segments",
    metadata,
    Column("member_pk", ForeignKey("members.id"), primary_key=True),
    Column("definitions_version", Integer, nullable=False),
    Column("segment", String(32), nullable=False),
    Column("r_score", Integer, nullable=False),
    Column("f_score", Integer, nullable=False),
    Column("m_score", Integer, nullable=False),
    Column("tags", Text, nullable=False),
    Column("computed_at", TS, nullable=False),
    Index("ix_member_segments_segment", "segment"),
)

# What each trigger decided for each member, once per (trigger, member, occasion): the frequency
# cap and the report read it; `in_control` members are recorded and told nothing.
trigger_actions = Table(
    "trigger_actions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("trigger_id", String(64), nullable=False),
    Column("trigger_version", Integer, nullable=False),
    Column("member_pk", ForeignKey("members.id"), nullable=False),
    Column("occasion", String(32), nullable=False),
    Column("in_control", Boolean, nullable=False),
    Column("action", String(16), nullable=False),
    Column("decided_at", TS, nullable=False),
    UniqueConstraint("trigger_id", "member_pk", "occasion", name="uq_trigger_actions_once"),
    Index("ix_trigger_actions_member_time", "member_pk", "decided_at"),
)

# One row per nightly run: the at-risk share, so a jump can be told to the merchant.
marketing_runs = Table(
    "marketing_runs",
    metadata,
    Column("run_day", String(10), primary_key=True),
    Column("as_of", TS, nullable=False),
    Column("members", BigInteger, nullable=False),
    Column("at_risk", BigInteger, nullable=False),
    Column("at_risk_share_bps", Integer, nullable=False),
    Column("warned", Boolean, nullable=False),
    # The churn model fitted that night (JSON: BG/NBD r, alpha, a, b; Gamma-Gamma p, q, v).
    Column("model_params", Text),
)
