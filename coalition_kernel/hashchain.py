"""The audit log's hash chain, shared by the exchange that writes it and the merchants that
check their slices of it (docs/protocol.md, "Audit log").

entry_hash = SHA-256(previous_hash ‖ sequence (8 bytes, big-endian) ‖ direction ‖ 0x00 ‖ peer_id
‖ 0x00 ‖ outcome ‖ 0x00 ‖ SHA-256(envelope bytes)).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

GENESIS = bytes(32)


@dataclass(frozen=True)
class Entry:
    sequence: int
    direction: str
    peer_id: str
    envelope: bytes
    outcome: str
    recorded_at: datetime
    previous_hash: bytes
    entry_hash: bytes


def entry_hash(
    previous: bytes, sequence: int, direction: str, peer_id: str, outcome: str, envelope: bytes
) -> bytes:
    h = hashlib.sha256()
    h.update(previous)
    h.update(sequence.to_bytes(8, "big"))
    h.update(f"{direction}\x00{peer_id}\x00{outcome}\x00".encode())
    h.update(hashlib.sha256(envelope).digest())
    return h.digest()


def verify_entries(entries: Iterable[Entry], *, contiguous: bool) -> list[str]:
    """Checks each entry's hash; with `contiguous`, also that each links to the one before."""
    problems: list[str] = []
    previous: Entry | None = None
    for e in entries:
        expected = entry_hash(
            e.previous_hash, e.sequence, e.direction, e.peer_id, e.outcome, e.envelope
        )
        if expected != e.entry_hash:
            problems.append(f"entry {e.sequence}: its hash does not match its contents")
        if contiguous:
            want_prev = previous.entry_hash if previous else GENESIS
            want_seq = previous.sequence + 1 if previous else 1
            if e.sequence != want_seq:
                problems.append(
                    f"entry {e.sequence}: expected sequence {want_seq} (an entry is missing)"
                )
            if e.previous_hash != want_prev:
                problems.append(f"entry {e.sequence}: does not link to the entry before it")
        previous = e
    return problems
