"""The exchange's tamper-evident audit log: every signed message received and sent, hash-chained.

entry_hash = SHA-256(previous_hash ‖ sequence (8 bytes, big-endian) ‖ direction ‖ 0x00 ‖ peer_id
‖ 0x00 ‖ outcome ‖ 0x00 ‖ SHA-256(envelope bytes)). Changing, removing or reordering any entry
breaks every hash after it; `verify_chain` finds the first break.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, insert, select, text

from exchange.schema import audit_log

GENESIS = bytes(32)
_PG_AUDIT_LOCK = 0x636F616C  # one writer at a time appends to the chain


@dataclass(frozen=True)
class Entry:
    sequence: int
    direction: str
    peer_id: str
    envelope: bytes
    outcome: str
    recorded_at: datetime
    previous_hash: bytes
    entry_hash: bytes


def entry_hash(
    previous: bytes, sequence: int, direction: str, peer_id: str, outcome: str, envelope: bytes
) -> bytes:
    h = hashlib.sha256()
    h.update(previous)
    h.update(sequence.to_bytes(8, "big"))
    h.update(f"{direction}\x00{peer_id}\x00{outcome}\x00".encode())
    h.update(hashlib.sha256(envelope).digest())
    return h.digest()


def append(
    conn: Connection, direction: str, peer_id: str, envelope: bytes, outcome: str, at: datetime
) -> int:
    """Appends one entry at the head of the chain; returns its sequence number."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_AUDIT_LOCK})
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


def verify_entries(entries: Iterable[Entry], *, contiguous: bool) -> list[str]:
    """Checks each entry's hash; with `contiguous`, also that each links to the one before."""
    problems: list[str] = []
    previous: Entry | None = None
    for e in entries:
        expected = entry_hash(
            e.previous_hash, e.sequence, e.direction, e.peer_id, e.outcome, e.envelope
        )
        if expected != e.entry_hash:
            problems.append(f"entry {e.sequence}: its hash does not match its contents")
        if contiguous:
            want_prev = previous.entry_hash if previous else GENESIS
            want_seq = previous.sequence + 1 if previous else 1
            if e.sequence != want_seq:
                problems.append(
                    f"entry {e.sequence}: expected sequence {want_seq} (an entry is missing)"
                )
            if e.previous_hash != want_prev:
                problems.append(f"entry {e.sequence}: does not link to the entry before it")
        previous = e
    return problems


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
