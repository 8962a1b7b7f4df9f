"""The batch commitment: a Merkle root over a settlement batch's clearing records.

Published with the settlement report, it lets a merchant check offline, with nothing but its
own entries and their inclusion proofs, that each entry is in the batch unaltered and that the
net position it is paid or charged is the one its entries add up to.

The tree is RFC 9162's (Certificate Transparency v2) over SHA-256: leaf = H(0x00 ‖ leaf bytes),
node = H(0x01 ‖ left ‖ right), an odd last node is promoted, not duplicated (duplicating would
give [a, b, c] and [a, b, c, c] one root), and the empty batch's root is H(""). Leaves are
sorted by authorization id (code points). Leaf bytes are canonical: a version tag, then each
settlement field in a fixed order, strings as 4-byte big-endian length ‖ UTF-8, integers as
8-byte big-endian signed.
"""

from __future__ import annotations

import hashlib
import struct
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass

from settlement.netting import net_positions
from settlement.records import ClearingRecord
from settlement.subtrees import SubtreeHashers, subtree_root

LEAF_VERSION = b"coalition.settlement.clearing-record.v1"
EMPTY_ROOT = hashlib.sha256(b"").digest()
_PREFIX = struct.pack(">I", len(LEAF_VERSION)) + LEAF_VERSION
_pack_integers = struct.Struct(">4q").pack


def leaf_bytes(record: ClearingRecord) -> bytes:
    # Fields named one by one, not looked up by name: a batch has a million leaves.
    parts = [_PREFIX]
    for text in (
        record.settlement_period.encode(),
        record.authorization_id.encode(),
        record.clearing_id.encode(),
        record.issuer_id.encode(),
        record.acquirer_id.encode(),
    ):
        parts += (len(text).to_bytes(4, "big"), text)
    parts.append(
        _pack_integers(record.points, record.value_fen, record.fee_fen, record.rate_version)
    )
    return b"".join(parts)


def leaf_hash(record: ClearingRecord) -> bytes:
    return hashlib.sha256(b"\x00" + leaf_bytes(record)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root(sorted_records: Iterable[ClearingRecord]) -> bytes:
    """The root over records already sorted by authorization id, in one streaming pass: it keeps
    one pending subtree per height (≤ log₂ n hashes), never the records themselves."""
    pending: list[tuple[int, bytes]] = []
    last: str | None = None
    for record in sorted_records:
        if last is not None and record.authorization_id <= last:
            raise ValueError(f"records out of order or repeated at {record.authorization_id!r}")
        last = record.authorization_id
        height, digest = 0, leaf_hash(record)
        while pending and pending[-1][0] == height:
            digest = node_hash(pending.pop()[1], digest)
            height += 1
        pending.append((height, digest))
    if not pending:
        return EMPTY_ROOT
    digest = pending.pop()[1]
    while pending:
        digest = node_hash(pending.pop()[1], digest)
    return digest


# Leaves hashed a subtree at a time, level by level: 2^16 of them (2 MiB of hashes) at once.
SUBTREE_HEIGHT = 16


def root_of_leaf_hashes(
    chunks: Iterable[bytes],
    hashers: SubtreeHashers | None = None,
    subtree_height: int = SUBTREE_HEIGHT,
) -> tuple[bytes, int]:
    """The root, and the number of leaves, over leaf hashes already computed (each record's,
    stored when it was written: leaf_hash(record)), given in commitment order as concatenated
    32-byte digests, in chunks of any size. The same tree as merkle_root: full subtrees of
    2^subtree_height leaves are hashed level by level (no odd node inside one), by `hashers`'
    helper processes when given (their block size must be that subtree's), each root then
    entering the streaming fold at its height, in order, exactly as its leaves one by one would
    have; the leaves after the last full subtree are folded one by one."""
    pending: list[tuple[int, bytes]] = []
    count, carry = 0, b""
    block = 32 << subtree_height
    if hashers is not None and hashers.block_bytes != block:
        raise ValueError(f"hashers take {hashers.block_bytes} bytes, subtrees are {block}")
    # Subtrees sent to the helpers and not yet folded, oldest first; a few at a time, so the
    # leaves read ahead of the hashing stay bounded.
    window: deque[Future[bytes]] = deque()

    def push(height: int, digest: bytes) -> None:
        while pending and pending[-1][0] == height:
            digest = node_hash(pending.pop()[1], digest)
            height += 1
        pending.append((height, digest))

    for chunk in chunks:
        if len(chunk) % 32:
            raise ValueError("leaf hashes come in 32-byte digests")
        count += len(chunk) // 32
        data, at = carry + chunk if carry else chunk, 0
        while len(data) - at >= block:
            if hashers is None:
                push(subtree_height, subtree_root(data[at : at + block]))
            else:
                if len(window) >= 4 * hashers.count:
                    push(subtree_height, window.popleft().result())
                window.append(hashers.submit(data[at : at + block]))
            at += block
        carry = data[at:]
    while window:
        push(subtree_height, window.popleft().result())
    for at in range(0, len(carry), 32):
        push(0, carry[at : at + 32])
    if not pending:
        return EMPTY_ROOT, count
    digest = pending.pop()[1]
    while pending:
        digest = node_hash(pending.pop()[1], digest)
    return digest, count


@dataclass(frozen=True)
class InclusionProof:
    """That `record` is leaf `leaf_index` of a batch of `tree_size` records: the sibling
    hashes from the leaf up to the root (RFC 9162 §2.1.3)."""

    record: ClearingRecord
    leaf_index: int
    tree_size: int
    path: tuple[bytes, ...]


class BatchTree:
    """The whole tree of a batch, kept in memory to hand out inclusion proofs."""

    def __init__(self, records: Iterable[ClearingRecord]) -> None:
        self.records = sorted(records, key=lambda r: r.authorization_id)
        self.levels = [[leaf_hash(r) for r in self.records]]
        while len(self.levels[-1]) > 1:
            below = self.levels[-1]
            above = [node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
            if len(below) % 2:
                above.append(below[-1])
            self.levels.append(above)
        self.root = merkle_root(self.records)  # also refuses repeated authorization ids

    def proof(self, leaf_index: int) -> InclusionProof:
        path, index = [], leaf_index
        for level in self.levels[:-1]:
            if index ^ 1 < len(level):
                path.append(level[index ^ 1])
            index //= 2
        return InclusionProof(self.records[leaf_index], leaf_index, len(self.records), tuple(path))

    def proofs_for(self, merchant_id: str) -> list[InclusionProof]:
        """Proofs of every entry in which the merchant is issuer or acquirer."""
        return [
            self.proof(i)
            for i, r in enumerate(self.records)
            if merchant_id in (r.issuer_id, r.acquirer_id)
        ]


def verify(proof: InclusionProof, root: bytes) -> bool:
    """Whether the proof's record, unaltered, is in the batch with this root (RFC 9162)."""
    return implied_root(proof) == root


def implied_root(proof: InclusionProof) -> bytes | None:
    """The root the proof's record and path hash up to (RFC 9162 §2.1.3.2); None if the path
    does not fit the tree size."""
    if not 0 <= proof.leaf_index < proof.tree_size:
        return None
    fn, sn, digest = proof.leaf_index, proof.tree_size - 1, leaf_hash(proof.record)
    for sibling in proof.path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            digest = node_hash(sibling, digest)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            digest = node_hash(digest, sibling)
        fn, sn = fn >> 1, sn >> 1
    return digest if sn == 0 else None


BATCH_CHANGED = "the batch's records no longer hash to its committed root"


def root_problems(proofs: list[InclusionProof], root: bytes) -> list[str]:
    """What the proofs say about the root. When every entry hashes, with its path, to one same
    other root, the batch as the exchange holds it now is not the batch it committed to at close:
    one line says so (which record changed, only the books of the merchants it involves can
    tell). Otherwise each entry that does not lead to the root is named."""
    failing = [p for p in proofs if implied_root(p) != root]
    if not failing:
        return []
    others = {implied_root(p) for p in failing}
    if len(failing) == len(proofs) and len(others) == 1 and None not in others:
        (now,) = others
        assert now is not None
        return [
            f"{BATCH_CHANGED} {root.hex()[:16]}…: all {len(proofs)} entries of this merchant "
            f"lead to {now.hex()[:16]}… instead, so a record of the batch changed after it closed"
        ]
    return [f"entry {p.record.authorization_id} is not in the batch as given" for p in failing]


def recompute_position(merchant_id: str, records: Iterable[ClearingRecord]) -> int:
    """A merchant's net position (fen) from its own entries, as netting computes it."""
    return net_positions(records).get(merchant_id, 0)


def check_entries(
    merchant_id: str, proofs: Iterable[InclusionProof], root: bytes, reported_net_fen: int
) -> list[str]:
    """What a merchant finds wrong with its share of a published batch; [] when all is well."""
    proofs = list(proofs)
    problems = root_problems(proofs, root)
    problems += [
        f"entry {p.record.authorization_id} does not involve {merchant_id}"
        for p in proofs
        if merchant_id not in (p.record.issuer_id, p.record.acquirer_id)
    ]
    if len({p.record.authorization_id for p in proofs}) != len(proofs):
        problems.append("an entry is given more than once")
    net = recompute_position(merchant_id, (p.record for p in proofs))
    if net != reported_net_fen:
        problems.append(f"entries net to {net} fen, the report says {reported_net_fen}")
    return problems
