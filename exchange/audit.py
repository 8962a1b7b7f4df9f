"""The exchange's tamper-evident audit log: every signed message received and sent, hash-chained
(coalition_kernel.hashchain). Changing, removing or reordering any entry breaks every hash after
it; `verify_chain` finds the break.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, func, insert, select, text

from coalition_kernel.hashchain import GENESIS, Entry, entry_hash, verify_entries
from exchange.schema import audit_log

__all__ = [
    "GENESIS",
    "Entry",
    "append",
    "count",
    "entry_hash",
    "head",
    "lock",
    "read",
    "verify_chain",
]
_PG_AUDIT_LOCK = 0x636F616C  # one writer at a time appends to the chain


def append(
    conn: Connection, direction: str, peer_id: str, envelope: bytes, outcome: str, at: datetime
) -> int:
    """Appends one entry at the head of the chain; returns its sequence number."""
    lock(conn)
    head = conn.execute(
        select(audit_log.c.sequence, audit_log.c.entry_hash)
        .order_by(audit_log.c.sequence.desc())
        .limit(1)
    ).first()
    sequence, previous = (head.sequence + 1, head.entry_hash) if head else (1, GENESIS)
    conn.execute(
        insert(audit_log).values(
            sequence=sequence,
            direction=direction,
            peer_id=peer_id,
            envelope=envelope,
            outcome=outcome[:64],
            recorded_at=at,
            previous_hash=previous,
            entry_hash=entry_hash(previous, sequence, direction, peer_id, outcome[:64], envelope),
        )
    )
    return sequence


def lock(conn: Connection) -> None:
    """Takes the chain's writer lock for the rest of the transaction (PostgreSQL; SQLite
    serializes writers already). Taking it again in the same transaction is harmless."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_AUDIT_LOCK})


def read(
    conn: Connection, *, peer_id: str | None = None, after: int = 0, limit: int | None = None
) -> list[Entry]:
    query = select(audit_log).where(audit_log.c.sequence > after).order_by(audit_log.c.sequence)
    if peer_id is not None:
        query = query.where(audit_log.c.peer_id == peer_id)
    if limit is not None:
        query = query.limit(limit)
    return [Entry(**row._mapping) for row in conn.execute(query)]


def verify_chain(conn: Connection) -> list[str]:
    """Walks the whole chain; returns what is broken (empty: intact)."""
    return verify_entries(read(conn), contiguous=True)


def head(conn: Connection) -> tuple[int, bytes]:
    row = conn.execute(
        select(audit_log.c.sequence, audit_log.c.entry_hash)
        .order_by(audit_log.c.sequence.desc())
        .limit(1)
    ).first()
    return (row.sequence, row.entry_hash) if row else (0, GENESIS)


def count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(audit_log)).scalar_one())
