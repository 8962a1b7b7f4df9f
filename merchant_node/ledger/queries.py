"""Read side: balances and history. Reads decide expiry by timestamp, never by sweeps."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, case, func, or_, select

from coalition_kernel.errors import InvalidArgument
from merchant_node.ledger import domain
from merchant_node.ledger.schema import (
    allocations,
    holds,
    journal_lines,
    journal_transactions,
    lots,
)
from merchant_node.ledger.store import find_member


@dataclass(frozen=True)
class Balance:
    available_points: int
    held_points: int
    expiring_points: int
    expiring_before: datetime
    lifetime_earned_points: int
    debt_points: int
    pending_points: int = 0


@dataclass(frozen=True)
class HistoryEntry:
    entry_id: str
    kind: str
    available_delta: int
    held_delta: int
    debt_delta: int
    order_id: str
    created_at: datetime
    rate_version: int
    rule_version: str


def balance(conn: Connection, member_id: str, now: datetime, within_days: int) -> Balance:
    member = find_member(conn, member_id)
    horizon = now + timedelta(days=within_days)
    live = or_(lots.c.expires_at.is_(None), lots.c.expires_at > now)
    pending_lot = and_(lots.c.available_at.is_not(None), lots.c.available_at > now)
    in_lots, expiring, in_window = conn.execute(
        select(
            func.coalesce(func.sum(case((pending_lot, 0), else_=lots.c.remaining)), 0),
            func.coalesce(
                func.sum(
                    case(
                        (and_(lots.c.expires_at <= horizon, ~pending_lot), lots.c.remaining),
                        else_=0,
                    )
                ),
                0,
            ),
            func.coalesce(func.sum(case((pending_lot, lots.c.remaining), else_=0)), 0),
        ).where(lots.c.member_pk == member.id, lots.c.remaining > 0, live)
    ).one()
    pending = and_(holds.c.member_pk == member.id, holds.c.status == "pending")
    held = conn.execute(
        select(func.coalesce(func.sum(holds.c.points), 0)).where(pending, holds.c.expires_at > now)
    ).scalar_one()
    # Points of lapsed holds not yet swept are the member's again, if their lots still live.
    lapsed = conn.execute(
        select(
            func.coalesce(func.sum(allocations.c.points), 0),
            func.coalesce(
                func.sum(case((lots.c.expires_at <= horizon, allocations.c.points), else_=0)), 0
            ),
        )
        .join(holds, holds.c.id == allocations.c.hold_id)
        .join(lots, lots.c.id == allocations.c.lot_id)
        .where(pending, holds.c.expires_at <= now, live)
    ).one()
    return Balance(
        available_points=int(in_lots) + int(lapsed[0]),
        held_points=int(held),
        expiring_points=int(expiring) + int(lapsed[1]),
        expiring_before=horizon,
        lifetime_earned_points=member.lifetime_earned,
        debt_points=member.debt,
        pending_points=int(in_window),
    )


def history(
    conn: Connection, member_id: str, page_size: int, page_token: str
) -> tuple[list[HistoryEntry], str]:
    member = find_member(conn, member_id)
    before = _decode_token(page_token)

    def delta(account: str):  # type: ignore[no-untyped-def]
        amount = case((journal_lines.c.account == account, journal_lines.c.points), else_=0)
        return func.coalesce(func.sum(amount), 0)

    tx = journal_transactions
    query = (
        select(
            tx.c.id,
            tx.c.kind,
            tx.c.order_id,
            tx.c.created_at,
            tx.c.rate_version,
            tx.c.rule_version,
            delta(domain.MEMBER_AVAILABLE).label("available"),
            delta(domain.MEMBER_HELD).label("held"),
            delta(domain.MEMBER_DEBT).label("debt"),
        )
        .join(journal_lines, journal_lines.c.txn_id == tx.c.id)
        # Her lines (ix_journal_lines_member), in her own transactions or in an expiry batch's
        # (one transaction for many members, no member of its own: node migration 0015).
        .where(
            journal_lines.c.member_pk == member.id,
            or_(tx.c.member_pk == member.id, tx.c.member_pk.is_(None)),
        )
        .group_by(
            tx.c.id, tx.c.kind, tx.c.order_id, tx.c.created_at, tx.c.rate_version, tx.c.rule_version
        )
        .order_by(tx.c.id.desc())
        .limit(page_size + 1)
    )
    if before is not None:
        query = query.where(tx.c.id < before)
    rows = conn.execute(query).all()
    entries = [
        HistoryEntry(
            entry_id=str(r.id),
            kind=r.kind,
            available_delta=int(r.available),
            held_delta=int(r.held),
            debt_delta=-int(r.debt),
            order_id=r.order_id or "",
            created_at=r.created_at,
            rate_version=r.rate_version,
            rule_version=r.rule_version,
        )
        for r in rows[:page_size]
    ]
    more = len(rows) > page_size
    return entries, _encode_token(rows[page_size - 1].id) if more else ""


def _encode_token(txn_id: int) -> str:
    return base64.urlsafe_b64encode(f"h1:{txn_id}".encode()).decode()


def _decode_token(token: str) -> int | None:
    if not token:
        return None
    try:
        prefix, _, value = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        if prefix != "h1":
            raise ValueError(prefix)
        return int(value)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument(
            "BAD_PAGE_TOKEN", "page_token is not one this node issued; start again without it"
        ) from exc
