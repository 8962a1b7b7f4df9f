"""Proving who logs in: a merchant with an admin-scoped API key of its own node (the keys of
merchant_node/auth, checked against that node's database), the operator with the operator's
console password (only its SHA-256 is in the console's config)."""

from __future__ import annotations

import hashlib
import hmac

from sqlalchemy import Engine

from coalition_kernel.errors import CoalitionError
from merchant_node.auth import domain, store
from merchant_node.auth.domain import ADMIN


def merchant_key_is_admin(engine: Engine, key: str) -> bool:
    """True when `key` is a live API key of this node with the admin scope."""
    try:
        key_id, secret = domain.parse_key(key.strip())
        with engine.connect() as conn:
            client = domain.verify(store.find(conn, key_id), key_id, secret)
    except CoalitionError:
        return False
    return ADMIN in client.scopes


def password_digest(password: str) -> str:
    return hashlib.sha256(b"coalition-console-operator\x00" + password.encode()).hexdigest()


def operator_password_ok(expected_digest: str, password: str) -> bool:
    if not expected_digest:
        return False  # no operator configured: nobody logs in as the operator
    return hmac.compare_digest(expected_digest.encode(), password_digest(password).encode())
