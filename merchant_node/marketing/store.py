"""Reads and writes of member intelligence's own tables (adapters; no decisions here)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Row, func, insert, select

from merchant_node.ledger.schema import members
from merchant_node.marketing import definitions as defs
from merchant_node.marketing.schema import (
    marketing_definitions,
    member_facts,
    member_segments,
    order_lines,
)
from merchant_node.rules.base import LineItem


def record_order_lines(
    conn: Connection,
    member_pk: int,
    order_id: str,
    items: Sequence[LineItem],
    occurred_at: datetime,
) -> None:
    """The order's lines as bought (one statement): what the facts' categories read."""
    conn.execute(
        insert(order_lines),
        [
            dict(
                order_id=order_id,
                member_pk=member_pk,
                sku=item.sku,
                category=item.category or "-",
                amount_fen=item.quantity * item.unit_price_fen,
                occurred_at=occurred_at,
            )
            for item in items
        ],
    )


@dataclass(frozen=True)
class StoredDefinitions:
    kind: str
    version: int
    document: str
    digest: str
    applied_at: datetime
    applied_by: str


def digest(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def add_definitions(
    conn: Connection, kind: str, document: str, applied_at: datetime, applied_by: str
) -> StoredDefinitions:
    """Appends `document` as the next version of `kind`, unless it equals the current one."""
    current = latest_definitions(conn, kind)
    if current is not None and current.digest == digest(document):
        return current
    version = 1 if current is None else current.version + 1
    row = StoredDefinitions(kind, version, document, digest(document), applied_at, applied_by)
    conn.execute(
        insert(marketing_definitions).values(
            kind=kind,
            version=version,
            document=document,
            digest=row.digest,
            applied_at=applied_at,
            applied_by=applied_by,
        )
    )
    return row


def _stored(row: Row) -> StoredDefinitions:  # type: ignore[type-arg]
    return StoredDefinitions(
        row.kind, row.version, row.document, row.digest, row.applied_at, row.applied_by
    )


def latest_definitions(conn: Connection, kind: str) -> StoredDefinitions | None:
    row = conn.execute(
        select(marketing_definitions)
        .where(marketing_definitions.c.kind == kind)
        .order_by(marketing_definitions.c.version.desc())
        .limit(1)
    ).first()
    return None if row is None else _stored(row)


def definitions_version(conn: Connection, kind: str, version: int) -> StoredDefinitions | None:
    row = conn.execute(
        select(marketing_definitions).where(
            marketing_definitions.c.kind == kind, marketing_definitions.c.version == version
        )
    ).first()
    return None if row is None else _stored(row)


def list_definitions(conn: Connection, kind: str) -> list[StoredDefinitions]:
    rows = conn.execute(
        select(marketing_definitions)
        .where(marketing_definitions.c.kind == kind)
        .order_by(marketing_definitions.c.version)
    )
    return [_stored(row) for row in rows]


def facts_of(conn: Connection, member_pk: int) -> Row | None:  # type: ignore[type-arg]
    return conn.execute(select(member_facts).where(member_facts.c.member_pk == member_pk)).first()


def segment_of(conn: Connection, member_pk: int) -> Row | None:  # type: ignore[type-arg]
    return conn.execute(
        select(member_segments).where(member_segments.c.member_pk == member_pk)
    ).first()


def segment_counts(conn: Connection) -> dict[str, int]:
    rows = conn.execute(
        select(member_segments.c.segment, func.count()).group_by(member_segments.c.segment)
    )
    return {segment: int(n) for segment, n in rows}


def current_segments(conn: Connection) -> tuple[defs.Definitions, int]:
    """The merchant's segments document in force and its version (the defaults, 0, before any)."""
    stored = latest_definitions(conn, "segments")
    if stored is None:
        return defs.default_definitions(), 0
    return defs.parse_definitions(stored.document), stored.version


def at_risk(conn: Connection, limit: int) -> list[Row]:  # type: ignore[type-arg]
    """Members of the at-risk segments, most at risk first: fewest expected orders (the model,
    when fitted), then longest silence. Columns: member_id, segment, churn_cause,
    recency_days, p_alive_bps, expected_orders_90d_milli, spend_365d_fen."""
    definitions, _ = current_segments(conn)
    f, s = member_facts.c, member_segments.c
    return list(
        conn.execute(
            select(members.c.member_id, s.segment, f.churn_cause, f.recency_days)
            .add_columns(f.p_alive_bps, f.expected_orders_90d_milli, f.spend_365d_fen)
            .join_from(member_segments, member_facts, f.member_pk == s.member_pk)
            .join(members, members.c.id == s.member_pk)
            .where(s.segment.in_(definitions.churn.at_risk_segments))
            .order_by(
                func.coalesce(f.expected_orders_90d_milli, 0),
                f.recency_days.desc(),
                members.c.member_id,
            )
            .limit(limit)
        )
    )
