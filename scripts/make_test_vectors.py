"""Writes docs/test-vectors/envelope-v1.json: signed-envelope and audit-log test vectors.

Everything is derived from fixed inputs (the RFC 8032 test seeds, fixed clocks, fixed ids), and
Ed25519 signatures are deterministic, so the file is the same on every run. The envelopes are
sealed by the product's own Signer and the audit hashes computed by the exchange's own
`entry_hash`; tests/test_protocol_vectors.py recomputes all of it independently.

python scripts/make_test_vectors.py           # write docs/test-vectors/envelope-v1.json
python scripts/make_test_vectors.py --check   # exit 1 if the committed file differs
python scripts/make_test_vectors.py --out F   # write F instead
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import pathlib
import sys
from datetime import UTC, datetime
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a file: make the repository's packages importable
    sys.path.insert(0, str(ROOT))

import pyotp  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from google.protobuf import json_format  # noqa: E402
from google.protobuf.message import Message  # noqa: E402

from coalition.envelope.v1.envelope_pb2 import SignedEnvelope  # noqa: E402
from coalition.exchange.v1 import exchange_pb2 as xpb  # noqa: E402
from coalition.issuer.v1 import issuer_pb2 as ipb  # noqa: E402
from coalition_kernel import consent  # noqa: E402
from coalition_kernel.consent import spend_code  # noqa: E402
from coalition_kernel.envelope import (  # noqa: E402
    DOMAIN_TAG,
    EXCHANGE_ID,
    Signer,
    digest,
    signed_bytes,
)
from coalition_kernel.keys import key_id  # noqa: E402
from exchange import audit  # noqa: E402

OUT = ROOT / "docs" / "test-vectors" / "envelope-v1.json"

# The private seeds of RFC 8032 section 7.1, TESTS 1-3, so key derivation can be checked there too.
SEEDS = {
    "noodles": "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
    EXCHANGE_ID: "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
    "tea": "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
}
AUTHORIZATION_ID = "a-0f3c2b1a9d8e7f6a5b4c3d2e1f0a9b8c"
# RFC 6238 appendix B's SHA-1 secret ("12345678901234567890"), in base32 as a wallet holds it.
TOTP_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
TOTP_TIMES = (59, 1111111109, 1234567890, 2000000000)


def _clock(at: datetime):  # type: ignore[no-untyped-def]
    return lambda: at


def _signer(party: str, at: datetime) -> Signer:
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(SEEDS[party]))
    return Signer(party, key, clock=_clock(at))


def _raw_public(signer: Signer) -> bytes:
    return signer.private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def _vector(
    signer: Signer,
    message: Message,
    envelope: SignedEnvelope,
    answers: str | None,
    description: str,
) -> dict[str, Any]:
    header = message.header  # type: ignore[attr-defined]
    return {
        "description": description,
        "signer_id": signer.signer_id,
        "private_seed_hex": SEEDS[signer.signer_id],
        "public_key_hex": _raw_public(signer).hex(),
        "key_id": key_id(signer.private_key.public_key()),
        "payload_type": envelope.payload_type,
        "message_json": json_format.MessageToDict(message, preserving_proto_field_name=True),
        "header": {
            "request_id": header.request_id,
            "issued_at": header.issued_at.ToJsonString(),
            "sender_id": header.sender_id,
            "audience": header.audience,
            "request_digest_hex": header.request_digest.hex(),
        },
        "answers": answers,
        "payload_hex": envelope.payload.hex(),
        "signed_bytes_hex": signed_bytes(envelope.payload_type, envelope.payload).hex(),
        "signature_hex": envelope.signature.hex(),
        "digest_hex": digest(envelope).hex(),
        "envelope_hex": envelope.SerializeToString().hex(),
    }


def build() -> dict[str, Any]:
    t_authorize = datetime(2026, 1, 5, 9, 0, 0, tzinfo=UTC)
    t_hold = datetime(2026, 1, 5, 9, 0, 0, 250_000, tzinfo=UTC)
    t_receipt = datetime(2026, 1, 5, 9, 0, 0, 400_000, tzinfo=UTC)

    # The member's wallet showed "spend up to 450 tea points at noodles?": its bound code.
    code = spend_code(TOTP_SECRET, "tea", "noodles", 450, t_authorize)
    noodles = _signer("noodles", t_authorize)
    authorize = xpb.AuthorizeCommand(
        issuer_id="tea",
        member_id="m1",
        order_id="bowl-1",
        points=300,
        consent_code=code,
        consent_max_points=450,
    )
    authorize_env = noodles.seal(
        authorize, audience=EXCHANGE_ID, request_id="6d1f0c6e-2b9a-4c55-9a8e-3f0b7c2d1a90"
    )

    exchange = _signer(EXCHANGE_ID, t_hold)
    place = ipb.PlaceHoldCommand(
        hold_id=AUTHORIZATION_ID,
        member_id="m1",
        points=300,
        consent_code=code,
        acquirer_id="noodles",
        ttl_seconds=900,
        consent_max_points=450,
    )
    place_env = exchange.seal(place, audience="tea", request_id=f"{AUTHORIZATION_ID}:hold")

    tea = _signer("tea", t_receipt)
    receipt = ipb.HoldReceipt(
        hold_id=AUTHORIZATION_ID, status=ipb.HOLD_STATUS_PENDING, points=300, member_id="m1"
    )
    receipt.expires_at.FromJsonString("2026-01-05T09:15:00.250Z")
    receipt_env = tea.seal(
        receipt, audience=EXCHANGE_ID, request_id=f"{AUTHORIZATION_ID}:hold", answering=place_env
    )

    envelopes = {
        "authorize_command": _vector(
            noodles,
            authorize,
            authorize_env,
            None,
            "The acquirer noodles asks the exchange to authorize 300 tea points for member m1.",
        ),
        "place_hold_command": _vector(
            exchange,
            place,
            place_env,
            None,
            "The exchange asks the issuer tea to hold them; request id <authorization_id>:hold.",
        ),
        "hold_receipt": _vector(
            tea,
            receipt,
            receipt_env,
            "place_hold_command",
            "Tea's signed answer: header.request_digest = digest of place_hold_command.",
        ),
    }

    entries = []
    previous = audit.GENESIS
    chain = [
        (1, "in", "noodles", "accepted", authorize_env, "authorize_command"),
        (2, "out", "tea", "sent", place_env, "place_hold_command"),
        (3, "in", "tea", "accepted", receipt_env, "hold_receipt"),
    ]
    for sequence, direction, peer, outcome, envelope, name in chain:
        raw = envelope.SerializeToString()
        entry = audit.entry_hash(previous, sequence, direction, peer, outcome, raw)
        entries.append(
            {
                "sequence": sequence,
                "direction": direction,
                "peer_id": peer,
                "outcome": outcome,
                "envelope": name,
                "envelope_sha256_hex": hashlib.sha256(raw).hexdigest(),
                "previous_hash_hex": previous.hex(),
                "entry_hash_hex": entry.hex(),
            }
        )
        previous = entry

    totp = pyotp.TOTP(TOTP_SECRET)
    return {
        "consent_bound": _consent_vectors(),
        "refusal_record": _refusal_record(),
        "format": "coalition envelope test vectors, version 1",
        "generator": "scripts/make_test_vectors.py",
        "specification": "docs/protocol.md",
        "domain_tag": DOMAIN_TAG.decode(),
        "envelopes": envelopes,
        "audit_log": entries,
        "consent_totp": {
            "description": "RFC 6238, SHA-1, 6 digits, 30-second steps (RFC 6238 appendix B).",
            "secret_base32": TOTP_SECRET,
            "codes": [
                {"unix_time": t, "time_step": t // 30, "code": totp.at(t)} for t in TOTP_TIMES
            ],
        },
    }


def _consent_vectors() -> dict[str, Any]:
    """Bound consent codes (docs/protocol.md, "The member's consent"), every step spelled out."""
    cases = [
        ("spend", "tea", "noodles", 450, "", 1767603600),  # 2026-01-05T09:00:00Z
        ("spend", "tea", "noodles", 451, "", 1767603600),  # one point more: another code
        ("spend", "tea", "salon", 450, "", 1767603600),  # another acquirer: another code
        ("spend", "tea", "noodles", 100, "bowl-7", 1767603629),  # bound to an order
        ("portfolio", "tea", "noodles", 0, "", 1767603600),
        ("spend", "tea", "noodles", 450, "", 59),
    ]
    out = []
    for purpose, issuer, acquirer, max_points, order, unix_time in cases:
        step = unix_time // consent.STEP_SECONDS
        message = consent.consent_message(purpose, issuer, acquirer, max_points, order, step)
        mac = hmac.new(consent.secret_bytes(TOTP_SECRET), message, hashlib.sha256).digest()
        out.append(
            {
                "purpose": purpose,
                "issuer_id": issuer,
                "acquirer_id": acquirer,
                "max_points": max_points,
                "order_id": order,
                "unix_time": unix_time,
                "time_step": step,
                "message_hex": message.hex(),
                "hmac_sha256_hex": mac.hex(),
                "offset": mac[-1] & 0x0F,
                "code": consent.truncate(mac),
            }
        )
    return {
        "description": (
            "HMAC-SHA-256(base32-decoded wallet secret, message), RFC 4226 dynamic truncation "
            "to 6 digits; message = tag 0x00 purpose 0x00 issuer 0x00 acquirer 0x00 "
            "max_points (decimal) 0x00 order 0x00 time_step (uint64 big-endian)."
        ),
        "tag": consent.TAG.decode(),
        "secret_base32": TOTP_SECRET,
        "step_seconds": consent.STEP_SECONDS,
        "cases": out,
    }


def _refusal_record() -> dict[str, Any]:
    """What the audit log keeps of an envelope refused before its signature was proven."""
    forged = SignedEnvelope(
        payload=b"\x0a\x00",
        payload_type="coalition.exchange.v1.QuoteCommand",
        signer_id="tea",
        key_id="0123456789abcdef",
        signature=bytes(64),
    )
    raw = forged.SerializeToString()
    record = xpb.RefusalRecord(
        envelope_sha256=hashlib.sha256(raw).digest(),
        envelope_size=len(raw),
        claimed_signer_id=forged.signer_id,
        claimed_key_id=forged.key_id,
        payload_type=forged.payload_type,
        reason="BAD_SIGNATURE",
        peer="ipv4:203.0.113.7:50412",
    )
    body = record.SerializeToString()
    return {
        "description": (
            "A forged envelope's bounded record: the audit entry's envelope bytes, peer_id "
            "'unverified', outcome 'refused:BAD_SIGNATURE'."
        ),
        "envelope_hex": raw.hex(),
        "record_json": json_format.MessageToDict(record, preserving_proto_field_name=True),
        "record_hex": body.hex(),
        "entry_envelope_sha256_hex": hashlib.sha256(body).hexdigest(),
    }


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=OUT, help="where to write the JSON")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the file differs from what is generated"
    )
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.out.read_text() if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date: run scripts/make_test_vectors.py", file=sys.stderr)
            return 1
        print(f"{args.out}: up to date")
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
