"""The nightly placement of every member, set-based: the definitions compiled to one
INSERT … SELECT (an upsert over last night's rows) with CASE expressions over member_facts (RFM
by NTILE or by thresholds), then one UPDATE writing the churn cause of the rows whose cause
changes. Decides exactly what segments.place decides for one member
(tests/merchant_node/marketing/test_segments.py holds the two equal on random facts)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, bindparam, text

from coalition_kernel.db import UtcDateTime
from merchant_node.marketing.definitions import Definitions, Rule


def _all(rule: Rule) -> str:
    return " AND ".join(c.to_sql() for c in rule.when) or "1 = 1"


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _score_sql(definitions: Definitions) -> tuple[str, str, str]:
    rfm = definitions.rfm
    if rfm.method == "quantiles":
        return (
            "NTILE(5) OVER (ORDER BY recency_days DESC, member_pk)",
            "NTILE(5) OVER (ORDER BY orders_365d, member_pk)",
            "NTILE(5) OVER (ORDER BY spend_365d_fen, member_pk)",
        )
    recency = (
        "5 - ("
        + " + ".join(
            f"CASE WHEN recency_days > {cut} THEN 1 ELSE 0 END" for cut in rfm.recency_days
        )
        + ")"
    )

    def reached(column: str, cuts: list[int]) -> str:
        return "1 + " + " + ".join(f"CASE WHEN {column} >= {cut} THEN 1 ELSE 0 END" for cut in cuts)

    return (
        recency,
        reached("orders_365d", rfm.frequency_365d),
        reached("spend_365d_fen", rfm.monetary_365d_fen),
    )


def placement_sql(definitions: Definitions, one_member: bool) -> tuple[str, str]:
    """(insert into member_segments, update of member_facts.churn_cause)."""
    r, f, m = _score_sql(definitions)
    segment = (
        "CASE "
        + " ".join(f"WHEN {_all(rule)} THEN {_quote(rule.id)}" for rule in definitions.segments)
        + f" ELSE {_quote(definitions.default_segment)} END"
    )
    tags = " || ".join(
        ["','"]
        + [
            f"CASE WHEN {_all(rule)} THEN {_quote(rule.id + ',')} ELSE '' END"
            for rule in definitions.tags
        ]
    )
    # (SQLite parses an upsert's SELECT unambiguously only with a WHERE.)
    where = "WHERE member_pk = :pk" if one_member else "WHERE 1 = 1"
    insert = f"""
INSERT INTO member_segments
    (member_pk, definitions_version, segment, r_score, f_score, m_score, tags, computed_at)
SELECT member_pk, :version, {segment}, r_score, f_score, m_score, {tags}, :now
FROM (SELECT f.*, {r} AS r_score, {f} AS f_score, {m} AS m_score FROM member_facts f) scored
{where}
ON CONFLICT (member_pk) DO UPDATE SET definitions_version = excluded.definitions_version,
    segment = excluded.segment, r_score = excluded.r_score, f_score = excluded.f_score,
    m_score = excluded.m_score, tags = excluded.tags, computed_at = excluded.computed_at
"""
    churn = definitions.churn
    cause = _quote(churn.default_cause)
    if churn.causes:
        whens = " ".join(f"WHEN {_all(rule)} THEN {_quote(rule.id)}" for rule in churn.causes)
        cause = f"CASE {whens} ELSE {cause} END"
    at_risk = ", ".join(_quote(s) for s in churn.at_risk_segments) or "''"
    one = "AND member_facts.member_pk = :pk" if one_member else ""
    # Only the rows whose cause changes are written (facts are refreshed in place and keep last
    # night's cause): a night rewrites the members who became, or stopped being, at risk or
    # whose cause moved, not every member's row again. (Causes are never '': COALESCE compares
    # NULLs as SQLite before 3.39 and PostgreSQL both can.)
    new_cause = f"CASE WHEN s.segment IN ({at_risk}) THEN {cause} ELSE NULL END"
    update = f"""
UPDATE member_facts SET churn_cause = {new_cause}
FROM member_segments s
WHERE s.member_pk = member_facts.member_pk {one}
  AND (s.segment IN ({at_risk}) OR member_facts.churn_cause IS NOT NULL)
  AND COALESCE(member_facts.churn_cause, '') <> COALESCE({new_cause}, '')
"""
    return insert, update


def place_members(
    conn: Connection,
    definitions: Definitions,
    version: int,
    now: datetime,
    member_pk: int | None = None,
) -> int:
    """Replaces the placement of every member (or one) from member_facts; returns how many."""
    one = member_pk is not None
    insert, update = placement_sql(definitions, one)
    params: dict[str, object] = {"version": version, "now": now}
    if one:
        params["pk"] = member_pk
    # Last night's placements are updated in place (no DELETE of every row, no foreign-key
    # check of unchanged keys); members without facts any more are dropped after.
    statement = text(insert).bindparams(bindparam("now", type_=UtcDateTime()))
    count = conn.execute(statement, params).rowcount
    if not one:
        conn.execute(
            text(
                "DELETE FROM member_segments WHERE NOT EXISTS (SELECT 1 FROM member_facts f"
                " WHERE f.member_pk = member_segments.member_pk)"
            )
        )
    conn.execute(text(update), {k: v for k, v in params.items() if k == "pk"})
    return int(count)
