"""Wallet secrets sealed at rest: legacy clear secrets sealed at start, key rotation, a sealed
secret bound to its member, key files readable by their owner only."""

from __future__ import annotations

import json
import os

import pytest
import sqlalchemy as sa

from coalition_kernel.errors import FailedPrecondition
from merchant_node.auth import vault
from merchant_node.auth.vault import WalletKeys, reseal, wallet_secret_of
from merchant_node.ledger.commands import Enroll
from merchant_node.ledger.schema import idempotency, members


def member_row(ledger, member_id: str):  # type: ignore[no-untyped-def]
    with ledger.engine.connect() as conn:
        return conn.execute(sa.select(members).where(members.c.member_id == member_id)).one()


def test_clear_secrets_from_before_0007_are_sealed_at_start_and_still_open(ledger):
    enrolled = ledger.enroll(Enroll("e-1", "m-new"))
    # What a node enrolled before migration 0007 left: a clear secret, and its enrollment answer
    # (with the secret) in the idempotency record.
    legacy = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    answer = {"member_id": "m-old", "referral_code": "ABCDEFGH", "referred_by_code": ""}
    answer |= {"enrolled_at": ledger.clock().isoformat(), "wallet_secret": legacy}
    with ledger.engine.begin() as conn:
        conn.execute(
            sa.insert(members).values(
                member_id="m-old",
                referral_code="ABCDEFGH",
                enrolled_at=ledger.clock(),
                lifetime_earned=0,
                debt=0,
                wallet_secret=legacy,
                checkin_streak=0,
            )
        )
        conn.execute(
            sa.insert(idempotency).values(
                request_id="e-old",
                operation="enroll",
                request_hash="x" * 64,
                outcome="ok",
                response=json.dumps(answer).encode(),
                created_at=ledger.clock(),
            )
        )
    assert reseal(ledger.engine, ledger.wallet_keys) == 2  # the member and the stored answer
    old = member_row(ledger, "m-old")
    assert old.wallet_secret is None and legacy.encode() not in old.wallet_secret_sealed
    assert wallet_secret_of(old) == legacy
    with ledger.engine.connect() as conn:
        stored = conn.execute(
            sa.select(idempotency.c.response).where(idempotency.c.request_id == "e-old")
        ).scalar_one()
    assert legacy.encode() not in stored
    assert wallet_secret_of(member_row(ledger, "m-new")) == enrolled.wallet_secret
    assert reseal(ledger.engine, ledger.wallet_keys) == 0  # idempotent


def test_rotation_reseals_every_secret_under_the_new_key(ledger):
    secrets = {m: ledger.enroll(Enroll(f"e-{m}", m)).wallet_secret for m in ("a", "b", "c")}
    rotated = ledger.wallet_keys.rotated()
    assert rotated.current != ledger.wallet_keys.current
    assert reseal(ledger.engine, rotated, batch=2) == 3
    for member_id, secret in secrets.items():
        row = member_row(ledger, member_id)
        assert row.wallet_key_id == rotated.current and wallet_secret_of(row) == secret
    reloaded = WalletKeys.parse(rotated.text())
    assert reloaded.current == rotated.current and reloaded.keys == rotated.keys


def test_a_sealed_secret_copied_onto_another_member_does_not_open(ledger):
    ledger.enroll(Enroll("e-1", "alice"))
    ledger.enroll(Enroll("e-2", "bob"))
    alice = member_row(ledger, "alice")
    with ledger.engine.begin() as conn:
        conn.execute(
            sa.update(members)
            .where(members.c.member_id == "bob")
            .values(wallet_secret_sealed=alice.wallet_secret_sealed)
        )
    with pytest.raises(FailedPrecondition) as err:
        wallet_secret_of(member_row(ledger, "bob"))
    assert err.value.reason == "WALLET_SECRET_DAMAGED"


def test_a_node_without_its_wallet_key_cannot_enroll(ledger):
    ledger.wallet_keys = None
    with pytest.raises(FailedPrecondition) as err:
        ledger.enroll(Enroll("e-1", "m1"))
    assert err.value.reason == "WALLET_KEY_MISSING"


def test_the_key_file_is_written_for_its_owner_only_and_the_environment_overrides_it(
    tmp_path, monkeypatch
):
    keys = WalletKeys.generate()
    path = tmp_path / "wallet.key"
    keys.write(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert WalletKeys.load(path).current == keys.current
    other = WalletKeys.generate()
    monkeypatch.setenv(vault.ENV, other.text())
    assert WalletKeys.load(path).current == other.current
    monkeypatch.delenv(vault.ENV)
    with pytest.raises(ValueError, match="no wallet key"):
        WalletKeys.load("")
    with pytest.raises(ValueError):
        WalletKeys.parse("not base64!\n")


def test_a_node_from_before_wallet_keys_gets_one_when_served_and_a_lost_key_stops_it(
    ledger, tmp_path
):
    from merchant_node.config import NodeConfig
    from merchant_node.runtime import load_wallet_keys

    url = ledger.engine.url.render_as_string(hide_password=False)
    config = NodeConfig("tea", url, private_key_file=str(tmp_path / "node_ed25519.pem"))
    assert load_wallet_keys(config, ledger.engine) is None  # a worker or an audit: none made
    keys = load_wallet_keys(config, ledger.engine, create=True)  # `node serve`
    assert keys is not None and os.stat(tmp_path / "wallet.key").st_mode & 0o777 == 0o600
    ledger.wallet_keys = keys
    ledger.enroll(Enroll("e-1", "m1"))
    (tmp_path / "wallet.key").unlink()
    with pytest.raises(ValueError, match="missing"):
        load_wallet_keys(config, ledger.engine, create=True)


def test_secrets_under_a_key_the_node_does_not_hold_are_left_as_they_are_and_reported(
    ledger, caplog
):
    ledger.enroll(Enroll("e-1", "m1"))
    before = member_row(ledger, "m1")
    assert reseal(ledger.engine, WalletKeys.generate()) == 0  # a worker with another key file
    assert member_row(ledger, "m1").wallet_secret_sealed == before.wallet_secret_sealed
    assert "1 members' wallet secrets are sealed under a wallet key" in caplog.text
