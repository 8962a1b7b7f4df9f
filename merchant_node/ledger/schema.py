"""Tables of the node's ledger (SQLAlchemy Core), created by merchant_node/migrations.

The database holds the invariants too: CHECK constraints on every amount, unique order and
request ids, and (in the migration) triggers that keep the journal append-only and, on
PostgreSQL, make every journal transaction balance at commit.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from coalition_kernel.db import Id, UtcDateTime, new_metadata

metadata = new_metadata()

TS = UtcDateTime()

rate_versions = Table(
    "rate_versions",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("points_per_yuan", String(32), nullable=False),
    Column("fen_per_point", String(32), nullable=False),
    Column("rule_version", String(64), nullable=False),
    Column("effective_from", TS, nullable=False),
)

members = Table(
    "members",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("member_id", String(64), nullable=False, unique=True),
    Column("phone", String(20)),
    Column("display_name", String(100)),
    Column("referral_code", String(16), nullable=False, unique=True),
    Column("referred_by_code", String(16)),
    Column("enrolled_at", TS, nullable=False),
    Column("lifetime_earned", BigInteger, nullable=False, default=0),
    Column("debt", BigInteger, nullable=False, default=0),
    # The secret of the member's wallet: its codes are consent to spend elsewhere. Held in clear
    # only before migration 0007; now sealed (AES-GCM, merchant_node/auth/vault.py) under the
    # node's wallet key `wallet_key_id`, which the database never holds.
    Column("wallet_secret", String(32)),
    Column("wallet_secret_sealed", LargeBinary),
    Column("wallet_key_id", String(16)),
    Column("birth_month", Integer),
    Column("tier", String(32)),
    Column("tier_grace_until", TS),
    Column("checkin_last_day", String(10)),
    Column("checkin_streak", Integer, nullable=False, default=0, server_default="0"),
    # Who referred this member (members.id); paid, both sides, at the first purchase.
    Column("referred_by_pk", BigInteger),
    CheckConstraint("lifetime_earned >= 0", name="lifetime_earned_non_negative"),
    CheckConstraint("debt >= 0", name="debt_non_negative"),
)

lots = Table(
    "lots",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("member_pk", ForeignKey("members.id"), nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("remaining", BigInteger, nullable=False),
    Column("earned_at", TS, nullable=False),
    Column("expires_at", TS),
    # Points inside the program's return window are not spendable before this time.
    Column("available_at", TS),
    Column("source_order_id", String(64), nullable=False),
    Column("rule_id", String(64), nullable=False),
    Column("rule_version", String(64), nullable=False),
    Column("rate_version", Integer, ForeignKey("rate_versions.version"), nullable=False),
    CheckConstraint("points > 0", name="points_positive"),
    CheckConstraint("remaining >= 0 AND remaining <= points", name="remaining_in_range"),
    Index("ix_lots_member_expiry", "member_pk", "expires_at", "id"),
)

earnings = Table(
    "earnings",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("order_id", String(64), nullable=False, unique=True),
    Column("member_pk", ForeignKey("members.id"), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("lot_id", ForeignKey("lots.id")),
    Column("refunded_fen", BigInteger, nullable=False, default=0),
    Column("clawed_back", BigInteger, nullable=False, default=0),
    Column("channel", String(16), nullable=False),
    Column("breakdown", Text, nullable=False),
    Column("occurred_at", TS, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("rate_version", Integer, ForeignKey("rate_versions.version"), nullable=False),
    Column("rule_version", String(64), nullable=False),
    CheckConstraint("amount_fen > 0", name="amount_positive"),
    CheckConstraint("points >= 0", name="points_non_negative"),
    CheckConstraint("refunded_fen >= 0 AND refunded_fen <= amount_fen", name="refund_in_range"),
    CheckConstraint("clawed_back >= 0 AND clawed_back <= points", name="clawback_in_range"),
    # First purchase, the daily cap and the tier measure read a member's earnings by time.
    Index("ix_earnings_member_time", "member_pk", "occurred_at"),
    # Campaign reports read a window of every member's earnings.
    Index("ix_earnings_time", "occurred_at"),
)

redemptions = Table(
    "redemptions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("order_id", String(64), nullable=False, unique=True),
    Column("member_pk", ForeignKey("members.id"), nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("value_fen", BigInteger, nullable=False),
    Column("returned", BigInteger, nullable=False, default=0),
    Column("created_at", TS, nullable=False),
    Column("rate_version", Integer, ForeignKey("rate_versions.version"), nullable=False),
    CheckConstraint("points > 0", name="points_positive"),
    CheckConstraint("value_fen >= 0", name="value_non_negative"),
    CheckConstraint("returned >= 0 AND returned <= points", name="returned_in_range"),
)

# Which lots a redemption or a hold took its points from, so a refund or a void puts them back.
allocations = Table(
    "allocations",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("redemption_id", ForeignKey("redemptions.id")),
    Column("hold_id", ForeignKey("holds.id")),
    Column("lot_id", ForeignKey("lots.id"), nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("returned", BigInteger, nullable=False, default=0),
    CheckConstraint("points > 0", name="points_positive"),
    CheckConstraint("returned >= 0 AND returned <= points", name="returned_in_range"),
    CheckConstraint("(redemption_id IS NULL) <> (hold_id IS NULL)", name="exactly_one_owner"),
    Index("ix_allocations_redemption", "redemption_id"),
    Index("ix_allocations_hold", "hold_id"),
)

HOLD_STATUSES = ("pending", "posted", "voided", "expired")

holds = Table(
    "holds",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("hold_ref", String(64), nullable=False, unique=True),
    Column("member_pk", ForeignKey("members.id"), nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("status", String(8), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("finished_at", TS),
    Column("rate_version", Integer, ForeignKey("rate_versions.version"), nullable=False),
    # Stamped by the exchange's PostHoldCommand: the period whose settlement pays for it.
    Column("settlement_period", String(10)),
    CheckConstraint("points > 0", name="points_positive"),
    CheckConstraint("status IN ('pending', 'posted', 'voided', 'expired')", name="status_known"),
    Index("ix_holds_member_status", "member_pk", "status", "expires_at"),
    Index("ix_holds_settlement_period", "settlement_period", "hold_ref"),
)

journal_transactions = Table(
    "journal_transactions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(24), nullable=False),
    Column("member_pk", ForeignKey("members.id")),
    Column("order_id", String(64)),
    Column("request_id", String(128)),
    Column("created_at", TS, nullable=False),
    Column("rate_version", Integer, ForeignKey("rate_versions.version"), nullable=False),
    Column("rule_version", String(64), nullable=False),
)

journal_lines = Table(
    "journal_lines",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    # journal_transactions.id, members.id and lots.id: checked once per statement by a trigger,
    # not by foreign keys (one query per line); node migration 0015 says why and what keeps them.
    Column("txn_id", Id, nullable=False, index=True),
    Column("account", String(24), nullable=False),
    Column("member_pk", Id),
    Column("lot_id", Id),
    Column("points", BigInteger, nullable=False),
    Column("rate_version", Integer, nullable=False),
    Column("rule_version", String(64), nullable=False),
    CheckConstraint("points <> 0", name="points_non_zero"),
    # A member's history reads her lines (an expiry batch's transaction has no member).
    Index(
        "ix_journal_lines_member",
        "member_pk",
        "txn_id",
        postgresql_where=text("member_pk IS NOT NULL"),
        sqlite_where=text("member_pk IS NOT NULL"),
    ),
)

# Journal transactions a statement left unbalanced, checked and removed at commit (PostgreSQL,
# node migration 0015); empty outside a writing transaction, unused on SQLite.
journal_unbalanced = Table(
    "journal_unbalanced",
    metadata,
    Column("txn_id", Id, primary_key=True, autoincrement=False),
)

idempotency = Table(
    "idempotency",
    metadata,
    Column("request_id", String(128), primary_key=True),
    Column("operation", String(32), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("outcome", String(8), nullable=False),
    Column("response", LargeBinary),
    Column("error_code", String(32)),
    Column("error_reason", String(64)),
    Column("error_message", Text),
    Column("created_at", TS, nullable=False),
    CheckConstraint("outcome IN ('ok', 'refused')", name="outcome_known"),
)

# One-time use of a member's consent codes: a TOTP time step, once accepted, is spent.
consent_uses = Table(
    "consent_uses",
    metadata,
    Column("member_pk", ForeignKey("members.id"), primary_key=True),
    Column("time_step", BigInteger, primary_key=True),
    Column("hold_ref", String(64), nullable=False),
    Column("used_at", TS, nullable=False),
)

CROSS_STATUSES = ("authorized", "captured", "voided")

# This merchant as acquirer: redemptions of other issuers' points here. Captured rows are the
# receivables settlement collects (law 5: each matches one clearing record at the exchange).
cross_redemptions = Table(
    "cross_redemptions",
    metadata,
    Column("authorization_id", String(64), primary_key=True),
    Column("issuer_id", String(64), nullable=False),
    Column("member_id", String(64), nullable=False),
    Column("order_id", String(64), nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("value_fen", BigInteger, nullable=False),
    Column("fee_fen", BigInteger, nullable=False),
    Column("rate_version", Integer, nullable=False),
    Column("status", String(10), nullable=False),
    Column("authorized_at", TS, nullable=False),
    Column("hold_expires_at", TS, nullable=False),
    Column("captured_at", TS),
    Column("clearing_id", String(64), unique=True),
    Column("settlement_period", String(10)),
    Column("exchange_receipt", LargeBinary),
    CheckConstraint("points > 0", name="points_positive"),
    CheckConstraint(
        "value_fen >= 0 AND fee_fen >= 0 AND fee_fen <= value_fen", name="value_in_range"
    ),
    CheckConstraint("status IN ('authorized', 'captured', 'voided')", name="status_known"),
    Index("ix_cross_redemptions_period", "settlement_period", "issuer_id"),
)

# The program's audit trail: every version applied, none ever edited.
rule_programs = Table(
    "rule_programs",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("document", Text, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("effective_from", TS, nullable=False),
    Column("applied_at", TS, nullable=False),
    Column("applied_by", String(100), nullable=False),
)

# Campaign budget pools (积分池上限): what a pool may hand out, and what it has.
budget_pools = Table(
    "budget_pools",
    metadata,
    Column("pool_id", String(64), primary_key=True),
    Column("budget", BigInteger, nullable=False),
    Column("granted", BigInteger, nullable=False, default=0),
    CheckConstraint("budget >= 0 AND granted >= 0", name="amounts_non_negative"),
)

# Rewarded check-ins, reviews, shares and referrals: each reference once, daily limits by day.
engagement_events = Table(
    "engagement_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("member_pk", ForeignKey("members.id"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("reference", String(64), nullable=False),
    Column("local_day", String(10), nullable=False),
    Column("points", BigInteger, nullable=False),
    Column("created_at", TS, nullable=False),
    UniqueConstraint("member_pk", "kind", "reference", name="uq_engagement_events_once"),
    Index("ix_engagement_events_day", "member_pk", "kind", "local_day"),
)

# -- expiry and notifications (issue 6) --------------------------------------------------------

# The breakage report reads expiries by time; the index serves any journal read by kind and time.
Index(
    "ix_journal_transactions_kind_time",
    journal_transactions.c.kind,
    journal_transactions.c.created_at,
)

NOTIFICATION_STATUSES = ("pending", "sending", "sent", "failed", "dead")

# The notifications outbox: one row per event a member is told of, written in the database
# before anything is sent; `dedupe_key` names the event, so it is enqueued once however often
# (or however concurrently) the step that finds it runs.
notifications = Table(
    "notifications",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("dedupe_key", String(200), nullable=False, unique=True),
    # Who is told (node migration 0014): a member (`member_pk` names her) or the merchant
    # herself (the at-risk share warning; no member).
    Column("recipient", String(8), nullable=False, server_default="member"),
    Column("member_pk", ForeignKey("members.id")),
    Column("kind", String(32), nullable=False),
    Column("payload", Text, nullable=False),  # JSON object
    Column("channel", String(16), nullable=False),
    Column("status", String(8), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", TS, nullable=False),
    # While 'sending': until when the dispatcher that claimed it owns it.
    Column("lease_until", TS),
    Column("last_error", Text),
    Column("created_at", TS, nullable=False),
    Column("sent_at", TS),
    CheckConstraint(
        "status IN ('pending', 'sending', 'sent', 'failed', 'dead')", name="status_known"
    ),
    CheckConstraint("attempts >= 0", name="attempts_non_negative"),
    CheckConstraint(
        "(recipient = 'member' AND member_pk IS NOT NULL)"
        " OR (recipient = 'merchant' AND member_pk IS NULL)",
        name="recipient_known",
    ),
    Index("ix_notifications_due", "status", "next_attempt_at"),
)

# How a member wants to be told: an email address, a preferred channel (none: the node's
# default, the merchant's webhook) and quiet hours (none: the node's; "none": no quiet hours).
member_contacts = Table(
    "member_contacts",
    metadata,
    Column("member_pk", ForeignKey("members.id"), primary_key=True),
    Column("email", String(254)),
    Column("preferred_channel", String(16)),
    Column("quiet_hours", String(11)),
    Column("updated_at", TS, nullable=False),
)

# Bound consent (node migration 0008). Wrong consent codes counted per member: past the limit
# her cross-shop use is locked until `locked_until` (merchant_node/ledger/consent.py). One row
# per member who ever got a code wrong; a success clears the count.
consent_guards = Table(
    "consent_guards",
    metadata,
    Column("member_pk", ForeignKey("members.id"), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("window_started_at", TS, nullable=False),
    Column("locked_until", TS),
    CheckConstraint("failures >= 0", name="failures_non_negative"),
)

# Wrong consent codes per acquirer in its current window: one merchant spraying codes over many
# members is slowed down. One row per acquirer (ids come from the exchange's registry).
consent_acquirer_failures = Table(
    "consent_acquirer_failures",
    metadata,
    Column("acquirer_id", String(64), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("window_started_at", TS, nullable=False),
    CheckConstraint("failures >= 0", name="failures_non_negative"),
)

# Callers' API keys (merchant_node/auth/schema.py, migration 0007).
from merchant_node.auth import schema as _auth_schema  # noqa: E402, F401

# Live figures' per-minute rollups (merchant_node/figures/schema.py, migration 0012).
from merchant_node.figures import schema as _figures_schema  # noqa: E402, F401

# The points mall's tables live in their own room (merchant_node/mall/schema.py), in this same
# MetaData: imported here so migrations and the schema check see every table of the node.
from merchant_node.mall import schema as _mall_schema  # noqa: E402, F401

# Member intelligence (merchant_node/marketing/schema.py): facts, segments, triggers' actions.
from merchant_node.marketing import schema as _marketing_schema  # noqa: E402, F401
