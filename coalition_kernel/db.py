"""The one place engines are made and transactions are run.

SQLite (the embedded default) serializes writers itself: every transaction starts with
BEGIN IMMEDIATE, so two writers never interleave, and `FOR UPDATE` (which SQLite drops) is not
needed there. PostgreSQL runs READ COMMITTED with row locks taken by the service layer; a
serialization failure or deadlock is retried whole here, a few times, before it surfaces as ABORTED.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import (
    BigInteger,
    Connection,
    DateTime,
    Dialect,
    Engine,
    Integer,
    MetaData,
    create_engine,
    event,
)
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.types import TypeDecorator

from coalition_kernel.errors import Aborted, DeadlineExceeded, InvalidArgument, Unavailable

T = TypeVar("T")

# The caller's deadline (time.monotonic()), set by the RPC layer: work still uncommitted when it
# passes is rolled back, so a call its client gave up on changes nothing.
deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("deadline", default=None)

# SQLSTATEs worth retrying the whole transaction for: serialization_failure, deadlock_detected.
_RETRYABLE_PG = {"40001", "40P01"}


def make_engine(url: str, *, pool_size: int = 16) -> Engine:
    """An engine for a node's or the exchange's database, tuned per dialect."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=pool_size
        )
        _make_sqlite_transactional(engine)
        return engine
    engine = create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_recycle=1800)
    _ping_when_idle(engine)
    return engine


# A pooled connection is pinged (`SELECT 1`) only when it comes back to work after sitting idle
# this long: a restart of the server or an idle timeout has dropped it, likely. A busy one is
# not: pool_pre_ping's round trip on every checkout was a sixth of an earn's on PostgreSQL
# (bench/node_bench.py). One that dropped while busy fails its transaction's first statement;
# SQLAlchemy then invalidates it and every older connection of the pool, and run_in_transaction
# runs the work again on a new one (nothing was committed: see there).
PING_AFTER_IDLE_SECONDS = 1.0
_IDLE_SINCE = "coalition_idle_since"


def _ping_when_idle(engine: Engine) -> None:
    dialect = engine.dialect

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_conn, record):  # type: ignore[no-untyped-def]
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_conn, record, _proxy):  # type: ignore[no-untyped-def]
        # `info` is cleared when the connection is replaced: a new one is not pinged.
        since = record.info.get(_IDLE_SINCE)
        if since is None or time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            dialect.do_ping(dbapi_conn)
        except dialect.loaded_dbapi.Error as exc:
            if dialect.is_disconnect(exc, dbapi_conn, None):
                # SQLAlchemy's documented signal: the pool drops this one and connects anew.
                raise DisconnectionError("dropped while idle in the pool") from exc
            raise


def _make_sqlite_transactional(engine: Engine) -> None:
    # pysqlite's legacy transaction handling issues no BEGIN before SELECTs; take control of it
    # (SQLAlchemy's documented recipe) and make every transaction a writer-exclusive one.
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):  # type: ignore[no-untyped-def]
        # A long read (settling a period) must not hold the write lock: a deferred BEGIN reads
        # one WAL snapshot for the whole transaction while writers go on.
        if conn.get_execution_options().get(READ_ONLY):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")


# Execution option for a read-only transaction: `conn.execution_options(**{READ_ONLY: True})`.
READ_ONLY = "coalition_read_only"


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


# SQLite has one writer at a time. Left to its busy handler, waiting writers sleep and retry in
# no fair order and the unlucky ones wait seconds; queueing them in-process keeps waits short.
_SQLITE_WRITERS: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()
_SQLITE_WRITERS_GUARD = threading.Lock()


def _writer_queue(engine: Engine) -> contextlib.AbstractContextManager[object]:
    if not is_sqlite(engine):
        return contextlib.nullcontext()
    with _SQLITE_WRITERS_GUARD:
        return _SQLITE_WRITERS.setdefault(engine, threading.Lock())


@contextlib.contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """One writer transaction, as `run_in_transaction` opens it but without its retries or
    deadline: commit on exit, rollback on an exception (coalition_kernel/group_commit.py)."""
    with _writer_queue(engine), engine.connect() as conn, conn.begin():
        yield conn


@contextlib.contextmanager
def _transaction(engine: Engine) -> Iterator[Connection]:
    with transaction(engine) as conn:
        yield conn
        _check_deadline("before commit")


def _check_deadline(when: str) -> None:
    limit = deadline.get()
    if limit is not None and time.monotonic() >= limit:
        raise DeadlineExceeded(
            "DEADLINE_EXCEEDED", f"the call's deadline passed {when}; nothing changed"
        )


def run_in_transaction(engine: Engine, work: Callable[[Connection], T], *, attempts: int = 5) -> T:
    """Runs `work` in one transaction: commit on return, rollback on any exception.

    Transient conflicts (serialization failure, deadlock) re-run `work` from the start, and so
    does a connection found lost before the commit was sent (the server rolled that transaction
    back), once; lost again, or lost while committing (the outcome is unknown), it surfaces as
    UNAVAILABLE, which clients may retry with the same request id.
    """
    reconnected = False
    for attempt in range(1, attempts + 1):
        _check_deadline("before the work began")
        committing = False
        try:
            with _transaction(engine) as conn:
                result = work(conn)
                committing = True
            return result
        except DBAPIError as exc:
            sqlstate = getattr(exc.orig, "pgcode", None)
            if sqlstate in _RETRYABLE_PG and attempt < attempts:
                time.sleep(0.002 * attempt)
                continue
            if (
                exc.connection_invalidated
                and not committing
                and not reconnected
                and attempt < attempts
            ):
                reconnected = True
                continue
            if sqlstate in _RETRYABLE_PG:
                raise Aborted(
                    "CONCURRENT_UPDATE", "too much contention; retry the request"
                ) from exc
            if exc.connection_invalidated or isinstance(exc, OperationalError):
                raise Unavailable(
                    "DATABASE_UNAVAILABLE", "the ledger database is unreachable"
                ) from exc
            raise
        except ValueError as exc:
            # psycopg2 refuses a NUL character in any text it sends: a caller's field held one
            # (found by tests/exchange/test_extreme_inputs.py). Nothing was written.
            if "NUL (0x00)" in str(exc):
                raise InvalidArgument(
                    "MALFORMED_TEXT", "a text field holds a NUL (0x00) character"
                ) from exc
            raise
    raise AssertionError("unreachable")


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on PostgreSQL (timestamptz) and SQLite (text) alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the ledger; use an aware UTC datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_metadata() -> MetaData:
    """A MetaData with the constraint naming convention every schema of ours uses, so that
    migrations can name (and later drop) constraints the same way on SQLite and PostgreSQL."""
    return MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


# Surrogate keys: BIGINT, except on SQLite, which autoincrements INTEGER PRIMARY KEY only.
Id = BigInteger().with_variant(Integer, "sqlite")
