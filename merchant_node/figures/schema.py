"""The per-minute rollup of a node's ledger (node migration 0012), in the node's one MetaData.

Rows are written by triggers, never by the application: an AFTER INSERT trigger on
journal_lines adds each line on an outside account (ISSUANCE, REDEMPTION, CROSS_REDEMPTION,
BREAKAGE, CLAWBACK) to its minute's row, and one on members counts enrolments. So earn, redeem,
the hold paths and the set-based expiry run are all counted, in their own transaction, by one
cheap upsert each, and no page ever scans the journal. `shard` (member id mod 64) spreads one
minute's writes over 64 rows so concurrent earns of different members don't queue on one row.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, PrimaryKeyConstraint, String, Table

from coalition_kernel.alerts import alerts_table
from merchant_node.ledger.schema import metadata

SHARDS = 64
# The accounts whose lines are counted: each is a flow between members and the merchant.
COUNTED_ACCOUNTS = ("ISSUANCE", "REDEMPTION", "CROSS_REDEMPTION", "BREAKAGE", "CLAWBACK")
ENROLL = "ENROLL"  # the kind of the members trigger's rows (account '')

ledger_minutes = Table(
    "ledger_minutes",
    metadata,
    Column("minute", BigInteger, nullable=False),  # minutes since 1970-01-01 UTC
    Column("kind", String(24), nullable=False),  # the journal transaction's kind, or ENROLL
    Column("account", String(24), nullable=False),
    Column("shard", Integer, nullable=False),
    Column("lines", BigInteger, nullable=False),  # journal lines (or enrolments) counted
    Column("points", BigInteger, nullable=False),  # their points, signed as posted
    PrimaryKeyConstraint("minute", "kind", "account", "shard", name="pk_ledger_minutes"),
)

# Alerts the console's rules raised about this shop, and their delivery (coalition_kernel.alerts).
console_alerts = alerts_table(metadata)
