"""Members' wallet secrets, encrypted at rest under a key the database never holds.

The wallet secret makes a member's consent codes: whoever reads it can spend her points at any
shop. The node seals it with AES-256-GCM (a fresh 12-byte nonce each time, the member id as
associated data, so a sealed secret copied onto another member's row does not open) under the
node's wallet key, which comes from a file (`wallet_key_file` in node.toml, mode 0600, written
by `coalition node init`) or from the environment (`COALITION_WALLET_KEYS`, the file's text).

The key file holds one base64 key (32 bytes) per line; the last line is the current key, the
ones above it still open what they sealed. A key's id is derived from the key itself. To rotate:
append a new key line (`WalletKeys.rotated()` makes one; no CLI yet), restart; at start the
node re-seals every secret under the current key (`reseal`); then the old lines may go.

`wallet_secret_of(member_row)` is the one place a secret is opened (merchant_node/ledger/
consent.py's `wallet_secret` and the enrollment answer call it). Keys are registered process-wide
by id when loaded, so the ledger's consent check needs no key passed through every call.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import pathlib
import secrets
import threading

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, Engine, Row, func, select, update

from coalition_kernel.db import run_in_transaction
from coalition_kernel.errors import FailedPrecondition
from merchant_node.ledger.schema import idempotency, members

log = logging.getLogger(__name__)
ENV = "COALITION_WALLET_KEYS"
_NONCE = 12
_KNOWN: dict[str, bytes] = {}
_KNOWN_LOCK = threading.Lock()


def key_id_of(key: bytes) -> str:
    return hashlib.sha256(b"coalition-wallet-key\x00" + key).hexdigest()[:16]


class WalletKeys:
    """The node's wallet keys: the current one seals, any of them opens what it sealed."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys or any(len(k) != 32 for k in keys):
            raise ValueError("wallet keys are 32 bytes each (AES-256), at least one")
        self.keys = {key_id_of(k): k for k in keys}
        self.current = key_id_of(keys[-1])
        with _KNOWN_LOCK:
            _KNOWN.update(self.keys)

    @classmethod
    def parse(cls, text: str) -> WalletKeys:
        lines = [ln.strip() for ln in text.replace(";", "\n").splitlines()]
        try:
            keys = [base64.b64decode(ln, validate=True) for ln in lines if ln and ln[0] != "#"]
        except ValueError as exc:
            raise ValueError("a wallet key line is not base64") from exc
        return cls(keys)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None) -> WalletKeys:
        """From $COALITION_WALLET_KEYS if set, else from the key file."""
        if os.environ.get(ENV):
            return cls.parse(os.environ[ENV])
        if not path:
            raise ValueError(
                f"no wallet key: set wallet_key_file in node.toml or ${ENV} "
                "(coalition node init writes one)"
            )
        return cls.parse(pathlib.Path(path).read_text())

    @classmethod
    def generate(cls) -> WalletKeys:
        return cls([secrets.token_bytes(32)])

    def text(self) -> str:
        """The key file's content (keys in order, the current one last)."""
        ordered = [k for kid, k in self.keys.items() if kid != self.current]
        ordered.append(self.keys[self.current])
        return "".join(base64.b64encode(k).decode() + "\n" for k in ordered)

    def write(self, path: pathlib.Path) -> None:
        """Writes the key file readable by its owner only (created 0600, never wider)."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.text())
        path.chmod(0o600)

    def rotated(self) -> WalletKeys:
        """These keys plus a new current one."""
        ordered = [k for kid, k in self.keys.items() if kid != self.current]
        return WalletKeys([*ordered, self.keys[self.current], secrets.token_bytes(32)])

    def seal(self, secret: str, member_id: str) -> tuple[str, bytes]:
        nonce = secrets.token_bytes(_NONCE)
        sealed = AESGCM(self.keys[self.current]).encrypt(nonce, secret.encode(), member_id.encode())
        return self.current, nonce + sealed


def _open(key_id: str, sealed: bytes, member_id: str) -> str:
    key = _KNOWN.get(key_id)
    if key is None:
        raise FailedPrecondition(
            "WALLET_KEY_MISSING",
            f"the wallet key {key_id} that sealed this member's secret is not loaded; "
            "restore it to the node's wallet key file",
        )
    try:
        return AESGCM(key).decrypt(sealed[:_NONCE], sealed[_NONCE:], member_id.encode()).decode()
    except InvalidTag as exc:
        raise FailedPrecondition(
            "WALLET_SECRET_DAMAGED", "the member's sealed wallet secret does not open"
        ) from exc


def wallet_secret_of(member: Row) -> str:
    """The member's wallet secret in clear ("" if she has none), from her `members` row: the one
    place a secret is opened."""
    if member.wallet_secret_sealed is not None:
        return _open(member.wallet_key_id, member.wallet_secret_sealed, member.member_id)
    # A clear secret left from before migration 0007, until the node starts with its key.
    return member.wallet_secret or ""


def sealed_values(keys: WalletKeys, member_id: str, secret: str) -> dict[str, object]:
    """The `members` columns that hold `secret` sealed (and no clear copy)."""
    key_id, sealed = keys.seal(secret, member_id)
    return {"wallet_secret": None, "wallet_secret_sealed": sealed, "wallet_key_id": key_id}


def reseal(engine: Engine, keys: WalletKeys, batch: int = 500) -> int:
    """Seals every clear secret left from before migration 0007 (and blanks it in stored
    enrollment answers), and re-seals those under an older key with the current one.
    Idempotent; returns how many rows it changed."""
    changed = 0
    with engine.connect() as conn:
        legacy = conn.execute(
            select(members.c.id).where(members.c.wallet_secret.is_not(None)).limit(1)
        ).first()
    if legacy is not None:  # a node enrolled before 0007: its stored answers hold secrets too
        changed += run_in_transaction(engine, _scrub_enroll_answers)
    while True:
        done = run_in_transaction(engine, lambda conn: _reseal_batch(conn, keys, batch))
        changed += done
        if done < batch:
            _warn_of_unknown_keys(engine, keys)
            return changed


def _warn_of_unknown_keys(engine: Engine, keys: WalletKeys) -> None:
    """Secrets sealed under a key this node does not hold cannot be re-sealed (nor opened: their
    members' consent fails WALLET_KEY_MISSING); said once at start, not fatal."""
    with engine.connect() as conn:
        lost = conn.execute(
            select(func.count()).where(
                members.c.wallet_secret_sealed.is_not(None),
                members.c.wallet_key_id.not_in(list(keys.keys)),
            )
        ).scalar_one()
    if lost:
        log.warning(
            "%d members' wallet secrets are sealed under a wallet key this node does not hold; "
            "restore that key to the wallet key file (last line stays the current key)",
            lost,
        )


def _scrub_enroll_answers(conn: Connection) -> int:
    """Before 0007 an enrollment's stored answer held the secret in clear: blank it (a retry
    now reads the sealed secret instead)."""
    rows = conn.execute(
        select(idempotency.c.request_id, idempotency.c.response).where(
            idempotency.c.operation == "enroll", idempotency.c.outcome == "ok"
        )
    ).all()
    scrubbed = 0
    for row in rows:
        answer = json.loads(row.response)
        if answer.get("wallet_secret"):
            answer["wallet_secret"] = ""
            conn.execute(
                update(idempotency)
                .where(idempotency.c.request_id == row.request_id)
                .values(response=json.dumps(answer, sort_keys=True).encode())
            )
            scrubbed += 1
    return scrubbed


def _reseal_batch(conn: Connection, keys: WalletKeys, batch: int) -> int:
    due = conn.execute(
        select(members)
        .where(
            members.c.wallet_secret.is_not(None)
            | (
                members.c.wallet_secret_sealed.is_not(None)
                & (members.c.wallet_key_id != keys.current)
                & members.c.wallet_key_id.in_(list(keys.keys))
            )
        )
        .order_by(members.c.id)
        .limit(batch)
    ).all()
    for m in due:
        values = sealed_values(keys, m.member_id, wallet_secret_of(m))
        conn.execute(update(members).where(members.c.id == m.id).values(**values))
    return len(due)
