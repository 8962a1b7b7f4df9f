"""An earning's writes in one round trip, on PostgreSQL.

What `earning.issue_points` and the earning row write one statement at a time — the lot, the
journal transaction and its two lines, the member's lifetime figure, the earning — is one
statement here: data-modifying CTEs, the ids passed from one part to the next inside the
database. The same rows, the same values, the same constraints: the journal still balances at
commit (the deferred trigger of migrations 0001/0009), a second earning of the order still
fails on the unique order id. The statement also reads the member's spendable points; every
part of it sees the database as it was before the statement, so the new lot is added to that
sum here, when it is spendable now.

With budget pools to draw on, the same statement draws them too, all or nothing: it locks the
pools' rows in id order, and only if every pool has room for its whole ask does it grant them
and write the earning; otherwise it writes nothing and says so (the caller then grants what the
pools have and books the cut earning). The pools' rows are hot (every earning of a campaign
draws on the same few) and their locks are held to the commit, so they are taken by the
earning's last write, as before with a savepoint and an UPDATE per pool, now without either.

Only for the common case: points to issue, no clawback debt to pay first. SQLite has no
data-modifying CTEs; there, and in every other case, the statements stay as they were.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Connection, Integer, String, Text, bindparam, text

from coalition_kernel.db import UtcDateTime
from merchant_node.ledger import domain, programs
from merchant_node.ledger.store import Context

_TS = UtcDateTime()
_BOOKING = """lot AS (
  INSERT INTO lots (member_pk, points, remaining, earned_at, expires_at, available_at,
                    source_order_id, rule_id, rule_version, rate_version)
  SELECT :pk, :points, :points, :occurred_at, :expires_at, :available_at,
         :order_id, :rule_id, :rule_version, :rate_version WHERE {go}
  RETURNING id
), txn AS (
  INSERT INTO journal_transactions (kind, member_pk, order_id, request_id, created_at,
                                    rate_version, rule_version)
  SELECT :kind, :pk, :order_id, :request_id, :now, :rate_version, :rule_version WHERE {go}
  RETURNING id
), lines AS (
  INSERT INTO journal_lines (txn_id, account, member_pk, lot_id, points, rate_version,
                             rule_version)
  SELECT txn.id, :issuance, NULL, NULL, -(:points), :rate_version, :rule_version FROM txn
  UNION ALL
  SELECT txn.id, :available, :pk, lot.id, :points, :rate_version, :rule_version FROM txn, lot
), credit AS (
  UPDATE members SET lifetime_earned = lifetime_earned + :points WHERE id = :pk AND {go}
), earning AS (
  INSERT INTO earnings (order_id, member_pk, amount_fen, points, lot_id, refunded_fen,
                        clawed_back, channel, breakdown, occurred_at, created_at,
                        rate_version, rule_version)
  SELECT :order_id, :pk, :amount_fen, :points, lot.id, 0, 0, :channel, :breakdown,
         :occurred_at, :now, :rate_version, :rule_version FROM lot
)"""
_AVAILABLE = """(SELECT COALESCE(SUM(remaining), 0) FROM lots
  WHERE member_pk = :pk AND remaining > 0
    AND (expires_at IS NULL OR expires_at > :now)
    AND (available_at IS NULL OR available_at <= :now)) AS available"""
_PARAMS = (
    bindparam("pk", type_=BigInteger()),
    bindparam("points", type_=BigInteger()),
    bindparam("amount_fen", type_=BigInteger()),
    bindparam("rate_version", type_=Integer()),
    bindparam("occurred_at", type_=_TS),
    bindparam("expires_at", type_=_TS),
    bindparam("available_at", type_=_TS),
    bindparam("now", type_=_TS),
    bindparam("order_id", type_=String()),
    bindparam("request_id", type_=String()),
    bindparam("rule_id", type_=String()),
    bindparam("rule_version", type_=String()),
    bindparam("kind", type_=String()),
    bindparam("issuance", type_=String()),
    bindparam("available", type_=String()),
    bindparam("channel", type_=String()),
    bindparam("breakdown", type_=Text()),
)
_BOOK_EARNING = text(
    "WITH " + _BOOKING.format(go="true") + f"\nSELECT lot.id AS lot_id, {_AVAILABLE} FROM lot"
).bindparams(*_PARAMS)
# The pools' verdict is computed before anything is written (a one-time filter: every part
# waits for it), so their locks are taken in id order before any other row of theirs.
_BOOK_EARNING_DRAWING = text(
    f"""WITH {programs.POOLS_LOCKED}, verdict AS (
  SELECT count(*) = :pool_count AS in_full
    FROM ask a JOIN locked l ON l.pool_id = a.pool_id WHERE l.room >= a.points
), drawn AS (
  UPDATE budget_pools b SET granted = b.granted + a.points FROM ask a
   WHERE b.pool_id = a.pool_id AND (SELECT in_full FROM verdict)
), """
    + _BOOKING.format(go="(SELECT in_full FROM verdict)")
    + f"\nSELECT verdict.in_full, (SELECT id FROM lot) AS lot_id, {_AVAILABLE} FROM verdict"
).bindparams(*_PARAMS)


def book_earning(
    conn: Connection,
    ctx: Context,
    member_pk: int,
    points: int,
    *,
    order_id: str,
    amount_fen: int,
    channel: str,
    breakdown: str,
    rule_id: str,
    occurred_at: datetime,
    expires_at: datetime | None,
    available_at: datetime | None,
    pools: dict[str, int] | None = None,
) -> tuple[int, int] | None:
    """Issues `points` as a new lot with its journal transaction and records the earning, in
    one statement (PostgreSQL; points > 0, no debt). Returns (lot id, spendable points now).

    With `pools` (asks by pool id, from programs.asks), they are granted in the same statement
    if every one has room for its whole ask; if one has not, nothing is written and None is
    returned (the pools' rows stay locked by this transaction)."""
    params = {
        "pk": member_pk,
        "points": points,
        "amount_fen": amount_fen,
        "rate_version": ctx.rate_version,
        "occurred_at": occurred_at,
        "expires_at": expires_at,
        "available_at": available_at,
        "now": ctx.now,
        "order_id": order_id,
        "request_id": ctx.request_id,
        "rule_id": rule_id,
        "rule_version": ctx.rule_version,
        "kind": domain.EARN,
        "issuance": domain.ISSUANCE,
        "available": domain.MEMBER_AVAILABLE,
        "channel": channel,
        "breakdown": breakdown,
    }
    if pools:
        row = conn.execute(_BOOK_EARNING_DRAWING, params | programs.pool_params(pools)).one()
        if not row.in_full:
            return None
    else:
        row = conn.execute(_BOOK_EARNING, params).one()
    live = (expires_at is None or expires_at > ctx.now) and (
        available_at is None or available_at <= ctx.now
    )
    return row.lot_id, int(row.available) + (points if live else 0)
