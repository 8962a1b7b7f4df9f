"""Group commit: requests in flight applied together in one transaction, each outcome its own.

A node answering a POS, or the exchange logging every signed message, spends most of each request
on the commit (a WAL flush on PostgreSQL, an fsync on SQLite) and on the round trips around it.
`GroupCommit` owns one worker thread. Requests queue for it; it takes everything that queued while
its previous batch was committing (up to `max_batch`) and applies the batch in ONE transaction:

- each request's `work(conn)` runs in its own SAVEPOINT, in arrival order, so it sees the writes
  of those before it in the batch exactly as if they had committed first;
- a `work` that returns has its savepoint released; its result is handed back only after the
  whole batch has committed;
- a `work` that raises one of its `keep` exception types (a refusal whose record must stay: the
  exchange logs the refused message, the node stores the refusal under its request id) has its
  writes kept and the exception raised to that caller after the commit;
- any other exception rolls back that request's savepoint alone; the others go on. A database
  error (a conflict, a lost connection) is not that request's answer: the request is re-run alone
  through `run_in_transaction`, which retries conflicts and maps errors as it always has;
- if the commit itself fails, nothing of the batch was written, and every request is re-run alone
  the same way. `work` must be re-runnable, as `run_in_transaction` already requires.

A savepoint is two statements (SAVEPOINT, RELEASE), each a round trip on PostgreSQL. A batch of
one request takes none: a failure rolls the whole transaction back, which is what rolling its
savepoint back and committing nothing came to. An `optimistic` committer (for callers whose
requests seldom fail otherwise than by a `keep` refusal: the exchange) applies every batch
without savepoints first; if a request fails in a way only its own savepoint could undo, the
transaction is rolled back and the batch applied again, a savepoint per request, as above. On
PostgreSQL a batch whose transaction was left aborted (a work that swallowed a database error)
is not committed: COMMIT would silently roll it back; its requests are re-run alone.

The caller's `deadline` (coalition_kernel.db) is honoured: a request whose deadline has passed
before its turn is refused DEADLINE_EXCEEDED with nothing written, and one whose deadline passes
while its own work runs has its savepoint rolled back. Between a request's savepoint and the
batch's commit lie only the later requests of the same batch (a few milliseconds).

PostgreSQL keeps up to 64 subtransactions per transaction in shared memory before it spills
them to disk, so `max_batch` stays at or under 32.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from coalition_kernel import db
from coalition_kernel.errors import DeadlineExceeded

T = TypeVar("T")

MAX_BATCH = 32

_STOP = object()


@dataclass(eq=False)
class _Request(Generic[T]):
    work: Callable[[Connection], T]
    keep: tuple[type[BaseException], ...]
    deadline: float | None
    future: concurrent.futures.Future[T] = field(default_factory=concurrent.futures.Future)


@dataclass
class BatchStats:
    """What the committer has done: how many batches, how many requests, the largest batch, and
    how many requests had to be re-run alone."""

    batches: int = 0
    requests: int = 0
    largest: int = 0
    alone: int = 0
    sizes: dict[int, int] = field(default_factory=dict)


class GroupCommit:
    def __init__(
        self,
        engine: Engine,
        *,
        max_batch: int = MAX_BATCH,
        name: str = "group-commit",
        optimistic: bool = False,
    ):
        if not 1 <= max_batch <= 64:
            raise ValueError("max_batch must be between 1 and 64")
        self.engine = engine
        self.max_batch = max_batch
        self.optimistic = optimistic
        self.stats = BatchStats()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    # ---- callers ---------------------------------------------------------------------------

    def submit(
        self, work: Callable[[Connection], T], *, keep: tuple[type[BaseException], ...] = ()
    ) -> concurrent.futures.Future[T]:
        if self._closed:
            raise RuntimeError("this group committer is closed")
        request: _Request[T] = _Request(work, keep, db.deadline.get())
        self._queue.put(request)
        return request.future

    async def run(
        self, work: Callable[[Connection], T], *, keep: tuple[type[BaseException], ...] = ()
    ) -> T:
        """Applies `work` in the next batch; returns its result once the batch has committed."""
        return await asyncio.wrap_future(self.submit(work, keep=keep))

    def run_blocking(
        self, work: Callable[[Connection], T], *, keep: tuple[type[BaseException], ...] = ()
    ) -> T:
        """The same, from a plain thread (never from the committer's own thread)."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("run_blocking called from inside a batch")
        return self.submit(work, keep=keep).result()

    def close(self, timeout: float = 10.0) -> None:
        """Stops taking requests; those already queued are still applied."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout)

    # ---- the committer's thread ------------------------------------------------------------

    def _serve(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    stop = True
                    break
                batch.append(more)
            self._apply(batch)
            if stop:
                return

    def _apply(self, batch: list[_Request[Any]]) -> None:
        live = []
        for request in batch:
            if request.future.cancelled():  # its caller gave up before its turn: not applied
                continue
            if _expired(request.deadline):
                _settle(
                    request,
                    False,
                    DeadlineExceeded(
                        "DEADLINE_EXCEEDED",
                        "the call's deadline passed before its work began; nothing changed",
                    ),
                )
            else:
                live.append(request)
        if not live:
            return
        if (len(live) == 1 or self.optimistic) and self._plain(live):
            return
        outcomes: list[tuple[_Request[Any], bool, Any]] = []  # (request, ok, result or error)
        alone: list[_Request[Any]] = []
        try:
            with db.transaction(self.engine) as conn:
                for request in live:
                    self._one(conn, request, outcomes, alone)
        except DBAPIError:
            # The batch's transaction is gone (a lost connection, a failed commit): nothing of
            # it was written, so every request is re-run alone.
            outcomes = []
            alone = list(live)
        except BaseException as exc:  # never leave a caller waiting
            for request in live:
                _settle(request, False, exc)
            raise
        self._answer(live, outcomes, alone)

    def _plain(self, live: list[_Request[Any]]) -> bool:
        """Applies the batch in one transaction with no savepoint; False if a request of a
        batch of several failed so that only its savepoint could undo it: then nothing was
        written and the batch is to be applied again with savepoints."""
        outcomes: list[tuple[_Request[Any], bool, Any]] = []
        alone: list[_Request[Any]] = []
        try:
            with db.transaction(self.engine) as conn:
                for request in live:
                    ok, kept, value = _run(conn, request)
                    if not kept:
                        raise _Undo(request, ok, value)
                    outcomes.append((request, ok, value))
                if _aborted(conn):
                    raise _Undo(live[0], False, None, aborted=True)
        except _Undo as undo:  # rolled back: nothing of the batch was written
            if len(live) > 1 and not undo.aborted:
                return False
            outcomes = []
            if undo.aborted or undo.ok:  # the transaction, not the request, failed
                alone = list(live)
            else:
                outcomes = [(undo.request, False, undo.value)]
        except DBAPIError:  # a lost connection, a failed commit: each request re-run alone
            outcomes = []
            alone = list(live)
        except BaseException as exc:  # never leave a caller waiting
            for request in live:
                _settle(request, False, exc)
            raise
        self._answer(live, outcomes, alone)
        return True

    def _answer(
        self,
        live: list[_Request[Any]],
        outcomes: list[tuple[_Request[Any], bool, Any]],
        alone: list[_Request[Any]],
    ) -> None:
        """Once the batch's transaction has ended: each outcome to its caller, and each request
        whose outcome the batch could not decide re-run in a transaction of its own."""
        self._count(len(live), len(alone))
        for request, ok, value in outcomes:
            _settle(request, ok, value)
        for request in alone:
            self._alone(request)

    def _one(
        self,
        conn: Connection,
        request: _Request[Any],
        outcomes: list[tuple[_Request[Any], bool, Any]],
        alone: list[_Request[Any]],
    ) -> None:
        savepoint = conn.begin_nested()
        ok, kept, value = _run(conn, request)
        if not kept:
            savepoint.rollback()
            if ok:  # a database error or a value the driver refused: mapped when alone
                alone.append(request)
            else:
                outcomes.append((request, False, value))
            return
        savepoint.commit()
        outcomes.append((request, ok, value))

    def _alone(self, request: _Request[Any]) -> None:
        token = db.deadline.set(request.deadline)
        try:
            kept: list[BaseException] = []

            def work(conn: Connection) -> Any:
                kept.clear()
                try:
                    return request.work(conn)
                except request.keep as err:  # keep its writes: commit, then raise
                    kept.append(err)
                    return None

            result = db.run_in_transaction(self.engine, work)
        except BaseException as exc:
            _settle(request, False, exc)
        else:
            if kept:
                _settle(request, False, kept[0])
            else:
                _settle(request, True, result)
        finally:
            db.deadline.reset(token)

    def _count(self, size: int, alone: int) -> None:
        stats = self.stats
        stats.batches += 1
        stats.requests += size
        stats.alone += alone
        stats.largest = max(stats.largest, size)
        stats.sizes[size] = stats.sizes.get(size, 0) + 1


def _run(conn: Connection, request: _Request[Any]) -> tuple[bool, bool, Any]:
    """Runs one request's work: (ok, kept, value). Kept: its writes stand (its result, or a
    `keep` refusal, ok False). Not kept: its writes must be undone, and it is answered with
    `value` (ok False), or re-run alone (ok True: a database error, or a value the driver
    refused, as psycopg2 refuses a NUL, mapped to an answer by `run_in_transaction`)."""
    try:
        result = request.work(conn)
    except DBAPIError:
        return True, False, None
    except request.keep as err:
        return False, True, err
    except ValueError:
        return True, False, None
    except Exception as err:
        return False, False, err
    if _expired(request.deadline):
        return (
            False,
            False,
            DeadlineExceeded(
                "DEADLINE_EXCEEDED", "the call's deadline passed before commit; nothing changed"
            ),
        )
    return True, True, result


class _Undo(Exception):
    """Rolls a batch applied without savepoints back: `request` failed as `_run` said."""

    def __init__(self, request: _Request[Any], ok: bool, value: Any, aborted: bool = False):
        super().__init__()
        self.request, self.ok, self.value, self.aborted = request, ok, value, aborted


def _aborted(conn: Connection) -> bool:
    """PostgreSQL's transaction is in error (a statement failed and was swallowed): its
    COMMIT would be a silent ROLLBACK."""
    if conn.dialect.name != "postgresql":
        return False
    info = getattr(conn.connection.dbapi_connection, "info", None)
    return getattr(info, "transaction_status", 0) == _PG_IN_ERROR


_PG_IN_ERROR = 3  # libpq PQTRANS_INERROR (psycopg2 and psycopg 3 alike)


def _settle(request: _Request[Any], ok: bool, value: Any) -> None:
    """Hands a request its outcome. A caller that has gone away (its coroutine cancelled, which
    cancels the future) is not waiting for it: what its work wrote stands, as it would had the
    cancellation come a moment after the commit."""
    try:
        if ok:
            request.future.set_result(value)
        else:
            request.future.set_exception(value)
    except concurrent.futures.InvalidStateError:
        pass


def _expired(limit: float | None) -> bool:
    return limit is not None and time.monotonic() >= limit
