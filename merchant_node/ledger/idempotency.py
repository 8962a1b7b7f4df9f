"""Law 3: a request id changes state at most once.

The first answer (or refusal) is stored with a hash of the request; a retry returns it, the
same id with another body is refused, and a refused id stays refused even after the ledger
has changed (a rejection never turns into a success on retry).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import types
import typing
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, bindparam, insert, select
from sqlalchemy.exc import IntegrityError

from coalition_kernel.db import run_in_transaction
from coalition_kernel.errors import AlreadyExists, CoalitionError, error_from_record
from merchant_node.ledger.schema import idempotency

R = TypeVar("R")
_FIND = select(idempotency).where(idempotency.c.request_id == bindparam("request_id"))
_INSERT = insert(idempotency)


def request_hash(operation: str, command: Any) -> str:
    """A stable hash of what was asked: the command's fields, without its request id."""
    body = _plain(command)
    body.pop("request_id", None)
    canonical = json.dumps([operation, body], sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def encode(result: Any) -> bytes:
    return json.dumps(_plain(result), default=_default, sort_keys=True).encode()


# The field names of each dataclass, read once: `dataclasses.asdict` looks them up and deep-copies
# every value on every call, which cost an earn more than its idempotency statements did
# (bench/node_bench.py's profile). `_plain` gives JSON the same structure, so the hash and the
# stored answer are byte for byte what `asdict` gave: records written before still match.
_FIELDS: dict[type, tuple[str, ...]] = {}
_AS_IS = frozenset({str, int, float, bool, type(None), datetime})


def _plain(value: Any) -> Any:
    cls = type(value)
    if cls in _AS_IS:
        return value
    names = _FIELDS.get(cls)
    if names is None:
        if not dataclasses.is_dataclass(cls):
            if isinstance(value, (list, tuple)):
                return [_plain(v) for v in value]
            if isinstance(value, dict):
                return {_plain(k): _plain(v) for k, v in value.items()}
            return value
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))
    plain = {}
    for name in names:
        field = getattr(value, name)
        plain[name] = field if type(field) in _AS_IS else _plain(field)
    return plain


def decode(cls: type[R], raw: bytes) -> R:
    return _build(cls, json.loads(raw))


def _default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot store {type(value).__name__} in an idempotency record")


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _build(tp: Any, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = _hints(tp)
        return tp(**{f.name: _build(hints[f.name], value[f.name]) for f in dataclasses.fields(tp)})
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _build(inner[0], value)
    if origin is list:
        return [_build(typing.get_args(tp)[0], v) for v in value]
    if tp is datetime:
        return datetime.fromisoformat(value)
    return value


class _Replay(Exception):
    """The request id was recorded meanwhile by a concurrent twin: answer from the record."""


def run_idempotent(
    engine: Engine,
    operation: str,
    command: Any,
    result_type: type[R],
    work: Callable[[Connection], R],
    now: Callable[[], datetime],
    *,
    run: Callable[[Callable[[Connection], Any]], Any] | None = None,
    record_first: bool = False,
) -> R:
    """Runs `work` once per request id, in one transaction with the record of its answer.

    `run` runs each transaction (default: `run_in_transaction` on `engine`); the node's hot
    writes pass a group committer's (coalition_kernel/group_commit.py), which applies the
    transactions of requests in flight together, each in its own savepoint, with no `keep`: a
    refusal rolls its request's writes back and is recorded by the next transaction here, as
    when each request has a transaction of its own.

    With `record_first` (the hot writes: earn, redeem, place and post a hold), the record is not
    looked up before the work but found by its unique request id when the answer is recorded: a
    retry's work is rolled back and the record answers, as before, one statement fewer for every
    first request. A retry's work that fails instead (its time passed, the caller's limit, its
    consent code spent or lapsed) is answered from the record too, if there is one, before
    anything counts the failure (a wrong consent code is counted by the caller, after this
    returns). Only for work that changes nothing outside its transaction."""
    digest = request_hash(operation, command)
    request_id: str = command.request_id
    if run is None:

        def run(transaction: Callable[[Connection], Any]) -> Any:
            return run_in_transaction(engine, transaction)

    def attempt(conn: Connection) -> R:
        if not record_first:
            stored = _replay(conn, request_id, operation, digest, result_type)
            if stored is not None:
                return stored
        result = work(conn)
        _record(conn, request_id, operation, digest, now(), response=encode(result))
        return result

    def record_refusal(conn: Connection, err: CoalitionError) -> None:
        if _replay(conn, request_id, operation, digest, result_type) is None:
            _record(conn, request_id, operation, digest, now(), refusal=err)

    def replay_twin(conn: Connection) -> R:
        stored = _replay(conn, request_id, operation, digest, result_type)
        if stored is None:
            raise AssertionError(f"idempotency record {request_id} vanished")
        return stored

    def answer_from_record(failure: BaseException) -> R:
        # `record_first`: the work failed and nothing records it; a record made before is the
        # answer (a stored refusal, or REQUEST_ID_REUSED, is raised from here).
        if record_first:
            stored = run(lambda c: _replay(c, request_id, operation, digest, result_type))
            if stored is not None:
                return stored  # type: ignore[no-any-return]
        raise failure

    try:
        return run(attempt)  # type: ignore[no-any-return]
    except _Replay:
        return run(replay_twin)  # type: ignore[no-any-return]
    except CoalitionError as err:
        if err.code.name in ("UNAVAILABLE", "ABORTED", "DEADLINE_EXCEEDED"):
            raise  # transient: nothing was decided, a retry may go ahead
        if err.code.name == "INVALID_ARGUMENT":
            return answer_from_record(err)  # malformed (or, now, out of time): not recorded
        if getattr(err, "unrecorded", False):
            # kept elsewhere, bounded (a wrong consent code: ledger/consent.py's counters)
            return answer_from_record(err)
        refusal = err
    except Exception as exc:
        return answer_from_record(exc)
    with contextlib.suppress(_Replay):
        run(lambda c: record_refusal(c, refusal))
    # A concurrent twin may have succeeded first; its record is the answer.
    try:
        replayed = run(lambda c: _replay(c, request_id, operation, digest, result_type))
    except CoalitionError as stored:
        if (stored.reason, stored.message) != (refusal.reason, refusal.message):
            raise  # a twin's refusal was recorded first
        replayed = None  # our own refusal: raised as it was made, with its metadata
    if replayed is not None:
        return replayed
    raise refusal


def _replay(
    conn: Connection,
    request_id: str,
    operation: str,
    digest: str,
    result_type: type[R],
) -> R | None:
    row = conn.execute(_FIND, {"request_id": request_id}).first()
    if row is None:
        return None
    if row.operation != operation or row.request_hash != digest:
        raise AlreadyExists(
            "REQUEST_ID_REUSED",
            f"request_id {request_id} was already used for a different {row.operation} request; "
            "use a new request_id for a new request",
        )
    if row.outcome == "refused":
        raise error_from_record(row.error_code, row.error_reason, row.error_message)
    return decode(result_type, row.response)


def _record(
    conn: Connection,
    request_id: str,
    operation: str,
    digest: str,
    at: datetime,
    *,
    response: bytes | None = None,
    refusal: CoalitionError | None = None,
) -> None:
    values: dict[str, Any] = dict(
        request_id=request_id, operation=operation, request_hash=digest, created_at=at
    )
    if refusal is None:
        values.update(outcome="ok", response=response)
    else:
        values.update(
            outcome="refused",
            error_code=refusal.code.name,
            error_reason=refusal.reason,
            error_message=refusal.message,
        )
    try:
        conn.execute(_INSERT, values)
    except IntegrityError as exc:  # the transaction is lost; the caller rolls back and replays
        raise _Replay() from exc
