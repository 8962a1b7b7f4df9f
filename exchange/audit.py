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
) -> None:
    """Appends one entry to the chain, written when the transaction commits.

    The entries a transaction appends are held in `conn.info` and written just before its
    COMMIT, in one multi-row INSERT (`_flush`): the writer lock is taken and the head read
    there, once per transaction however many requests a group commit batches into it, and the
    lock is held only from then to the commit, not through the whole batch. An entry appended
    inside a savepoint that is rolled back is dropped with it. Reading the log in the same
    transaction (`read`, `head`, `count`) writes what is held first.
    """
    _watch(conn.engine)
    pending = conn.info.get(_PENDING)
    if pending is None:
        pending = conn.info[_PENDING] = []
    pending.append((direction, peer_id, envelope, outcome[:64], at))


def lock(conn: Connection) -> None:
    """Takes the chain's writer lock for the rest of the transaction (PostgreSQL; SQLite
    serializes writers already). Taking it again in the same transaction is harmless."""
    if conn.dialect.name == "postgresql" and not conn.info.get(_LOCKED):
        conn.execute(_LOCK, {"k": _PG_AUDIT_LOCK})
        _watch(conn.engine)
        conn.info[_LOCKED] = True


def _flush(conn: Connection) -> None:
    """Writes the entries this transaction appended, chained from the head, in one INSERT."""
    pending = conn.info.pop(_PENDING, None)
    if conn.info.get(_MARKS):  # held anew: a rollback drops what is appended from here on
        conn.info[_MARKS] = [0] * len(conn.info[_MARKS])
    if not pending:
        return
    lock(conn)
    sequence, previous = _head(conn)
    rows = []
    for direction, peer_id, envelope, outcome, at in pending:
        sequence += 1
        previous_hash, previous = (
            previous,
            entry_hash(previous, sequence, direction, peer_id, outcome, envelope),
        )
        rows.append(
            dict(
                sequence=sequence,
                direction=direction,
                peer_id=peer_id,
                envelope=envelope,
                outcome=outcome,
                recorded_at=at,
                previous_hash=previous_hash,
                entry_hash=previous,
            )
        )
    conn.execute(_INSERT, rows)


# Built once: SQLAlchemy memoizes a statement's cache key on the statement object, so reusing it
# skips rebuilding and re-keying the statement at every append (a quarter of the CPU a batch
# spent in SQLAlchemy, by cProfile).
_INSERT = insert(audit_log)
_LOCK = text("SELECT pg_advisory_xact_lock(:k)")
_HEAD_ROW = (
    select(audit_log.c.sequence, audit_log.c.entry_hash)
    .order_by(audit_log.c.sequence.desc())
    .limit(1)
)
_PENDING = "coalition_audit_pending"  # conn.info: entries appended, not yet written
_MARKS = "coalition_audit_marks"  # conn.info: how many were pending at each open savepoint
_LOCKED = "coalition_audit_locked"  # conn.info: the advisory lock is held by this transaction
_WATCHED: weakref.WeakSet[Engine] = weakref.WeakSet()


def _watch(engine: Engine) -> None:
    """Held entries are written at the commit and dropped at a rollback; a savepoint rolled
    back drops those appended since it (and, on PostgreSQL, a lock taken inside it)."""
    if engine in _WATCHED:
        return
    _WATCHED.add(engine)
    event.listen(engine, "commit", _flush)
    event.listen(engine, "savepoint", _mark)
    event.listen(engine, "release_savepoint", _release)
    event.listen(engine, "rollback_savepoint", _undo)
    for name in ("begin", "commit", "rollback"):
        event.listen(engine, name, _forget)


def _forget(conn: Connection, *_: object) -> None:
    conn.info.pop(_PENDING, None)
    conn.info.pop(_MARKS, None)
    conn.info.pop(_LOCKED, None)


def _mark(conn: Connection, *_: object) -> None:
    pending = conn.info.get(_PENDING)
    conn.info.setdefault(_MARKS, []).append(len(pending) if pending else 0)


def _release(conn: Connection, *_: object) -> None:
    marks = conn.info.get(_MARKS)
    if marks:
        marks.pop()


def _undo(conn: Connection, *_: object) -> None:
    marks = conn.info.get(_MARKS)
    mark = marks.pop() if marks else 0
    pending = conn.info.get(_PENDING)
    if pending:
        del pending[mark:]
    conn.info.pop(_LOCKED, None)


def read(
    conn: Connection, *, peer_id: str | None = None, after: int = 0, limit: int | None = None
) -> list[Entry]:
    _flush(conn)
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
    _flush(conn)
    return _head(conn)


def _head(conn: Connection) -> tuple[int, bytes]:
    row = conn.execute(_HEAD_ROW).first()
    return (row.sequence, row.entry_hash) if row else (0, GENESIS)


def count(conn: Connection) -> int:
    _flush(conn)
    return int(conn.execute(select(func.count()).select_from(audit_log)).scalar_one())
