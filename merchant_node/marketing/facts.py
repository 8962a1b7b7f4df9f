"""Member facts, set-based: one INSERT … SELECT … GROUP BY over the ledger for every member
(the nightly run), or the same statement narrowed to one member (on demand); each member's row
is written once.

Windows end at `as_of`: 30/90/365 days. Amounts are fen net of refunds; fully refunded orders
do not count. Shares are basis points of the member's orders of the last 365 days.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, bindparam, delete, select, text

from coalition_kernel.db import UtcDateTime
from merchant_node.ledger.schema import rule_programs
from merchant_node.marketing.schema import member_facts

WINDOWS = (30, 90, 365)


@dataclass(frozen=True)
class FactsScope:
    as_of: datetime
    zone: str = "Asia/Shanghai"
    member_pk: int | None = None  # None: every member


def campaign_rule_ids(conn: Connection) -> list[str]:
    """Rules tagged with a campaign in any program version: an order they credited is a
    response to a campaign. Documents are canonical JSON, so LIKE finds the versions to read."""
    ids: set[str] = set()
    documents = conn.execute(
        select(rule_programs.c.document).where(rule_programs.c.document.like('%"campaign":%'))
    ).scalars()
    for document in documents:
        for rule in json.loads(document).get("rules", []):
            if rule.get("campaign"):
                ids.add(rule["id"])
    return sorted(ids)


def _days_between(dialect: str, later: str, earlier: str) -> str:
    if dialect == "postgresql":
        return f"CAST(FLOOR(EXTRACT(EPOCH FROM ({later} - {earlier})) / 86400) AS BIGINT)"
    return f"CAST(julianday({later}) - julianday({earlier}) AS INTEGER)"


def _evening(dialect: str, column: str, zone: str, at: datetime) -> str:
    """Whether the order was placed 17:00-23:59 in the zone: the zone's offset at `as_of` (no
    DST in Asia/Shanghai) on the epoch seconds, integer arithmetic in both databases (a time
    zone conversion per row costs PostgreSQL more than the whole GROUP BY)."""
    offset = ZoneInfo(zone).utcoffset(at.replace(tzinfo=None)) or timedelta(0)
    seconds = int(offset.total_seconds())
    if dialect == "postgresql":
        epoch = f"CAST(EXTRACT(EPOCH FROM {column}) AS BIGINT)"
    else:
        epoch = f"CAST(strftime('%s', {column}) AS INTEGER)"
    return f"(({epoch} + {seconds}) % 86400 >= 61200)"


def _campaign_match(rule_ids: Sequence[str]) -> str:
    if not rule_ids:
        return "0 = 1"
    return " OR ".join(f"e.breakdown LIKE :campaign_{i}" for i in range(len(rule_ids)))


# One SELECT: the earnings per member (e), their redemptions (r) and their categories (c),
# joined to every member and inserted. Categories: the top category by spend in the 90 days up
# to the member's last order, and in the 275 days before those; a shift is a change of the two.
# Anchored on the last order, not on `as_of`: a member who went quiet (no order in the last 90
# days) still shows where their spending had moved. (Computing them in the same pass, rather
# than an UPDATE afterwards, writes each member's row once.)
_SELECT = """
WITH e AS (
    SELECT e.member_pk,
        MIN(e.occurred_at) AS first_at, MAX(e.occurred_at) AS last_at,
        COUNT(*) AS o_all,
        SUM(e.amount_fen - e.refunded_fen) AS s_all,
        SUM(CASE WHEN e.occurred_at > :d30 THEN 1 ELSE 0 END) AS o30,
        SUM(CASE WHEN e.occurred_at > :d90 THEN 1 ELSE 0 END) AS o90,
        SUM(CASE WHEN e.occurred_at > :d365 THEN 1 ELSE 0 END) AS o365,
        SUM(CASE WHEN e.occurred_at > :d30 THEN e.amount_fen - e.refunded_fen ELSE 0 END) AS s30,
        SUM(CASE WHEN e.occurred_at > :d90 THEN e.amount_fen - e.refunded_fen ELSE 0 END) AS s90,
        SUM(CASE WHEN e.occurred_at > :d365 THEN e.amount_fen - e.refunded_fen ELSE 0 END)
            AS s365,
        SUM(CASE WHEN e.occurred_at > :d365 AND rd.order_id IS NOT NULL THEN 1 ELSE 0 END)
            AS pp365,
        SUM(CASE WHEN e.occurred_at > :d365 THEN e.points - e.clawed_back ELSE 0 END)
            AS earned365,
        SUM(CASE WHEN e.occurred_at > :d365 AND ({campaign}) THEN 1 ELSE 0 END) AS c365,
        SUM(CASE WHEN e.occurred_at > :d365 AND {evening} THEN 1 ELSE 0 END) AS ev365
    FROM earnings e
    LEFT JOIN redemptions rd ON rd.order_id = e.order_id AND rd.member_pk = e.member_pk
    WHERE e.refunded_fen < e.amount_fen AND e.occurred_at <= :as_of {earning_filter}
    GROUP BY e.member_pk
),
c AS (
    SELECT member_pk,
        MAX(CASE WHEN rn_recent = 1 AND recent > 0 THEN category END) AS recent_top,
        MAX(CASE WHEN rn_prev = 1 AND prev > 0 THEN category END) AS prev_top
    FROM (
        SELECT member_pk, category, recent, prev,
            ROW_NUMBER() OVER (PARTITION BY member_pk ORDER BY recent DESC, category) AS rn_recent,
            ROW_NUMBER() OVER (PARTITION BY member_pk ORDER BY prev DESC, category) AS rn_prev
        FROM (
            SELECT ol.member_pk, ol.category,
                SUM(CASE WHEN ol.occurred_at > {d90} THEN ol.amount_fen ELSE 0 END) AS recent,
                SUM(CASE WHEN ol.occurred_at <= {d90} THEN ol.amount_fen ELSE 0 END) AS prev
            FROM order_lines ol
            JOIN e ON e.member_pk = ol.member_pk
            WHERE ol.occurred_at <= :as_of AND ol.occurred_at > {d365} {line_filter}
            GROUP BY ol.member_pk, ol.category
        ) sums
    ) ranked
    GROUP BY member_pk
)
SELECT m.id, :as_of, e.first_at, e.last_at,
    {recency}, {tenure},
    COALESCE(e.o30, 0), COALESCE(e.o90, 0), COALESCE(e.o365, 0), COALESCE(e.o_all, 0),
    COALESCE(e.s30, 0), COALESCE(e.s90, 0), COALESCE(e.s365, 0), COALESCE(e.s_all, 0),
    CASE WHEN e.o90 > 0 THEN e.s90 / e.o90 ELSE 0 END,
    CASE WHEN e.o365 > 0 THEN e.s365 / e.o365 ELSE 0 END,
    COALESCE(e.pp365, 0),
    CASE WHEN e.o365 > 0 THEN e.pp365 * 10000 / e.o365 ELSE 0 END,
    COALESCE(e.earned365, 0), COALESCE(r.redeemed365, 0),
    CASE WHEN e.earned365 > 0 THEN COALESCE(r.redeemed365, 0) * 10000 / e.earned365 ELSE 0 END,
    COALESCE(e.c365, 0),
    CASE WHEN e.o365 > 0 THEN e.c365 * 10000 / e.o365 ELSE 0 END,
    CASE WHEN e.o365 > 0 THEN e.ev365 * 10000 / e.o365 ELSE 0 END,
    c.recent_top, c.prev_top,
    CASE WHEN c.recent_top IS NOT NULL AND c.prev_top IS NOT NULL
        AND c.recent_top <> c.prev_top THEN TRUE ELSE FALSE END
FROM members m
LEFT JOIN e ON e.member_pk = m.id
LEFT JOIN (
    SELECT member_pk, SUM(points - returned) AS redeemed365
    FROM redemptions
    WHERE created_at > :d365 AND created_at <= :as_of {redemption_filter}
    GROUP BY member_pk
) r ON r.member_pk = m.id
LEFT JOIN c ON c.member_pk = m.id
WHERE m.enrolled_at <= :as_of {member_filter}
"""


# Every column the statement writes but the key, in the SELECT's order. Last night's row is
# updated in place (an upsert): no DELETE of every row first, and no foreign-key check of a key
# that did not change (PostgreSQL checks each inserted row's member). The churn columns are the
# churn step's and the placement's: kept until they rewrite them.
_REFRESHED = [
    "as_of",
    "first_order_at",
    "last_order_at",
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
    "top_category_90d",
    "top_category_prev",
    "category_shift",
]


def _before_last(dialect: str, days: int) -> str:
    """The member's last order minus `days`, as the dialect compares it with a line's time."""
    if dialect == "postgresql":
        return f"e.last_at - INTERVAL '{days} days'"
    return f"datetime(e.last_at, '-{days} days')"


def compute_facts(conn: Connection, scope: FactsScope) -> int:
    """Replaces the facts of every member (or of `scope.member_pk`); returns how many rows."""
    dialect = conn.dialect.name
    rule_ids = campaign_rule_ids(conn)
    one = scope.member_pk is not None
    ts = UtcDateTime()
    params: dict[str, object] = {
        "as_of": scope.as_of,
        **{f"d{days}": scope.as_of - timedelta(days=days) for days in WINDOWS},
        **{f"campaign_{i}": f'%"rule_id": "{rid}"%' for i, rid in enumerate(rule_ids)},
    }
    if one:
        params["pk"] = scope.member_pk
    select_sql = _SELECT.format(
        recency=_days_between(dialect, ":as_of", "COALESCE(e.last_at, m.enrolled_at)"),
        tenure=_days_between(dialect, ":as_of", "m.enrolled_at"),
        campaign=_campaign_match(rule_ids),
        evening=_evening(dialect, "e.occurred_at", scope.zone, scope.as_of),
        d90=_before_last(dialect, 90),
        d365=_before_last(dialect, 365),
        earning_filter="AND e.member_pk = :pk" if one else "",
        redemption_filter="AND member_pk = :pk" if one else "",
        line_filter="AND ol.member_pk = :pk" if one else "",
        member_filter="AND m.id = :pk" if one else "",
    )
    columns = ", ".join(_REFRESHED)
    upsert = f"""
INSERT INTO member_facts (member_pk, {columns})
{{rows}}
ON CONFLICT (member_pk) DO UPDATE SET {", ".join(f"{c} = excluded.{c}" for c in _REFRESHED)}
"""
    if dialect == "postgresql" and not one:
        # PostgreSQL computes the SELECT of a CREATE TABLE AS with parallel workers, never
        # that of an INSERT: the night's facts are computed into a temporary table (not
        # WAL-logged), then written to member_facts in one pass.
        conn.execute(
            _typed(
                f"CREATE TEMP TABLE night_facts (member_pk, {columns}) ON COMMIT DROP AS"
                + select_sql,
                params,
                ts,
            ),
            params,
        )
        rows = f"SELECT member_pk, {columns} FROM night_facts WHERE TRUE"
        count = conn.execute(text(upsert.format(rows=rows))).rowcount
    else:  # (INSERT comes first, its WITH after: SQLite counts rows of an INSERT only)
        count = conn.execute(_typed(upsert.format(rows=select_sql), params, ts), params).rowcount
    if not one:  # members no longer counted (enrolled after `as_of`): not refreshed, dropped
        conn.execute(delete(member_facts).where(member_facts.c.as_of != scope.as_of))
    return int(count)


def _typed(sql: str, params: dict[str, object], ts: UtcDateTime):  # type: ignore[no-untyped-def]
    """The statement with its datetimes bound as the ledger's UTC type (SQLite stores text)."""
    statement = text(sql)
    names = [n for n, v in params.items() if isinstance(v, datetime) and f":{n}" in sql]
    return statement.bindparams(*[bindparam(n, type_=ts) for n in names])
