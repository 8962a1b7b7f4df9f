"""Every signed request the exchange receives goes through here: verify, log, replay, answer.

1. Verify the envelope (size, type, signer, key window, signature, audience, time window); a
   refusal is logged and raised: whole once the signer is proven, else as a bounded record,
   rate-limited per peer (exchange/refusals.py). 2. Log the received envelope in the audit
   chain. 3. A request id seen before from the same signer returns the stored signed answer (or
   refusal); the same id with another body is ALREADY_EXISTS / REQUEST_ID_REUSED. 4. Otherwise
   run the use case, sign its answer, store it under the request id and log it.

Steps 1-3 run in one transaction, checked against the registry as of that transaction
(exchange/registry_cache.py). A `Staged` use case runs its first step in that transaction too,
and its answer, if it can give one at once, is stored there as well; if it must first ask an
issuer (`IssuerCall`), everything it is about to send is recorded and logged in that first
transaction, the call is made outside any transaction, and its outcome, the answer and its log
entry are written in a second one. Every transaction goes through the exchange's group commit
(coalition_kernel/group_commit.py) when it has one: requests in flight share one commit and one
turn at the audit chain's lock.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn, TypeVar

from google.protobuf import descriptor_pool
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from sqlalchemy import Connection, Engine, Insert, Table, bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from coalition.envelope.v1.envelope_pb2 import SignedEnvelope
from coalition_kernel.db import run_in_transaction
from coalition_kernel.envelope import Signer, Verifier, digest
from coalition_kernel.errors import (
    AlreadyExists,
    CoalitionError,
    InvalidArgument,
    error_from_record,
)
from coalition_kernel.group_commit import GroupCommit
from coalition_kernel.rpc import Offload
from exchange import audit, refusals
from exchange.registry_cache import checked
from exchange.schema import inbound_requests

M = TypeVar("M", bound=Message)
UNVERIFIED = (
    refusals.UNVERIFIED
)  # audit-log peer of messages refused before their signer was proven
UseCase = Callable[[M, SignedEnvelope], Awaitable[Message]]
# Refusals the verifier raises once the signature is proven: the signer is who it says.
_AFTER_SIGNATURE = {
    "MERCHANT_SUSPENDED",
    "MALFORMED_PAYLOAD",
    "SENDER_MISMATCH",
    "WRONG_AUDIENCE",
    "STALE_MESSAGE",
    "MISSING_FIELD",
    "MALFORMED_ID",
}
_UNDECIDED = ("UNAVAILABLE", "ABORTED", "DEADLINE_EXCEEDED", "INVALID_ARGUMENT")


@dataclass(frozen=True)
class IssuerCall:
    """What a staged use case asks of an issuer, already signed and logged as sent.

    `send` makes the call (no transaction is open); `settle` runs in the transaction that
    follows with the issuer's answer, or the CoalitionError the call ended in: it verifies and
    logs what came back, records the outcome and returns the answer to the requester, or
    raises the refusal (its writes are kept)."""

    send: Callable[[], Awaitable[SignedEnvelope]]
    settle: Callable[[Connection, SignedEnvelope | CoalitionError], Message]


@dataclass(frozen=True)
class Staged:
    """A use case whose first step runs in the request's own transaction, after the replay
    check: it returns the answer, or the issuer call to make before answering. A refusal it
    raises undoes its writes; the refusal itself is stored and logged in that transaction."""

    open: Callable[[Connection, Any, SignedEnvelope], Message | IssuerCall]


@dataclass(frozen=True)
class _Request:
    envelope: SignedEnvelope
    raw: bytes
    signer: str
    request_id: str
    body: bytes


def body_hash(message: Message) -> bytes:
    """What a request asks, without its header: a re-signed retry of it hashes the same."""
    body = type(message)()
    body.CopyFrom(message)
    body.ClearField("header")  # type: ignore[arg-type]
    return hashlib.sha256(body.SerializeToString(deterministic=True)).digest()


class Inbound:
    def __init__(
        self,
        engine: Engine,
        verifier: Verifier,
        signer: Signer,
        offload: Offload,
        clock: Callable[[], datetime],
        limits: refusals.Limits | None = None,
        committer: GroupCommit | None = None,
    ) -> None:
        self.engine = engine
        self.verifier = verifier
        self.signer = signer
        self.offload = offload
        self.clock = clock
        self.limits = limits or refusals.Limits()
        self.buckets = refusals.TokenBuckets(self.limits)
        self.committer = committer

    async def run(self, work: Callable[[Connection], Any]) -> Any:
        """Runs `work` in a transaction (the next group commit's, if there is one); a
        CoalitionError it raises is raised after its writes are committed."""
        if self.committer is not None:
            # Shielded: a caller that gives up (its deadline) must not cancel the batch's
            # future under the committer, which still applies the work, as an offloaded
            # transaction would go on after its caller left.
            future = self.committer.submit(work, keep=(CoalitionError,))
            return await asyncio.shield(asyncio.wrap_future(future))
        return await self.offload(commit_then_raise, self.engine, work)

    async def handle(
        self,
        envelope: SignedEnvelope,
        expected: type[M],
        use_case: UseCase[M] | Staged,
        *,
        sender: str | None = None,
        peer: str = "",
    ) -> SignedEnvelope:
        raw = envelope.SerializeToString()
        if len(raw) > refusals.MAX_ENVELOPE_BYTES:
            too_large = InvalidArgument(
                "ENVELOPE_TOO_LARGE",
                f"a signed envelope is at most {refusals.MAX_ENVELOPE_BYTES} bytes, not {len(raw)}",
            )
            await self.run(lambda conn: self._refuse_unproven(conn, envelope, raw, too_large, peer))
        staged = use_case if isinstance(use_case, Staged) else None

        def first(conn: Connection) -> tuple[Message, _Request] | SignedEnvelope | IssuerCall:
            message = self._verify(conn, envelope, raw, expected, sender, peer)
            request = _Request(
                envelope,
                raw,
                envelope.signer_id,
                message.header.request_id,  # type: ignore[attr-defined]
                body_hash(message),
            )
            audit.append(conn, "in", request.signer, raw, "accepted", self.clock())
            try:
                stored = _replay(conn, request)
            except CoalitionError as err:  # a reused id, or the replay of a stored refusal
                audit.append(
                    conn, "out", request.signer, b"", f"refused:{err.reason}", self.clock()
                )
                raise
            if stored is not None:
                answer = self._for_this_request(stored, envelope)
                if answer is not stored:
                    self._log(conn, "out", request.signer, answer, "answered:re-signed")
                return answer
            if staged is None:
                return message, request
            try:
                with conn.begin_nested():  # a refusal undoes what the step wrote
                    step = staged.open(conn, message, envelope)
            except CoalitionError as err:
                return self._refused(conn, request, err)
            if isinstance(step, IssuerCall):
                return _Pending(request, step)
            return self._answered(conn, request, step)

        outcome = await self.run(first)
        if isinstance(outcome, SignedEnvelope):
            return outcome
        if isinstance(outcome, _Pending):
            request, call = outcome.request, outcome.call
            try:
                answer: SignedEnvelope | CoalitionError = await call.send()
            except CoalitionError as err:
                answer = err

            def second(conn: Connection) -> SignedEnvelope:
                try:
                    reply = call.settle(conn, answer)
                except CoalitionError as err:
                    return self._refused(conn, request, err)
                return self._answered(conn, request, reply)

            return await self.run(second)
        message, request = outcome
        try:
            reply = await use_case(message, envelope)  # type: ignore[operator]
        except CoalitionError as err:
            refusal = err
            return await self.run(lambda conn: self._refused(conn, request, refusal))
        return await self.run(lambda conn: self._answered(conn, request, reply))

    def _verify(
        self,
        conn: Connection,
        envelope: SignedEnvelope,
        raw: bytes,
        expected: type[M],
        sender: str | None,
        peer: str,
    ) -> M:
        """The verified message, checked against the registry as of this transaction; a
        refusal is logged (whole once the signer is proven, else bounded) and raised."""
        try:
            with checked(self.verifier, conn):
                return self.verifier.open(envelope, expected, sender)
        except CoalitionError as err:
            if err.reason in _AFTER_SIGNATURE:  # a proven signer: its message is kept whole
                audit.append(
                    conn, "in", envelope.signer_id, raw, f"refused:{err.reason}", self.clock()
                )
                raise
            # Before the signature is proven the claimed signer is nobody's business: such
            # refusals are kept apart from every merchant's slice, small, and rate-limited.
            self._refuse_unproven(conn, envelope, raw, err, peer)

    def _refuse_unproven(
        self, conn: Connection, envelope: SignedEnvelope, raw: bytes, err: CoalitionError, peer: str
    ) -> NoReturn:
        """Logs a bounded record of the refusal (exchange/refusals.py) and raises it, or, past
        the peer's rate, only counts it and raises RATE_LIMITED instead."""
        key = refusals.peer_key(peer)
        now = self.clock()
        if not self.buckets.take(key):
            day = now.date().isoformat()
            refusals.tally(conn, key, day, "rate_limited", len(raw), now)
            raise refusals.rate_limited(key) from err
        record = refusals.record_of(envelope, raw, err.reason, peer)
        refusals.log_refusal(
            conn, key, record, len(raw), err.reason, now, self.limits.daily_records
        )
        raise err

    def _for_this_request(self, stored: SignedEnvelope, request: SignedEnvelope) -> SignedEnvelope:
        """The first answer, byte for byte, to the very same envelope; to a re-signed retry of
        the same request (a new issued_at), the same answer signed anew for that envelope, so
        the caller can bind it to what it sent."""
        answer = answer_message(stored)
        if answer.header.request_digest == digest(request):  # type: ignore[attr-defined]
            return stored
        answer.ClearField("header")  # type: ignore[arg-type]
        request_id = answer_request_id(stored)
        return self.signer.seal(
            answer, audience=request.signer_id, request_id=request_id, answering=request
        )

    def _log(
        self, conn: Connection, direction: str, peer: str, sent: SignedEnvelope, outcome: str
    ) -> None:
        audit.append(conn, direction, peer, sent.SerializeToString(), outcome, self.clock())

    async def log(self, direction: str, peer: str, raw: bytes, outcome: str) -> None:
        await self.run(lambda conn: audit.append(conn, direction, peer, raw, outcome, self.clock()))

    def _answered(self, conn: Connection, request: _Request, reply: Message) -> SignedEnvelope:
        """Signs the answer, stores it under the request id and logs it; a concurrent twin that
        answered first has its answer returned instead."""
        sealed = self.signer.seal(
            reply,
            audience=request.signer,
            request_id=request.request_id,
            answering=request.envelope,
        )
        first = self._store(conn, request, answer=sealed.SerializeToString())
        if first is not None:
            return first
        self._log(conn, "out", request.signer, sealed, "answered")
        return sealed

    def _refused(
        self, conn: Connection, request: _Request, refusal: CoalitionError
    ) -> SignedEnvelope:
        """Stores a decided refusal under the request id and logs it, or only logs an undecided
        one (it decided nothing, so a retry may go another way); then raises it."""
        if refusal.code.name in _UNDECIDED:
            audit.append(
                conn, "out", request.signer, b"", f"refused:{refusal.reason}", self.clock()
            )
            raise refusal
        first = self._store(
            conn,
            request,
            error_code=refusal.code.name,
            error_reason=refusal.reason,
            error_message=refusal.message[:500],
        )
        if first is not None:
            return first  # a concurrent twin answered first: its answer is the answer
        audit.append(conn, "out", request.signer, b"", f"refused:{refusal.reason}", self.clock())
        raise refusal

    def _store(
        self, conn: Connection, request: _Request, **outcome: object
    ) -> SignedEnvelope | None:
        """Stores the outcome under the request id; None, or a concurrent twin's first answer
        (its refusal is raised)."""
        row: dict[str, object] = dict.fromkeys(_OUTCOME_COLUMNS)
        row.update(
            signer_id=request.signer,
            request_id=request.request_id,
            payload_type=request.envelope.payload_type,
            body_hash=request.body,
            received_at=self.clock(),
            **outcome,
        )
        stored = conn.execute(_store_statement(conn), row)
        if stored.rowcount == 0:  # a concurrent twin stored its outcome first
            first = _replay(conn, request)
            assert first is not None
            return first
        return None


@dataclass(frozen=True)
class _Pending:
    request: _Request
    call: IssuerCall


def insert_ignoring(conn: Connection, table: Table) -> Insert:
    """INSERT … ON CONFLICT DO NOTHING (PostgreSQL and SQLite): a conflicting row is left as
    it is and the statement's rowcount is 0; no savepoint needed to survive the conflict."""
    if conn.dialect.name == "postgresql":
        return pg_insert(table).on_conflict_do_nothing()
    return sqlite_insert(table).on_conflict_do_nothing()


# Built once (SQLAlchemy keys its statement cache on the statement object: a statement rebuilt
# per request is re-keyed per request).
_OUTCOME_COLUMNS = ("answer", "error_code", "error_reason", "error_message")
_REPLAY = select(inbound_requests).where(
    inbound_requests.c.signer_id == bindparam("signer"),
    inbound_requests.c.request_id == bindparam("request"),
)
_STORE: dict[str, Insert] = {}


def _store_statement(conn: Connection) -> Insert:
    statement = _STORE.get(conn.dialect.name)
    if statement is None:
        statement = _STORE[conn.dialect.name] = insert_ignoring(conn, inbound_requests)
    return statement


class _Deferred:
    def __init__(self, error: CoalitionError) -> None:
        self.error = error


def commit_then_raise(engine: Engine, work: Callable[[Connection], object]):  # type: ignore[no-untyped-def]
    """Runs `work`; a CoalitionError it raises is re-raised only after the transaction commits
    (what `work` logged must stay logged even when the answer is a refusal)."""

    def wrapped(conn: Connection) -> object:
        try:
            return work(conn)
        except CoalitionError as err:
            return _Deferred(err)

    result = run_in_transaction(engine, wrapped)
    if isinstance(result, _Deferred):
        raise result.error
    return result


def answer_message(envelope: SignedEnvelope) -> Message:
    """Parses one of the exchange's own stored answers."""
    descriptor = descriptor_pool.Default().FindMessageTypeByName(envelope.payload_type)
    message = GetMessageClass(descriptor)()
    message.ParseFromString(envelope.payload)
    return message


def answer_request_id(envelope: SignedEnvelope) -> str:
    return answer_message(envelope).header.request_id  # type: ignore[attr-defined]


def _replay(conn: Connection, request: _Request) -> SignedEnvelope | None:
    row = conn.execute(_REPLAY, {"signer": request.signer, "request": request.request_id}).first()
    if row is None:
        return None
    if row.payload_type != request.envelope.payload_type or row.body_hash != request.body:
        raise AlreadyExists(
            "REQUEST_ID_REUSED",
            f"request_id {request.request_id} was already used by {request.signer} for a "
            "different request",
        )
    if row.answer is None:
        raise error_from_record(row.error_code, row.error_reason, row.error_message)
    return SignedEnvelope.FromString(row.answer)
