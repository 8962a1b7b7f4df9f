"""Closing a period the fast way gives the very report of the reference computation over the
records: the root folded from the stored leaf hashes (full subtrees hashed by helper processes)
is merkle_root of the records, and the obligations read from the exchange's rollup are the
records' own sums. When the rollup disagrees with the records committed to, the records are
summed; when it was altered without changing the count, each merchant's check of its entries
says so."""

from __future__ import annotations

import itertools
import sys
import uuid
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from coalition_kernel.db import make_engine
from exchange.figures import district_flows
from exchange.migrate import upgrade
from settlement import records as records_module
from settlement import settle as settle_module
from settlement.commitment import (
    BatchTree,
    check_entries,
    leaf_hash,
    merkle_root,
    root_of_leaf_hashes,
)
from settlement.netting import net_positions
from settlement.obligations import gross_obligations, rolled_up_obligations
from settlement.periods import Calendar
from settlement.records import ClearingRecord
from settlement.settle import settle_period
from settlement.subtrees import SubtreeHashers
from tests.settlement.support import clearing_records, examples, reference_obligations
from tests.settlement.test_queries import insert, moved


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    """`data` cut at the given leaf counts (any sizes, as the database's chunks come)."""
    out, at = [], 0
    for cut in cuts:
        out.append(data[at : at + 32 * cut])
        at += 32 * cut
    return out + [data[at:]]


@examples()
@given(
    records=clearing_records(max_size=70),
    height=st.integers(0, 4),
    cuts=st.lists(st.integers(0, 20), max_size=6),
)
def test_the_root_of_stored_leaf_hashes_is_the_root_of_the_records(
    records: list[ClearingRecord], height: int, cuts: list[int]
) -> None:
    ordered = sorted(records, key=lambda r: r.authorization_id)
    leaves = b"".join(leaf_hash(r) for r in ordered)
    root, count = root_of_leaf_hashes(chunked(leaves, cuts), subtree_height=height)
    assert (root, count) == (merkle_root(ordered), len(ordered))


@pytest.fixture(scope="module")
def helpers() -> Iterator[SubtreeHashers]:
    """Two helper processes hashing subtrees of 4 leaves."""
    with SubtreeHashers(2, 32 << 2) as hashers:
        yield hashers


@examples(share=2)
@given(records=clearing_records(max_size=70), cuts=st.lists(st.integers(0, 9), max_size=6))
def test_subtrees_hashed_by_helper_processes_give_the_same_root(
    helpers: SubtreeHashers, records: list[ClearingRecord], cuts: list[int]
) -> None:
    ordered = sorted(records, key=lambda r: r.authorization_id)
    leaves = b"".join(leaf_hash(r) for r in ordered)
    root, count = root_of_leaf_hashes(chunked(leaves, cuts), helpers, subtree_height=2)
    assert (root, count) == (merkle_root(ordered), len(ordered))


def test_a_helper_that_dies_fails_the_root_instead_of_giving_one() -> None:
    leaves = b"".join(
        leaf_hash(ClearingRecord(f"a{i}", "c", "t", "n", 1, 1, 0, 1, "p")) for i in range(8)
    )
    with SubtreeHashers(1, 32 << 2) as hashers:
        assert hashers.submit(leaves[: 32 << 2]).result() == merkle_root(
            [ClearingRecord(f"a{i}", "c", "t", "n", 1, 1, 0, 1, "p") for i in range(4)]
        )
        for proc in hashers._procs:
            proc.kill()
            proc.wait()
        with pytest.raises((RuntimeError, OSError)):
            hashers.submit(leaves[32 << 2 :]).result()


def test_without_helpers_the_subtrees_are_hashed_here(monkeypatch: pytest.MonkeyPatch) -> None:
    records = [ClearingRecord(f"a{i:02d}", "c", "t", "n", 1, 1, 0, 1, "p") for i in range(11)]
    leaves = b"".join(leaf_hash(r) for r in records)
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    with SubtreeHashers(2, 32 << 2) as hashers:
        assert root_of_leaf_hashes([leaves], hashers, subtree_height=2) == (
            merkle_root(records),
            11,
        )
        assert hashers._procs == []


# -- on a real exchange database (SQLite, then PostgreSQL) -----------------------------------


@pytest.fixture
def exchange_db(db_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(db_url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 3 leaf hashes from PostgreSQL and subtrees of 4 leaves in helper processes,
    so that a few dozen records cross every boundary a million do."""
    monkeypatch.setattr(records_module, "LEAF_CHUNK", 3)
    monkeypatch.setattr(settle_module, "SUBTREE_HEIGHT", 2)


_days = itertools.count()


def fresh_day() -> tuple[str, str, str]:
    day = date(2027, 1, 2) + timedelta(days=3 * next(_days))
    return tuple(  # type: ignore[return-value]
        (day + timedelta(days=d)).isoformat() for d in (-1, 0, 1)
    )


@examples(share=4)
@given(records=clearing_records(max_size=40), around=clearing_records(max_size=10))
def test_a_period_closed_from_leaf_hashes_and_the_rollup_is_the_reference_report(
    exchange_db: sa.Engine,
    small_chunks: None,
    records: list[ClearingRecord],
    around: list[ClearingRecord],
) -> None:
    before, day, after = fresh_day()
    tag = uuid.uuid4().hex[:8]
    mine = moved(records, tag, day)
    insert(exchange_db, mine + moved(around, tag + "n", before, after), hashed=True)
    with exchange_db.connect() as conn:
        assert rolled_up_obligations(conn, day) == reference_obligations(mine)
    report = settle_period(exchange_db, day)
    assert (
        report.commitment_root == merkle_root(sorted(mine, key=lambda r: r.authorization_id)).hex()
    )
    assert report.record_count == len(mine)
    assert {line.party: line.net_fen for line in report.lines} == net_positions(mine)


def test_a_weekly_period_sums_its_days_of_the_rollup(
    exchange_db: sa.Engine, small_chunks: None
) -> None:
    week = Calendar(cycle="weekly")
    first, _ = week.days("2027-W48")
    records = [
        ClearingRecord(
            f"w{d}{n}",
            f"c{d}{n}",
            issuer,
            acquirer,
            1,
            100 + d,
            d + 1,
            1,
            (first + timedelta(days=d)).isoformat(),
        )
        for d in range(-1, 8)
        for n, (issuer, acquirer) in enumerate([("tea", "noodles"), ("noodles", "tea")])
    ]
    insert(exchange_db, records, hashed=True)
    inside = [
        r
        for r in records
        if first.isoformat() <= r.settlement_period < (first + timedelta(days=7)).isoformat()
    ]
    with exchange_db.connect() as conn:
        assert rolled_up_obligations(conn, "2027-W48", week) == reference_obligations(inside)
    report = settle_period(exchange_db, "2027-W48", week)
    assert report.commitment_root == BatchTree(inside).root.hex()
    assert {line.party: line.net_fen for line in report.lines} == net_positions(inside)


def some_records(tag: str, day: str) -> list[ClearingRecord]:
    return [
        ClearingRecord(
            f"{tag}-{i:02d}", f"c-{tag}-{i}", issuer, acquirer, 10 + i, 1000 + i, i, 1, day
        )
        for i, (issuer, acquirer) in enumerate(
            itertools.product(["tea", "noodles", "salon"], repeat=2)
        )
        if issuer != acquirer
    ]


def test_a_rollup_that_lost_records_is_not_trusted_the_records_are_summed(
    exchange_db: sa.Engine, small_chunks: None
) -> None:
    _, day, _ = fresh_day()
    records = some_records("lost", day)
    insert(exchange_db, records, hashed=True)
    f = district_flows.c
    with exchange_db.begin() as conn:  # as if written with the trigger disabled
        conn.execute(
            sa.delete(district_flows).where(
                f.settlement_period == day, f.issuer_id == "tea", f.acquirer_id == "noodles"
            )
        )
    with exchange_db.connect() as conn:
        assert rolled_up_obligations(conn, day) != reference_obligations(records)
        assert gross_obligations(conn, day) == reference_obligations(records)
    report = settle_period(exchange_db, day)
    assert report.record_count == len(records)
    assert {line.party: line.net_fen for line in report.lines} == net_positions(records)


def test_a_rollup_altered_without_its_count_is_caught_by_the_merchants_checks(
    exchange_db: sa.Engine, small_chunks: None
) -> None:
    _, day, _ = fresh_day()
    records = some_records("alt", day)
    insert(exchange_db, records, hashed=True)
    f = district_flows.c
    with exchange_db.begin() as conn:  # an insider moves 100 fen onto tea's bill
        conn.execute(
            sa.update(district_flows)
            .where(f.settlement_period == day, f.issuer_id == "tea", f.acquirer_id == "noodles")
            .values(value_fen=f.value_fen + 100)
        )
    report = settle_period(exchange_db, day)
    tree = BatchTree(records)
    assert report.commitment_root == tree.root.hex()  # the records are untouched
    net = {line.party: line.net_fen for line in report.lines}
    problems = check_entries("tea", tree.proofs_for("tea"), tree.root, net["tea"])
    assert any("the report says" in p for p in problems)
    salon = check_entries("salon", tree.proofs_for("salon"), tree.root, net["salon"])
    assert salon == []  # not involved: its net is its entries'
