"""docs/test-vectors/envelope-v1.json, checked against docs/protocol.md and against the code.

Every value is recomputed here from first principles (hashlib, hmac, cryptography's Ed25519, a
hand-rolled protobuf encoder for SignedEnvelope) rather than taken from the generator; then the
product's Verifier must accept each envelope and refuse it with any single byte flipped; and the
generator must reproduce the committed file byte for byte, so it cannot drift from the code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import pathlib
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

from coalition.envelope.v1.envelope_pb2 import SignedEnvelope
from coalition.exchange.v1 import exchange_pb2 as xpb
from coalition.issuer.v1 import issuer_pb2 as ipb
from coalition_kernel.envelope import StaticKeys, Verifier, open_answer
from coalition_kernel.errors import CoalitionError
from exchange import audit

ROOT = pathlib.Path(__file__).resolve().parent.parent
VECTORS = ROOT / "docs" / "test-vectors" / "envelope-v1.json"
GENERATOR = ROOT / "scripts" / "make_test_vectors.py"
TAG = b"COALITION-ENVELOPE-V1"
TYPES: dict[str, type[Message]] = {
    "coalition.exchange.v1.AuthorizeCommand": xpb.AuthorizeCommand,
    "coalition.issuer.v1.PlaceHoldCommand": ipb.PlaceHoldCommand,
    "coalition.issuer.v1.HoldReceipt": ipb.HoldReceipt,
}

DATA: dict[str, Any] = json.loads(VECTORS.read_text())
ENVELOPES: dict[str, dict[str, Any]] = DATA["envelopes"]
NAMES = sorted(ENVELOPES)


def h(text: str) -> bytes:
    return bytes.fromhex(text)


def at(rfc3339: str) -> datetime:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00"))


def fixed(moment: datetime):  # type: ignore[no-untyped-def]
    return lambda: moment


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def encode_envelope(v: dict[str, Any]) -> bytes:
    """SignedEnvelope by hand: fields 1-5, all length-delimited (wire type 2), in field order."""
    fields = [
        h(v["payload_hex"]),
        v["payload_type"].encode(),
        v["signer_id"].encode(),
        v["key_id"].encode(),
        h(v["signature_hex"]),
    ]
    return b"".join(
        varint(number << 3 | 2) + varint(len(value)) + value
        for number, value in enumerate(fields, start=1)
        if value
    )


def public_key(v: dict[str, Any]) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(h(v["public_key_hex"]))


def verifier_for(v: dict[str, Any], now: datetime) -> Verifier:
    return Verifier(
        v["header"]["audience"], StaticKeys({v["signer_id"]: public_key(v)}), clock=fixed(now)
    )


@pytest.mark.parametrize("name", NAMES)
def test_signed_bytes_follow_the_documented_formula(name: str) -> None:
    v = ENVELOPES[name]
    expected = TAG + b"\x00" + v["payload_type"].encode("utf-8") + b"\x00" + h(v["payload_hex"])
    assert h(v["signed_bytes_hex"]) == expected
    assert h(v["digest_hex"]) == hashlib.sha256(expected).digest()
    assert DATA["domain_tag"] == TAG.decode()


@pytest.mark.parametrize("name", NAMES)
def test_keys_and_signature(name: str) -> None:
    v = ENVELOPES[name]
    private = Ed25519PrivateKey.from_private_bytes(h(v["private_seed_hex"]))
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    assert raw.hex() == v["public_key_hex"]
    assert hashlib.sha256(raw).hexdigest()[:16] == v["key_id"]
    public_key(v).verify(h(v["signature_hex"]), h(v["signed_bytes_hex"]))  # raises if wrong
    assert private.sign(h(v["signed_bytes_hex"])).hex() == v["signature_hex"]  # deterministic


@pytest.mark.parametrize("name", NAMES)
def test_envelope_wire_bytes_and_header(name: str) -> None:
    v = ENVELOPES[name]
    assert encode_envelope(v).hex() == v["envelope_hex"]
    envelope = SignedEnvelope.FromString(h(v["envelope_hex"]))
    assert (envelope.payload_type, envelope.signer_id, envelope.key_id) == (
        v["payload_type"],
        v["signer_id"],
        v["key_id"],
    )
    message = TYPES[v["payload_type"]].FromString(envelope.payload)
    header = message.header  # type: ignore[attr-defined]
    assert header.request_id == v["header"]["request_id"]
    assert header.issued_at.ToDatetime(tzinfo=UTC) == at(v["header"]["issued_at"])
    assert header.sender_id == v["signer_id"] == v["header"]["sender_id"]
    assert header.audience == v["header"]["audience"]
    answered = v["answers"]
    want_digest = h(ENVELOPES[answered]["digest_hex"]) if answered else b""
    assert header.request_digest == want_digest == h(v["header"]["request_digest_hex"])
    # The readable form builds the same payload (these messages serialize canonically).
    rebuilt = json_format.ParseDict(v["message_json"], TYPES[v["payload_type"]]())
    assert rebuilt.SerializeToString() == envelope.payload


@pytest.mark.parametrize("name", NAMES)
def test_the_verifier_accepts_the_vector_within_the_skew_window(name: str) -> None:
    v = ENVELOPES[name]
    envelope = SignedEnvelope.FromString(h(v["envelope_hex"]))
    issued = at(v["header"]["issued_at"])
    cls = TYPES[v["payload_type"]]
    for now in (issued, issued + timedelta(seconds=300), issued - timedelta(seconds=300)):
        opened = verifier_for(v, now).open(envelope, cls, sender=v["signer_id"])
        assert opened.SerializeToString() == envelope.payload
    for now in (issued + timedelta(seconds=301), issued - timedelta(seconds=301)):
        with pytest.raises(CoalitionError) as err:
            verifier_for(v, now).open(envelope, cls, sender=v["signer_id"])
        assert err.value.reason == "STALE_MESSAGE"


@pytest.mark.parametrize("name", NAMES)
def test_any_flipped_byte_is_refused(name: str) -> None:
    v = ENVELOPES[name]
    raw = h(v["envelope_hex"])
    verifier = verifier_for(v, at(v["header"]["issued_at"]))
    cls = TYPES[v["payload_type"]]
    for i in range(len(raw)):
        flipped = bytearray(raw)
        flipped[i] ^= 0x01
        try:
            envelope = SignedEnvelope.FromString(bytes(flipped))
        except DecodeError:
            continue  # not even an envelope any more
        with pytest.raises(CoalitionError):
            verifier.open(envelope, cls, sender=v["signer_id"])


@pytest.mark.parametrize("field", ["payload", "signature"])
@pytest.mark.parametrize("name", NAMES)
def test_a_flipped_payload_or_signature_byte_is_a_bad_signature(name: str, field: str) -> None:
    v = ENVELOPES[name]
    envelope = SignedEnvelope.FromString(h(v["envelope_hex"]))
    value = bytearray(getattr(envelope, field))
    value[len(value) // 2] ^= 0x80
    setattr(envelope, field, bytes(value))
    with pytest.raises(CoalitionError) as err:
        verifier_for(v, at(v["header"]["issued_at"])).open(
            envelope, TYPES[v["payload_type"]], sender=v["signer_id"]
        )
    assert (err.value.code.name, err.value.reason) == ("UNAUTHENTICATED", "BAD_SIGNATURE")


def test_the_hold_receipt_answers_the_place_hold_command_and_nothing_else() -> None:
    v = ENVELOPES["hold_receipt"]
    answer = SignedEnvelope.FromString(h(v["envelope_hex"]))
    request = SignedEnvelope.FromString(h(ENVELOPES[v["answers"]]["envelope_hex"]))
    verifier = verifier_for(v, at(v["header"]["issued_at"]))
    receipt = open_answer(verifier, answer, ipb.HoldReceipt, request, v["signer_id"])
    assert receipt.hold_id + ":hold" == receipt.header.request_id  # "<authorization_id>:hold"
    other = SignedEnvelope.FromString(h(ENVELOPES["authorize_command"]["envelope_hex"]))
    with pytest.raises(CoalitionError) as err:
        open_answer(verifier, answer, ipb.HoldReceipt, other, v["signer_id"])
    assert err.value.reason == "ANSWER_MISMATCH"


def own_entry_hash(previous: bytes, e: dict[str, Any], envelope: bytes) -> bytes:
    return hashlib.sha256(
        previous
        + e["sequence"].to_bytes(8, "big")
        + e["direction"].encode()
        + b"\x00"
        + e["peer_id"].encode()
        + b"\x00"
        + e["outcome"].encode()
        + b"\x00"
        + hashlib.sha256(envelope).digest()
    ).digest()


def test_audit_entry_hashes_chain_as_documented() -> None:
    previous = bytes(32)
    for e in DATA["audit_log"]:
        envelope = h(ENVELOPES[e["envelope"]]["envelope_hex"])
        assert e["envelope_sha256_hex"] == hashlib.sha256(envelope).hexdigest()
        assert h(e["previous_hash_hex"]) == previous
        mine = own_entry_hash(previous, e, envelope)
        theirs = audit.entry_hash(
            previous, e["sequence"], e["direction"], e["peer_id"], e["outcome"], envelope
        )
        assert mine == theirs == h(e["entry_hash_hex"])
        previous = mine


def own_totp(secret_base32: str, unix_time: int) -> str:
    key = base64.b32decode(secret_base32)
    mac = hmac.new(key, (unix_time // 30).to_bytes(8, "big"), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    number = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
    return f"{number % 10**6:06d}"


def test_consent_codes_are_rfc_6238() -> None:
    totp = DATA["consent_totp"]
    for case in totp["codes"]:
        assert case["time_step"] == case["unix_time"] // 30
        assert own_totp(totp["secret_base32"], case["unix_time"]) == case["code"]


def own_bound_code(secret_base32: str, case: dict[str, Any]) -> tuple[bytes, bytes, str]:
    """docs/protocol.md "The member's consent", from the page alone: message, HMAC, code."""
    fields = [case["purpose"], case["issuer_id"], case["acquirer_id"], str(case["max_points"])]
    fields.append(case["order_id"])
    message = b"COALITION-CONSENT-V1\x00" + b"\x00".join(f.encode() for f in fields) + b"\x00"
    message += (case["unix_time"] // 30).to_bytes(8, "big")
    mac = hmac.new(base64.b32decode(secret_base32), message, hashlib.sha256).digest()
    offset = mac[-1] & 0x0F
    number = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
    return message, mac, f"{number % 10**6:06d}"


def test_bound_consent_codes_follow_the_documented_recipe() -> None:
    bound = DATA["consent_bound"]
    codes = set()
    for case in bound["cases"]:
        message, mac, code = own_bound_code(bound["secret_base32"], case)
        assert case["time_step"] == case["unix_time"] // 30
        assert message.hex() == case["message_hex"]
        assert mac.hex() == case["hmac_sha256_hex"]
        assert (mac[-1] & 0x0F, code) == (case["offset"], case["code"])
        codes.add((case["unix_time"] // 30, code))
    assert len(codes) == len(bound["cases"])  # amount, acquirer, order, purpose all bind
    # The product's wallet and issuer compute the same codes.
    from coalition_kernel import consent

    for case in bound["cases"]:
        assert (
            consent.bound_code(
                bound["secret_base32"],
                purpose=case["purpose"],
                issuer_id=case["issuer_id"],
                acquirer_id=case["acquirer_id"],
                max_points=case["max_points"],
                order_id=case["order_id"],
                step=case["time_step"],
            )
            == case["code"]
        )


def test_the_authorize_vector_carries_the_members_bound_code() -> None:
    authorize = ENVELOPES["authorize_command"]["message_json"]
    place = ENVELOPES["place_hold_command"]["message_json"]
    (first,) = [
        c
        for c in DATA["consent_bound"]["cases"]
        if c["max_points"] == 450 and c["unix_time"] > 59 and c["acquirer_id"] == "noodles"
    ]
    assert authorize["consent_code"] == place["consent_code"] == first["code"]
    assert int(authorize["consent_max_points"]) == int(place["consent_max_points"]) == 450
    assert int(authorize["points"]) <= 450


def test_a_refusal_record_is_a_bounded_protobuf_of_the_refused_envelope() -> None:
    vector = DATA["refusal_record"]
    raw = h(vector["envelope_hex"])
    record = json_format.ParseDict(vector["record_json"], xpb.RefusalRecord())
    assert record.envelope_sha256 == hashlib.sha256(raw).digest()
    assert record.envelope_size == len(raw)
    assert record.SerializeToString().hex() == vector["record_hex"]
    assert (
        hashlib.sha256(h(vector["record_hex"])).hexdigest() == vector["entry_envelope_sha256_hex"]
    )


def test_the_generator_reproduces_the_committed_file(tmp_path: pathlib.Path) -> None:
    out = tmp_path / "envelope-v1.json"
    subprocess.run(
        [sys.executable, str(GENERATOR), "--out", str(out)],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    assert out.read_bytes() == VECTORS.read_bytes(), "run scripts/make_test_vectors.py"


def test_the_protocol_page_points_at_the_vectors() -> None:
    page = (ROOT / "docs" / "protocol.md").read_text()
    assert "test-vectors/envelope-v1.json" in page
    assert "COALITION-ENVELOPE-V1" in page
