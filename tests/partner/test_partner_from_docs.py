"""An outside partner's client in JavaScript, written from the docs alone, must agree with them.

tests/partner/partner.mjs recomputes docs/test-vectors/*.json byte for byte (envelopes, audit
chain, refusal record, bound consent codes, RFC 6238 codes, lottery draws) with Node's standard
library, and exercises the documented refusals. The webhook signature's vector lives in
docs/merchant-node.md itself; here the node's own signer must reproduce it too, and the
partner's signer and verifier meet the node's (merchant_node.notify) both ways.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from merchant_node.notify.channels import WebhookRejected, sign_webhook, verify_webhook

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "partner" / "partner.mjs"
VECTORS = json.loads((ROOT / "docs" / "test-vectors" / "envelope-v1.json").read_text())


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        if os.environ.get("COALITION_REQUIRE_NODE") == "1":
            pytest.fail("node is not installed and COALITION_REQUIRE_NODE=1")
        pytest.skip("node is not installed")
    return node


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_node(), str(SCRIPT), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )


def test_partner_client_reproduces_every_vector() -> None:
    result = _run()
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 failed" in result.stdout


def _tea() -> dict[str, str]:
    return VECTORS["envelopes"]["hold_receipt"]  # type: ignore[no-any-return]


def test_the_node_signs_the_webhook_vector_as_the_partner_does() -> None:
    """docs/merchant-node.md's vector, as partner.mjs read it from the page and signed it."""
    emitted = json.loads(_run("--emit-webhook").stdout)
    private_key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(emitted["seed_hex"]))
    at = datetime.fromtimestamp(emitted["now"], UTC)
    signed = sign_webhook(private_key, emitted["body"].encode(), at)
    assert signed == {k: v for k, v in emitted["headers"].items() if k in signed}
    assert set(emitted["headers"]) - set(signed) == {
        "Coalition-Notification-Id",
        "Coalition-Merchant-Id",
    }


def test_the_node_accepts_a_webhook_the_partner_signed() -> None:
    emitted = json.loads(_run("--emit-webhook").stdout)
    public_key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(emitted["public_key_hex"]))
    body = emitted["body"].encode()
    now = datetime.fromtimestamp(emitted["now"], UTC)
    assert verify_webhook(public_key, emitted["headers"], body, now)["notification_id"] == "42"
    with pytest.raises(WebhookRejected):
        verify_webhook(public_key, emitted["headers"], body.replace(b"500", b"501"), now)


def test_the_partner_accepts_a_webhook_the_node_signed() -> None:
    tea = _tea()
    private_key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(tea["private_seed_hex"]))
    at = datetime(2026, 6, 27, 2, 0, tzinfo=UTC)
    body = '{"kind":"consent_locked","member_id":"m1","notification_id":"7","note":"锁定"}'
    headers = sign_webhook(private_key, body.encode(), at)
    given = {"public_key_hex": tea["public_key_hex"], "headers": headers, "body": body}
    accepted = _run("--verify-webhook", stdin=json.dumps({**given, "now": int(at.timestamp())}))
    assert accepted.stdout.strip() == "ok", accepted.stdout + accepted.stderr
    late = _run("--verify-webhook", stdin=json.dumps({**given, "now": int(at.timestamp()) + 301}))
    assert (late.returncode, late.stdout.strip()) == (1, "stale timestamp")
    forged = {**given, "body": body.replace("m1", "m2"), "now": int(at.timestamp())}
    refused = _run("--verify-webhook", stdin=json.dumps(forged))
    assert (refused.returncode, refused.stdout.strip()) == (1, "bad signature")
