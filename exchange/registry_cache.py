"""The registry served from memory, checked against the database once per transaction.

Every signed message the exchange opens needs its signer's key and standing, and every
redemption its issuer's endpoint and rate and its acquirer's fee: read from the database that
was five to eight statements a signature. Here the whole registry (merchants, their keys and
rates: a row or a few per merchant) is held as one immutable `Snapshot`, tagged with the
registry's *fingerprint*: one SELECT that digests every row of the three tables. A transaction
that needs the registry first reads the fingerprint (once per transaction, however many
requests a group commit batches into it); if it differs from the snapshot's, the snapshot is
reloaded in that same transaction. So a key rotation or a suspension committed by any exchange
process (or by hand in SQL) is seen by the very next request of every process: its transaction
starts after the change committed and reads the changed fingerprint.

The fingerprint digests the rows themselves rather than reading a version counter: no write
path (operator RPC, CLI, a hand-made UPDATE) can change the registry without changing it. It
costs a scan of the registry tables, which are small (a row per merchant, a few per key and
rate); a counter row bumped by every registry change would make it O(1), at the price of a
migration and of trusting every writer to bump it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, Engine, event, select, text
from sqlalchemy.exc import OperationalError

from coalition_kernel.db import READ_ONLY
from coalition_kernel.envelope import OPERATOR_ID, Verifier
from coalition_kernel.errors import NotFound, PermissionDenied, Unauthenticated, Unavailable
from coalition_kernel.keys import key_id
from coalition_kernel.points import parse_ratio
from exchange.registry import Key, Merchant, public_key_of
from exchange.schema import merchant_keys, merchant_rates, merchants

_ROWS = {
    "merchants": "merchant_id, status, fee_bps, endpoint, net_debit_cap_fen, "
    "breakage_operator_bps, display_name",
    "merchant_keys": "merchant_id, key_id, valid_from, valid_until, public_key",
    "merchant_rates": "merchant_id, version, fen_per_point",
}
_ORDER = {
    "merchants": "merchant_id",
    "merchant_keys": "merchant_id, key_id",
    "merchant_rates": "merchant_id, version",
}


def _digest_sql(dialect: str) -> str:
    parts = []
    for table, columns in _ROWS.items():
        fields = [c.strip() for c in columns.split(",")]
        if dialect == "postgresql":
            row = " || '|' || ".join(f"coalesce({f}::text, '-')" for f in fields)
            parts.append(
                f"coalesce((SELECT string_agg({row}, E'\\n' ORDER BY {_ORDER[table]}) "
                f"FROM {table}), '')"
            )
        else:
            row = " || '|' || ".join(f"ifnull(quote({f}), '-')" for f in fields)
            parts.append(
                f"ifnull((SELECT group_concat(r, char(10)) FROM (SELECT {row} AS r "
                f"FROM {table} ORDER BY {_ORDER[table]})), '')"
            )
    joined = " || '#' || ".join(parts)
    if dialect == "postgresql":
        return f"SELECT md5({joined})"
    return f"SELECT {joined}"


@dataclass(frozen=True)
class Snapshot:
    fingerprint: str
    merchants: dict[str, Merchant]
    keys: dict[tuple[str, str], Key]


_CHECKED = "coalition_registry_checked"  # conn.info: the fingerprint was read in this transaction


class RegistryCache:
    """The registry of one exchange process, fresh as of the current transaction's start."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sql = text(_digest_sql(engine.dialect.name))
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()
        self.reloads = 0  # how often the registry was read whole (tests, figures)
        _forget_on_transaction_end(engine)

    def snapshot(self, conn: Connection) -> Snapshot:
        """The registry as of this transaction: the fingerprint is read once per transaction,
        the snapshot reloaded (in this transaction) only when it changed."""
        current = self._snapshot
        checked = conn.info.get(_CHECKED)
        if current is not None and checked == current.fingerprint:
            return current
        fingerprint = str(conn.execute(self._sql).scalar_one())
        if current is None or current.fingerprint != fingerprint:
            current = self._load(conn, fingerprint)
            with self._lock:
                self._snapshot = current
                self.reloads += 1
        conn.info[_CHECKED] = fingerprint
        return current

    def fresh(self) -> Snapshot:
        """The registry as of now, for callers outside any transaction: one read-only one."""
        options: dict[str, object] = (
            {"isolation_level": "AUTOCOMMIT"}  # one round trip, no BEGIN/COMMIT
            if self.engine.dialect.name == "postgresql"
            else {READ_ONLY: True}  # a deferred BEGIN: no write lock
        )
        try:
            with self.engine.connect() as conn:
                conn.execution_options(**options)
                with conn.begin():
                    return self.snapshot(conn)
        except OperationalError as exc:
            raise Unavailable(
                "DATABASE_UNAVAILABLE", "the exchange database is unreachable"
            ) from exc

    def load(self, conn: Connection, merchant_id: str) -> Merchant:
        merchant = self.snapshot(conn).merchants.get(merchant_id)
        if merchant is None:
            raise NotFound("MERCHANT_NOT_FOUND", f"no merchant {merchant_id!r} in the coalition")
        return merchant

    def active(self, conn: Connection, merchant_id: str, role: str) -> Merchant:
        """The merchant, refused unless active (PERMISSION_DENIED MERCHANT_SUSPENDED)."""
        merchant = self.load(conn, merchant_id)
        if merchant.status != "active":
            raise PermissionDenied(
                "MERCHANT_SUSPENDED", f"{role} {merchant_id} is suspended from the coalition"
            )
        return merchant

    @staticmethod
    def _load(conn: Connection, fingerprint: str) -> Snapshot:
        keys: dict[str, list[Key]] = {}
        by_id: dict[tuple[str, str], Key] = {}
        for k in conn.execute(select(merchant_keys).order_by(merchant_keys.c.valid_from)):
            key = Key(k.key_id, k.public_key, k.valid_from, k.valid_until)
            keys.setdefault(k.merchant_id, []).append(key)
            by_id[(k.merchant_id, k.key_id)] = key
        rates = {
            r.merchant_id: r
            for r in conn.execute(select(merchant_rates).order_by(merchant_rates.c.version))
        }
        found = {}
        for row in conn.execute(select(merchants)):
            rate = rates[row.merchant_id]
            found[row.merchant_id] = Merchant(
                row.merchant_id,
                row.display_name,
                row.status,
                row.fee_bps,
                row.endpoint,
                parse_ratio(rate.fen_per_point),
                rate.version,
                keys.get(row.merchant_id, []),
                row.net_debit_cap_fen,
                row.breakage_operator_bps,
            )
        return Snapshot(fingerprint, found, by_id)


def _forget_on_transaction_end(engine: Engine) -> None:
    """The fingerprint read by a transaction says nothing about the next one."""
    if event.contains(engine, "begin", _forget):
        return
    for name in ("begin", "commit", "rollback"):
        event.listen(engine, name, _forget)


def _forget(conn: Connection) -> None:
    conn.info.pop(_CHECKED, None)


class CachedKeys:
    """The exchange's KeyDirectory over the cached registry: the operator's key, and merchants'
    keys in their windows. `pin` binds the snapshot a transaction just checked to the calling
    thread; without one, each look-up checks the registry in a read-only transaction of its own.
    """

    def __init__(self, cache: RegistryCache, operator_key: Ed25519PublicKey) -> None:
        self.cache = cache
        self.operator_key = operator_key
        self._pinned = threading.local()

    def pin(self, snapshot: Snapshot | None) -> None:
        self._pinned.snapshot = snapshot

    def _snapshot(self) -> Snapshot:
        pinned: Snapshot | None = getattr(self._pinned, "snapshot", None)
        return pinned if pinned is not None else self.cache.fresh()

    def public_key(self, signer_id: str, key_id_: str, at: datetime) -> Ed25519PublicKey:
        if signer_id == OPERATOR_ID:
            if key_id(self.operator_key) != key_id_:
                raise Unauthenticated("UNKNOWN_KEY", f"key {key_id_!r} is not the operator's key")
            return self.operator_key
        snapshot = self._snapshot()
        if signer_id not in snapshot.merchants:
            raise Unauthenticated(
                "UNKNOWN_SIGNER", f"{signer_id!r} is not a merchant of the coalition"
            )
        key = snapshot.keys.get((signer_id, key_id_))
        if key is None:
            raise Unauthenticated(
                "UNKNOWN_KEY", f"key {key_id_!r} is not registered for {signer_id}"
            )
        if at < key.valid_from:
            raise Unauthenticated(
                "KEY_NOT_YET_VALID", f"key {key_id_} is valid from {key.valid_from.isoformat()}"
            )
        if key.valid_until is not None and at >= key.valid_until:
            raise Unauthenticated(
                "KEY_EXPIRED", f"key {key_id_} was revoked at {key.valid_until.isoformat()}"
            )
        return _public(key.public_key)

    def check_standing(self, signer_id: str) -> None:
        """A suspended merchant is refused, after its signature has been proven."""
        if signer_id == OPERATOR_ID:
            return
        merchant = self._snapshot().merchants.get(signer_id)
        if merchant is None:
            raise NotFound("MERCHANT_NOT_FOUND", f"no merchant {signer_id!r} in the coalition")
        if merchant.status != "active":
            raise PermissionDenied(
                "MERCHANT_SUSPENDED", f"merchant {signer_id} is suspended from the coalition"
            )


@contextmanager
def checked(verifier: Verifier, conn: Connection) -> Iterator[None]:
    """Within it, `verifier` looks keys and standing up in the registry as of `conn`'s
    transaction (when its directory is the cached one), with no transaction of its own."""
    keys = verifier.keys
    if not isinstance(keys, CachedKeys):
        yield
        return
    keys.pin(keys.cache.snapshot(conn))
    try:
        yield
    finally:
        keys.pin(None)


_PUBLIC: dict[bytes, Ed25519PublicKey] = {}


def _public(raw: bytes) -> Ed25519PublicKey:
    key = _PUBLIC.get(raw)
    if key is None:
        key = _PUBLIC[raw] = public_key_of(raw)
    return key
