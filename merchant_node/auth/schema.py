"""The table of node caller authentication (node migration 0007), in the node's one MetaData.
(Members' sealed wallet secrets are columns of `members`: merchant_node/auth/vault.py.)"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Integer,
    String,
    Table,
)

from merchant_node.ledger.schema import TS, metadata

# The callers of MerchantNodeService and RulesAdminService. Only the digest of a key's secret is
# kept; a revoked client stays (its name and dates explain old log lines), never deleted.
api_clients = Table(
    "api_clients",
    metadata,
    Column("key_id", String(16), primary_key=True),
    Column("name", String(64), nullable=False),
    Column("secret_digest", String(64), nullable=False),
    # Comma-separated, sorted: pos, read, admin.
    Column("scopes", String(64), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("revoked_at", TS),
    # The merchant's limits for this client; NULL: the node's default (node.toml).
    Column("max_points_per_earn", BigInteger),
    Column("max_points_per_redeem", BigInteger),
    Column("max_order_fen", BigInteger),
    Column("calls_per_minute", Integer),
    CheckConstraint(
        "coalesce(max_points_per_earn, 0) >= 0 AND coalesce(max_points_per_redeem, 0) >= 0 "
        "AND coalesce(max_order_fen, 0) >= 0 AND coalesce(calls_per_minute, 0) >= 0",
        name="limits_non_negative",
    ),
)
