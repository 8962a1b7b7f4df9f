"""The signed envelope: one signer and one verifier for every message between parties.

Signatures cover the exact payload bytes sent (never a re-serialization), prefixed by a domain
tag and the payload's type, so a signature made for one purpose or one message type can never
be accepted for another. docs/protocol.md is the language-neutral description of this module.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from google.protobuf.message import DecodeError, Message

from coalition.envelope.v1.envelope_pb2 import MessageHeader, SignedEnvelope
from coalition_kernel.db import utc_now
from coalition_kernel.errors import InvalidArgument, PermissionDenied, Unauthenticated
from coalition_kernel.keys import key_id

DOMAIN_TAG = b"COALITION-ENVELOPE-V1"
EXCHANGE_ID = "exchange"
OPERATOR_ID = "operator"

M = TypeVar("M", bound=Message)
_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}\Z")
_KEY_ID = re.compile(r"^[0-9a-f]{16}\Z")


def signed_bytes(payload_type: str, payload: bytes) -> bytes:
    """What the signature covers: tag ‖ 0x00 ‖ payload type ‖ 0x00 ‖ payload."""
    return DOMAIN_TAG + b"\x00" + payload_type.encode() + b"\x00" + payload


def digest(envelope: SignedEnvelope) -> bytes:
    """SHA-256 of an envelope's signed bytes: how answers and logs refer to a message."""
    return hashlib.sha256(signed_bytes(envelope.payload_type, envelope.payload)).digest()


class Signer:
    """Seals messages as one party (a merchant, the exchange or the operator)."""

    def __init__(
        self,
        signer_id: str,
        private_key: Ed25519PrivateKey,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.signer_id = signer_id
        self.private_key = private_key
        self.key_id = key_id(private_key.public_key())
        self.clock = clock

    def seal(
        self,
        message: Message,
        *,
        audience: str,
        request_id: str,
        answering: SignedEnvelope | None = None,
    ) -> SignedEnvelope:
        """Fills the message's header, serializes it once and signs those bytes."""
        header: MessageHeader = message.header  # type: ignore[attr-defined]
        header.request_id = request_id
        header.issued_at.FromDatetime(self.clock())
        header.sender_id = self.signer_id
        header.audience = audience
        if answering is not None:
            header.request_digest = digest(answering)
        payload = message.SerializeToString()
        payload_type = message.DESCRIPTOR.full_name
        return SignedEnvelope(
            payload=payload,
            payload_type=payload_type,
            signer_id=self.signer_id,
            key_id=self.key_id,
            signature=self.private_key.sign(signed_bytes(payload_type, payload)),
        )


class KeyDirectory(Protocol):
    """Who may sign: resolves (signer, key id) to a public key valid at a time, or refuses;
    then, once the signature is proven, whether that signer may act now."""

    def public_key(self, signer_id: str, key_id: str, at: datetime) -> Ed25519PublicKey: ...

    def check_standing(self, signer_id: str) -> None: ...


class StaticKeys:
    """A fixed set of keys: what a node knows of the exchange."""

    def __init__(self, keys: dict[str, Ed25519PublicKey]) -> None:
        self.keys = keys

    def public_key(self, signer_id: str, key_id_: str, at: datetime) -> Ed25519PublicKey:
        key = self.keys.get(signer_id)
        if key is None:
            raise Unauthenticated("UNKNOWN_SIGNER", f"{signer_id!r} may not send this message")
        if key_id(key) != key_id_:
            raise Unauthenticated("UNKNOWN_KEY", f"key {key_id_!r} is not a key of {signer_id}")
        return key

    def check_standing(self, signer_id: str) -> None:
        return None


class Verifier:
    """Opens envelopes addressed to `me`: type, signer, key, signature, header, time window."""

    def __init__(
        self,
        me: str,
        keys: KeyDirectory,
        *,
        skew: timedelta = timedelta(minutes=5),
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.me = me
        self.keys = keys
        self.skew = skew
        self.clock = clock

    def open(self, envelope: SignedEnvelope, expected: type[M], sender: str | None = None) -> M:
        """The verified inner message; raises a CoalitionError saying what was wrong.

        `sender`, when given, is the only signer allowed (e.g. "exchange" on a node's
        issuer service, or the identity the caller's TLS certificate proved).
        """
        want = expected.DESCRIPTOR.full_name
        if envelope.payload_type != want:
            raise Unauthenticated(
                "WRONG_MESSAGE_TYPE",
                f"this call takes a signed {want}, not {envelope.payload_type or 'no type'}",
            )
        if sender is not None and envelope.signer_id != sender:
            raise PermissionDenied(
                "SIGNER_NOT_ALLOWED",
                f"only {sender} may send this message, not {envelope.signer_id!r}",
            )
        if not _ID.match(envelope.signer_id):
            raise Unauthenticated("UNKNOWN_SIGNER", "signer_id is not an id this coalition issues")
        if not _KEY_ID.match(envelope.key_id):
            raise Unauthenticated("UNKNOWN_KEY", "key_id must be 16 lowercase hex digits")
        now = self.clock()
        public = self.keys.public_key(envelope.signer_id, envelope.key_id, now)
        try:
            public.verify(envelope.signature, signed_bytes(envelope.payload_type, envelope.payload))
        except InvalidSignature as exc:
            raise Unauthenticated(
                "BAD_SIGNATURE", "the signature does not match the payload and key"
            ) from exc
        # Only a proven signer learns whether it is suspended.
        self.keys.check_standing(envelope.signer_id)
        message = expected()
        try:
            message.ParseFromString(envelope.payload)
        except DecodeError as exc:
            raise InvalidArgument(
                "MALFORMED_PAYLOAD", f"the signed payload is not a valid {want}"
            ) from exc
        self._check_header(message.header, envelope, now)  # type: ignore[attr-defined]
        return message

    def _check_header(self, header: MessageHeader, envelope: SignedEnvelope, now: datetime) -> None:
        if header.sender_id != envelope.signer_id:
            raise Unauthenticated(
                "SENDER_MISMATCH", "the header's sender is not the envelope's signer"
            )
        if header.audience != self.me:
            raise PermissionDenied(
                "WRONG_AUDIENCE",
                f"the message is addressed to {header.audience!r}, not {self.me!r}",
            )
        if not header.HasField("issued_at"):
            raise Unauthenticated("STALE_MESSAGE", "the message has no issued_at time")
        try:
            issued = header.issued_at.ToDatetime(tzinfo=now.tzinfo)
        except (ValueError, OverflowError) as exc:
            raise Unauthenticated("STALE_MESSAGE", "issued_at is not a valid time") from exc
        if abs(now - issued) > self.skew:
            raise Unauthenticated(
                "STALE_MESSAGE",
                f"issued_at {issued.isoformat()} is outside the ±{int(self.skew.total_seconds())}s "
                "window; sign a fresh message",
            )
        if not 1 <= len(header.request_id) <= 128:
            raise InvalidArgument("MISSING_FIELD", "header.request_id must be 1-128 characters")
        if not _ID.match(header.request_id):
            raise InvalidArgument(
                "MALFORMED_ID",
                "header.request_id may hold only letters, digits, '.', '_', ':', '-'",
            )


def open_answer(
    verifier: Verifier,
    envelope: SignedEnvelope,
    expected: type[M],
    request: SignedEnvelope,
    sender: str,
) -> M:
    """Opens a signed answer and checks that it answers `request`: by its digest, and by
    repeating its request id (docs/protocol.md, "The header")."""
    message = verifier.open(envelope, expected, sender=sender)
    if message.header.request_digest != digest(request):  # type: ignore[attr-defined]
        raise Unauthenticated("ANSWER_MISMATCH", "the signed answer is not for the request sent")
    if message.header.request_id != header_request_id(request.payload):  # type: ignore[attr-defined]
        raise Unauthenticated(
            "ANSWER_MISMATCH", "the signed answer does not repeat the request's request_id"
        )
    return message


def header_request_id(payload: bytes) -> str:
    """The request id in a signed payload's header, read without knowing the payload's type:
    every command and receipt opens with `MessageHeader header = 1` (field 1, length-delimited,
    tag 0x0a). "" when the payload does not open that way."""
    if not payload or payload[0] != 0x0A:
        return ""
    length, shift, i = 0, 0, 1
    while i < len(payload) and shift < 35:
        byte = payload[i]
        length |= (byte & 0x7F) << shift
        i += 1
        if not byte & 0x80:
            break
        shift += 7
    try:
        return MessageHeader.FromString(payload[i : i + length]).request_id
    except DecodeError:
        return ""
