"""The exchange's tamper-evident audit log: every signed message received and sent, hash-chained
(coalition_kernel.hashchain). Changing, removing or reordering any entry breaks every hash after
it; `verify_chain` finds the break.
"""

from __future__ import annotations

import weakref
from datetime import datetime

from sqlalchemy import Connection, Engine, event, func, insert, select, text

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
    """Appends one entry at the head of the chain; returns its sequence number.

    The writer lock and the head are taken once per transaction: a group commit appending the
    entries of many requests in one transaction reads the head once and then chains from the
    entry it wrote last (kept in `conn.info`). A rolled-back savepoint forgets both, since the
    entries it held are gone (and, on PostgreSQL, so is a lock taken inside it): the next append
    takes the lock again and reads the head the transaction really has.
    """
    _watch(conn.engine)
    cached = conn.info.get(_HEAD)
    if cached is None:
        lock(conn)
        cached = head(conn)
    sequence, previous = cached[0] + 1, cached[1]
    clipped = outcome[:64]
    digest = entry_hash(previous, sequence, direction, peer_id, clipped, envelope)
    conn.execute(
        _INSERT,
        dict(
            sequence=sequence,
            direction=direction,
            peer_id=peer_id,
            envelope=envelope,
            outcome=clipped,
            recorded_at=at,
            previous_hash=previous,
            entry_hash=digest,
        ),
    )
    conn.info[_HEAD] = (sequence, digest)
    return sequence


def lock(conn: Connection) -> None:
    """Takes the chain's writer lock for the rest of the transaction (PostgreSQL; SQLite
    serializes writers already). Taking it again in the same transaction is harmless."""
    if conn.dialect.name == "postgresql" and not conn.info.get(_LOCKED):
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_AUDIT_LOCK})
        _watch(conn.engine)
        conn.info[_LOCKED] = True


# Built once: SQLAlchemy memoizes a statement's cache key on the statement object, so reusing it
# skips rebuilding and re-keying the statement at every append (a quarter of the CPU a batch
# spent in SQLAlchemy, by cProfile).
_INSERT = insert(audit_log)
_HEAD_ROW = (
    select(audit_log.c.sequence, audit_log.c.entry_hash)
    .order_by(audit_log.c.sequence.desc())
    .limit(1)
)
_HEAD = "coalition_audit_head"  # conn.info: (sequence, hash) this transaction appended last
_LOCKED = "coalition_audit_locked"  # conn.info: the advisory lock is held by this transaction
_WATCHED: weakref.WeakSet[Engine] = weakref.WeakSet()


def _watch(engine: Engine) -> None:
    """What a transaction knows of the chain ends with it, or with a savepoint rolled back."""
    if engine in _WATCHED:
        return
    _WATCHED.add(engine)
    for name in ("begin", "commit", "rollback", "rollback_savepoint"):
        event.listen(engine, name, _forget)


def _forget(conn: Connection, *_: object) -> None:
    conn.info.pop(_HEAD, None)
    conn.info.pop(_LOCKED, None)


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
    row = conn.execute(_HEAD_ROW).first()
    return (row.sequence, row.entry_hash) if row else (0, GENESIS)


def count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(audit_log)).scalar_one())
