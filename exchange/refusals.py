"""Requests refused before their signature is proven: kept small, rate-limited, counted.

Anyone can send the exchange an envelope claiming any signer. Until its signature is proven it
is nobody's message, so its bytes are not kept: the audit log gets a bounded `RefusalRecord`
(its SHA-256, size, claimed signer and key, payload type, reason, peer; a few hundred bytes
whatever was sent), under peer `unverified`. Per network peer (an IPv4 address, an IPv6 /64):

- a token bucket (`burst` refusals, then `per_second`) in memory: past it the caller is refused
  RESOURCE_EXHAUSTED `RATE_LIMITED` and only counted;
- at most `daily_records` records a UTC day in the audit log; past that, counted only.

`refusal_tally` holds, per peer and day, what was logged, what was only counted, what was rate
limited and the bytes received: the report of who is knocking. So the audit log grows by at
most `daily_records` × ~0.5 KiB per peer per day, and the tally by one row per peer per day.
What a proven signer sends is logged whole, as before (at most MAX_ENVELOPE_BYTES each).
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from coalition.envelope.v1.envelope_pb2 import SignedEnvelope
from coalition.exchange.v1 import exchange_pb2 as xpb
from coalition_kernel.errors import CoalitionError, ResourceExhausted
from exchange import audit
from exchange.schema import refusal_tally

UNVERIFIED = "unverified"  # audit-log peer of messages refused before their signer was proven
# The largest envelope the exchange reads (a real command is well under 4 KiB; gRPC itself stops
# bodies at 4 MiB). Larger ones are refused ENVELOPE_TOO_LARGE before any signature work.
MAX_ENVELOPE_BYTES = 64 * 1024
_KEEP = 128  # characters kept of each claimed string in a record


@dataclass(frozen=True)
class Limits:
    burst: float = 20.0  # refusals a peer may cause at once ...
    per_second: float = 2.0  # ... and after that, per second
    daily_records: int = 1000  # bounded records per peer and UTC day in the audit log


def peer_key(peer: str) -> str:
    """Who is knocking, as gRPC names the peer: its IPv4 address, its IPv6 /64 (one host holds a
    whole /64), or the raw name; never the port."""
    kind, _, rest = peer.partition(":")
    host = rest.rsplit(":", 1)[0] if kind in ("ipv4", "ipv6") else peer
    if kind == "ipv6":
        try:
            network = ipaddress.ip_network(f"{host.strip('[]')}/64", strict=False)
            host = str(network)
        except ValueError:
            pass
    return (host or "unknown")[:64]


class TokenBuckets:
    """One token bucket per peer key, in memory (per exchange process; reset on restart)."""

    def __init__(self, limits: Limits, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key → (tokens, at)

    def take(self, key: str) -> bool:
        now = self.clock()
        tokens, at = self._buckets.get(key, (self.limits.burst, now))
        tokens = min(self.limits.burst, tokens + (now - at) * self.limits.per_second)
        allowed = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if allowed else tokens, now)
        if len(self._buckets) > 100_000:  # a flood of addresses: forget the full buckets
            self._buckets = {k: v for k, v in self._buckets.items() if v[0] < self.limits.burst}
        return allowed


def record_of(envelope: SignedEnvelope, raw: bytes, reason: str, peer: str) -> bytes:
    """The bounded record the audit log keeps of an unproven refusal."""
    return xpb.RefusalRecord(
        envelope_sha256=hashlib.sha256(raw).digest(),
        envelope_size=len(raw),
        claimed_signer_id=envelope.signer_id[:_KEEP],
        claimed_key_id=envelope.key_id[:_KEEP],
        payload_type=envelope.payload_type[:_KEEP],
        reason=reason[:_KEEP],
        peer=peer[:_KEEP],
    ).SerializeToString()


def rate_limited(key: str) -> CoalitionError:
    return ResourceExhausted(
        "RATE_LIMITED",
        "too many refused requests from your address; slow down and sign your requests",
        peer=key,
    )


def log_refusal(
    conn: Connection,
    key: str,
    record: bytes,
    size: int,
    reason: str,
    at: datetime,
    daily_records: int,
) -> bool:
    """Appends the record to the audit log unless the peer's daily cap is reached; tallies it
    either way. True if it was logged."""
    audit.lock(conn)  # one writer at a time: the cap is read and raised under the log's lock
    day = at.date().isoformat()
    logged = conn.execute(
        select(refusal_tally.c.logged).where(
            refusal_tally.c.peer == key, refusal_tally.c.day == day
        )
    ).scalar()
    if logged is not None and logged >= daily_records:
        tally(conn, key, day, "counted_only", size, at)
        return False
    audit.append(conn, "in", UNVERIFIED, record, f"refused:{reason}", at)
    tally(conn, key, day, "logged", size, at)
    return True


def tally(conn: Connection, key: str, day: str, column: str, size: int, at: datetime) -> None:
    """Counts one refusal of `size` bytes in `column` of the peer's row for the day."""
    t = refusal_tally
    upsert = pg_insert(t) if conn.dialect.name == "postgresql" else sqlite_insert(t)
    first = dict(peer=key, day=day, logged=0, counted_only=0, rate_limited=0, bytes=size)
    first[column] = 1
    conn.execute(
        upsert.values(**first, last_at=at).on_conflict_do_update(
            index_elements=["peer", "day"],
            set_={column: t.c[column] + 1, "bytes": t.c.bytes + size, "last_at": at},
        )
    )


def report(conn: Connection, day: str) -> list[dict[str, object]]:
    """The day's tally, most bytes first: who sent what that was refused unproven."""
    rows = conn.execute(
        select(refusal_tally)
        .where(refusal_tally.c.day == day)
        .order_by(refusal_tally.c.bytes.desc())
    ).all()
    return [dict(row._mapping) for row in rows]
