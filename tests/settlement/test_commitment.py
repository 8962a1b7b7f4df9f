"""The batch commitment: proofs verify, tampering fails, merchants recompute their positions."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settlement.commitment import (
    EMPTY_ROOT,
    BatchTree,
    InclusionProof,
    check_entries,
    leaf_bytes,
    leaf_hash,
    merkle_root,
    node_hash,
    recompute_position,
    verify,
)
from settlement.netting import net_positions
from settlement.records import ClearingRecord
from tests.settlement.support import MERCHANTS, clearing_records, examples


def reference_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1 Merkle Tree Hash, as written there: split at the largest power of two."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(reference_root(leaves[:k]), reference_root(leaves[k:]))


def record(auth: str = "a-1", **change: object) -> ClearingRecord:
    base = ClearingRecord("a-1", "c-1", "tea", "noodles", 100, 1000, 30, 1, "2026-11-24")
    return base._replace(authorization_id=auth, **change)  # type: ignore[arg-type]


def test_leaf_bytes_are_the_documented_canonical_encoding() -> None:
    def text(value: str) -> bytes:
        return len(value.encode()).to_bytes(4, "big") + value.encode()

    expected = b"".join(
        [text("coalition.settlement.clearing-record.v1")]
        + [text(v) for v in ("2026-11-24", "a-1", "c-1", "tea", "noodles")]
        + [v.to_bytes(8, "big", signed=True) for v in (100, 1000, 30, 1)]
    )
    assert leaf_bytes(record()) == expected
    assert leaf_hash(record()) == hashlib.sha256(b"\x00" + expected).digest()


def test_pinned_root_of_a_small_batch() -> None:
    # Changing the encoding breaks every merchant's verifier: this vector must not move.
    batch = [record("a-1"), record("a-2", issuer_id="salon"), record("a-3", fee_fen=0)]
    assert merkle_root(batch).hex() == PINNED_ROOT


PINNED_ROOT = "ef9de06ee118d9db301ac29384ed8036a7d1dfd371ead24706e5dd5deccd5c3f"


def test_field_boundaries_cannot_be_shifted() -> None:
    assert leaf_hash(record(issuer_id="ab", acquirer_id="c")) != leaf_hash(
        record(issuer_id="a", acquirer_id="bc")
    )


def test_the_empty_batch_has_the_hash_of_nothing() -> None:
    assert merkle_root([]) == EMPTY_ROOT == BatchTree([]).root


def test_records_out_of_order_or_repeated_are_refused() -> None:
    with pytest.raises(ValueError):
        merkle_root([record("b"), record("a")])
    with pytest.raises(ValueError):
        BatchTree([record("a"), record("a", points=5)])


@examples()
@given(clearing_records(max_size=70))
def test_streamed_root_equals_tree_root_equals_rfc6962(records: list[ClearingRecord]) -> None:
    ordered = sorted(records, key=lambda r: r.authorization_id)
    tree = BatchTree(reversed(ordered))
    assert tree.root == merkle_root(ordered) == reference_root([leaf_hash(r) for r in ordered])


@examples()
@given(clearing_records(max_size=70))
def test_every_entry_proves_its_inclusion(records: list[ClearingRecord]) -> None:
    tree = BatchTree(records)
    for i in range(len(records)):
        assert verify(tree.proof(i), tree.root)


TAMPERABLE = ["authorization_id", "clearing_id", "issuer_id", "acquirer_id", "settlement_period"]


@examples()
@given(clearing_records(max_size=40).filter(bool), st.data())
def test_a_tampered_record_fails_verification(
    records: list[ClearingRecord], data: st.DataObject
) -> None:
    tree = BatchTree(records)
    proof = tree.proof(data.draw(st.integers(0, len(records) - 1)))
    field = data.draw(
        st.sampled_from(TAMPERABLE + ["points", "value_fen", "fee_fen", "rate_version"])
    )
    was = getattr(proof.record, field)
    now: object = was + "x" if isinstance(was, str) else was + data.draw(st.integers(1, 10**6))
    tampered = proof.record._replace(**{field: now})  # type: ignore[arg-type]
    assert not verify(dataclasses.replace(proof, record=tampered), tree.root)


@examples()
@given(clearing_records(max_size=40).filter(lambda r: len(r) > 1), st.data())
def test_a_tampered_path_or_position_fails_verification(
    records: list[ClearingRecord], data: st.DataObject
) -> None:
    tree = BatchTree(records)
    index = data.draw(st.integers(0, len(records) - 1))
    proof = tree.proof(index)
    step = data.draw(st.integers(0, len(proof.path) - 1))
    flipped = bytes([proof.path[step][0] ^ 1]) + proof.path[step][1:]
    forged_path = proof.path[:step] + (flipped,) + proof.path[step + 1 :]
    assert not verify(dataclasses.replace(proof, path=forged_path), tree.root)
    assert not verify(dataclasses.replace(proof, path=proof.path[:-1]), tree.root)
    other = data.draw(st.integers(0, len(records) - 1).filter(lambda i: i != index))
    assert not verify(dataclasses.replace(proof, leaf_index=other), tree.root)
    assert not verify(InclusionProof(proof.record, index, len(records), proof.path), b"\x00" * 32)


@examples()
@given(clearing_records(max_size=50))
def test_each_merchant_recomputes_its_net_position_from_its_proven_entries(
    records: list[ClearingRecord],
) -> None:
    tree = BatchTree(records)
    positions = net_positions(records)
    for merchant in MERCHANTS:
        proofs = tree.proofs_for(merchant)
        assert all(verify(p, tree.root) for p in proofs)
        mine = [p.record for p in proofs]
        assert recompute_position(merchant, mine) == positions.get(merchant, 0)
        assert check_entries(merchant, proofs, tree.root, positions.get(merchant, 0)) == []


def test_a_merchant_notices_a_tampered_entry_a_hidden_charge_and_a_wrong_net() -> None:
    records = [record("a-1"), record("a-2", issuer_id="noodles", acquirer_id="salon")]
    tree = BatchTree(records)
    proofs = tree.proofs_for("noodles")
    net = net_positions(records)["noodles"]
    tampered = dataclasses.replace(proofs[0], record=proofs[0].record._replace(fee_fen=0))
    assert check_entries("noodles", [tampered, proofs[1]], tree.root, net) != []
    assert check_entries("noodles", proofs[:1], tree.root, net) != []  # an entry held back
    assert check_entries("noodles", proofs, tree.root, net - 1) != []
    assert check_entries("noodles", proofs + proofs[:1], tree.root, net) != []
    assert check_entries("tea", proofs, tree.root, 0) != []  # another merchant's entries
