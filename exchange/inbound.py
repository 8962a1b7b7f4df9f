"""Every signed request the exchange receives goes through here: verify, log, replay, answer.

1. Verify the envelope (size, type, signer, key window, signature, audience, time window); a
   refusal is logged and raised: whole once the signer is proven, else as a bounded record,
   rate-limited per peer (exchange/refusals.py). 2. Log the received envelope in the audit
   chain. 3. A request id seen before from the same signer returns the stored signed answer (or
   refusal); the same id with another body is ALREADY_EXISTS / REQUEST_ID_REUSED. 4. Otherwise
   run the use case, sign its answer, store it under the request id and log it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar

from google.protobuf import descriptor_pool
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from sqlalchemy import Connection, Engine, insert, select
from sqlalchemy.exc import IntegrityError

from coalition.envelope.v1.envelope_pb2 import SignedEnvelope
from coalition_kernel.db import run_in_transaction
from coalition_kernel.envelope import Signer, Verifier, digest
from coalition_kernel.errors import (
    AlreadyExists,
    CoalitionError,
    InvalidArgument,
    error_from_record,
)
from coalition_kernel.rpc import Offload
from exchange import audit, refusals
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
    ) -> None:
        self.engine = engine
        self.verifier = verifier
        self.signer = signer
        self.offload = offload
        self.clock = clock
        self.limits = limits or refusals.Limits()
        self.buckets = refusals.TokenBuckets(self.limits)

    async def handle(
        self,
        envelope: SignedEnvelope,
        expected: type[M],
        use_case: UseCase[M],
        *,
        sender: str | None = None,
        peer: str = "",
    ) -> SignedEnvelope:
        raw = envelope.SerializeToString()
        try:
            if len(raw) > refusals.MAX_ENVELOPE_BYTES:
                raise InvalidArgument(
                    "ENVELOPE_TOO_LARGE",
                    f"a signed envelope is at most {refusals.MAX_ENVELOPE_BYTES} bytes, "
                    f"not {len(raw)}",
                )
            message = await self.offload(self.verifier.open, envelope, expected, sender)
        except CoalitionError as err:
            if err.reason in _AFTER_SIGNATURE:  # a proven signer: its message is kept whole
                await self.log("in", envelope.signer_id, raw, f"refused:{err.reason}")
                raise
            # Before the signature is proven the claimed signer is nobody's business: such
            # refusals are kept apart from every merchant's slice, small, and rate-limited.
            await self._refuse_unproven(envelope, raw, err, peer)
            raise
        signer = envelope.signer_id
        request_id = message.header.request_id  # type: ignore[attr-defined]
        body = body_hash(message)
        try:
            stored = await self.offload(
                self._receive, signer, request_id, envelope.payload_type, body, raw
            )
        except CoalitionError as err:  # a reused id, or the replay of a stored refusal
            await self.log("out", signer, b"", f"refused:{err.reason}")
            raise
        if stored is not None:
            answer = self._for_this_request(stored, envelope)
            if answer is not stored:
                await self.log("out", signer, answer.SerializeToString(), "answered:re-signed")
            return answer
        try:
            answer = await use_case(message, envelope)
        except CoalitionError as err:
            if err.code.name not in _UNDECIDED:
                await self.offload(
                    self._store, signer, request_id, envelope.payload_type, body, None, err
                )
            else:  # decided nothing, so not stored; still on the record
                await self.log("out", signer, b"", f"refused:{err.reason}")
            raise
        sealed = self.signer.seal(
            answer, audience=signer, request_id=request_id, answering=envelope
        )
        return await self.offload(
            self._store, signer, request_id, envelope.payload_type, body, sealed, None
        )

    async def _refuse_unproven(
        self, envelope: SignedEnvelope, raw: bytes, err: CoalitionError, peer: str
    ) -> None:
        """Logs a bounded record of the refusal (exchange/refusals.py), or, past the peer's
        rate, raises RATE_LIMITED instead and only counts it."""
        key = refusals.peer_key(peer)
        now = self.clock()
        if not self.buckets.take(key):
            day = now.date().isoformat()
            await self.offload(
                run_in_transaction,
                self.engine,
                lambda conn: refusals.tally(conn, key, day, "rate_limited", len(raw), now),
            )
            raise refusals.rate_limited(key) from err
        record = refusals.record_of(envelope, raw, err.reason, peer)
        await self.offload(
            run_in_transaction,
            self.engine,
            lambda conn: refusals.log_refusal(
                conn, key, record, len(raw), err.reason, now, self.limits.daily_records
            ),
        )

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

    async def log(self, direction: str, peer: str, raw: bytes, outcome: str) -> None:
        await self.offload(
            run_in_transaction,
            self.engine,
            lambda conn: audit.append(conn, direction, peer, raw, outcome, self.clock()),
        )

    def _receive(
        self, signer: str, request_id: str, payload_type: str, body: bytes, raw: bytes
    ) -> SignedEnvelope | None:
        def work(conn: Connection) -> SignedEnvelope | None:
            audit.append(conn, "in", signer, raw, "accepted", self.clock())
            return _replay(conn, signer, request_id, payload_type, body)

        return _commit_then_raise(self.engine, work)

    def _store(
        self,
        signer: str,
        request_id: str,
        payload_type: str,
        body: bytes,
        answer: SignedEnvelope | None,
        refusal: CoalitionError | None,
    ) -> SignedEnvelope:
        def work(conn: Connection) -> SignedEnvelope:
            values: dict[str, object] = dict(
                signer_id=signer,
                request_id=request_id,
                payload_type=payload_type,
                body_hash=body,
                received_at=self.clock(),
            )
            if answer is not None:
                values["answer"] = answer.SerializeToString()
            else:
                assert refusal is not None
                values.update(
                    error_code=refusal.code.name,
                    error_reason=refusal.reason,
                    error_message=refusal.message[:500],
                )
            try:
                with conn.begin_nested():
                    conn.execute(insert(inbound_requests).values(**values))
            except IntegrityError:
                # A concurrent twin answered first: its answer is the answer.
                first = _replay(conn, signer, request_id, payload_type, body)
                assert first is not None
                return first
            outcome = "answered" if answer is not None else f"refused:{refusal.reason}"  # type: ignore[union-attr]
            sent = answer.SerializeToString() if answer is not None else b""
            audit.append(conn, "out", signer, sent, outcome, self.clock())
            if refusal is not None:
                raise refusal
            return answer  # type: ignore[return-value]

        return _commit_then_raise(self.engine, work)


class _Deferred:
    def __init__(self, error: CoalitionError) -> None:
        self.error = error


def _commit_then_raise(engine: Engine, work: Callable[[Connection], object]):  # type: ignore[no-untyped-def]
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


def _replay(
    conn: Connection, signer: str, request_id: str, payload_type: str, body: bytes
) -> SignedEnvelope | None:
    row = conn.execute(
        select(inbound_requests).where(
            inbound_requests.c.signer_id == signer, inbound_requests.c.request_id == request_id
        )
    ).first()
    if row is None:
        return None
    if row.payload_type != payload_type or row.body_hash != body:
        raise AlreadyExists(
            "REQUEST_ID_REUSED",
            f"request_id {request_id} was already used by {signer} for a different request",
        )
    if row.answer is None:
        raise error_from_record(row.error_code, row.error_reason, row.error_message)
    return SignedEnvelope.FromString(row.answer)
