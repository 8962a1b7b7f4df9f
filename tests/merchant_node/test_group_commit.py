"""The node's group commit (issue 12): earns and redeems in flight committed together, each
request's answer its own, and the ledger exactly as one transaction per request leaves it.

The committer is held on a first piece of work while the requests queue behind it, so the batch
they form is known, not hoped for; the committer's batch sizes are asserted. The same requests
are then applied one transaction at a time (no group commit) to a second database of the same
kind: the answers, the idempotency records (refusals included) and the journal must be the same.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import sqlalchemy as sa

from coalition_kernel.errors import CoalitionError, error_info_of
from coalition_kernel.group_commit import GroupCommit
from merchant_node.ledger.commands import Earn, Enroll, Redeem
from merchant_node.ledger.schema import earnings, idempotency, journal_transactions
from merchant_node.ledger.service import NodeLedger
from tests.conftest import FakeClock, open_test_ledger, start_node

# (kind, request id, member, order, fen or points): queued together behind the held committer.
# Each answer is the same whatever order the batch takes them in, except the "pair" (one id,
# two bodies): whichever comes first is accepted, the other is REQUEST_ID_REUSED.
SETUP = [
    ("earn", "seed", "m1", "seed-order", 10_000),  # m1: 100 points
    ("earn", "taken", "m2", "o-taken", 5_000),  # m2: 50 points
]
BATCH = [
    ("earn", "a", "m1", "o-a", 2_000),  # OK, 20 points
    ("earn", "b", "m2", "o-b", 3_000),  # OK, 30 points
    ("redeem", "poor", "m3", "r-poor", 10),  # m3 has nothing: INSUFFICIENT_POINTS
    ("earn", "seed", "m1", "o-c", 1_000),  # "seed" with another body: REQUEST_ID_REUSED
    ("earn", "ghost", "nobody", "o-g", 1_000),  # MEMBER_NOT_FOUND
    ("redeem", "spend", "m1", "r-1", 30),  # OK: m1 has 100 whatever runs first
    ("earn", "again", "m2", "o-taken", 1_000),  # ORDER_ALREADY_EARNED
    ("earn", "twin", "m1", "o-d", 4_000),  # the same request twice: one effect, one answer
    ("earn", "twin", "m1", "o-d", 4_000),
    ("earn", "pair", "m2", "o-e", 1_000),  # one id, two bodies: one of them is accepted
    ("earn", "pair", "m2", "o-f", 2_000),
]
EXPECTED = {
    "a": "OK 20",
    "b": "OK 30",
    "poor": "FAILED_PRECONDITION/INSUFFICIENT_POINTS",
    "seed": "ALREADY_EXISTS/REQUEST_ID_REUSED",
    "ghost": "NOT_FOUND/MEMBER_NOT_FOUND",
    "spend": "OK 30",
    "again": "ALREADY_EXISTS/ORDER_ALREADY_EARNED",
    "twin": "OK 40",
}
REFUSED = ("poor", "ghost", "again")  # refusals recorded under their request id, as ever


def command(kind: str, rid: str, member: str, order: str, amount: int) -> Earn | Redeem:
    if kind == "earn":
        return Earn(rid, member, order, amount, "POS", None)
    return Redeem(rid, member, order, amount, 0)


def apply(ledger: NodeLedger, request: tuple[str, str, str, str, int]) -> str:
    """One request through the ledger; its answer as text."""
    kind, *_ = request
    try:
        if kind == "earn":
            return f"OK {ledger.earn(command(*request)).points_earned}"  # type: ignore[arg-type]
        return f"OK {ledger.redeem(command(*request)).points_redeemed}"  # type: ignore[arg-type]
    except CoalitionError as err:
        return f"{err.code.name}/{err.reason}"


async def call(client, request: tuple[str, str, str, str, int]) -> str:  # type: ignore[no-untyped-def]
    kind, rid, member, order, amount = request
    try:
        if kind == "earn":
            res = await client.earn(member, order, amount, request_id=rid)
            return f"OK {res.points_earned}"
        res = await client.redeem(member, order, points=amount, request_id=rid)
        return f"OK {res.points_redeemed}"
    except grpc.aio.AioRpcError as err:
        info = error_info_of(err)
        return f"{err.code().name}/{info.reason if info else '-'}"


def stored(engine: sa.Engine) -> dict[str, Any]:
    """What the ledger wrote, per request id: its idempotency record and its journal
    transactions; the orders earned; the law checks."""
    with engine.connect() as conn:
        records = {
            r.request_id: (r.operation, r.request_hash, r.outcome, r.error_code, r.error_reason)
            for r in conn.execute(sa.select(idempotency))
        }
        journal: dict[str | None, int] = dict(
            conn.execute(
                sa.select(journal_transactions.c.request_id, sa.func.count()).group_by(
                    journal_transactions.c.request_id
                )
            ).all()
        )
        orders = sorted(conn.execute(sa.select(earnings.c.order_id)).scalars())
    return {"records": records, "journal": journal, "orders": orders}


def ledger_records(written: dict[str, Any]) -> dict[str, Any]:
    """The earn and redeem records (enrollments' ids differ between the two runs)."""
    return {k: v for k, v in written["records"].items() if v[0] in ("earn", "redeem")}


def held(group: GroupCommit) -> Callable[[], None]:
    """Keeps the committer busy on a first piece of work; returns what lets it go on."""
    gate, started = threading.Event(), threading.Event()

    def work(_conn: sa.Connection) -> None:
        started.set()
        assert gate.wait(60)

    future = group.submit(work)
    assert started.wait(30)

    def release() -> None:
        gate.set()
        future.result(30)

    return release


def queued(group: GroupCommit) -> int:
    return group._queue.qsize()  # noqa: SLF001 - how many wait behind the held batch


async def test_a_batch_of_earns_and_redeems_gives_each_its_own_answer_over_grpc(
    new_database,
) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock()
    ledger = open_test_ledger(new_database("grouped"), clock)
    try:
        # A long auth cache: while the committer is held (on SQLite, with the write lock), the
        # calls must not need the database before they reach the committer's queue. One
        # committer (PostgreSQL's default is several, each member's requests on one of them),
        # so that the whole batch is known.
        async for node in start_node(ledger, auth_cache_seconds=600, group_commit=1):
            (group,) = ledger._groups  # noqa: SLF001
            async with node.client(timeout=60) as client:
                for member in ("m1", "m2", "m3"):
                    await client.enroll_member(member)
                for request in SETUP:
                    assert (await call(client, request)).startswith("OK")
                release = held(group)
                calls = [asyncio.ensure_future(call(client, r)) for r in BATCH]
                deadline = time.monotonic() + 30
                while queued(group) < len(BATCH) and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
                assert queued(group) == len(BATCH)
                release()
                answers = await asyncio.gather(*calls)
                # A refused request stays refused: its retry is answered from its record.
                retried = [await call(client, r) for r in BATCH if r[1] in REFUSED]
                balances = [(await client.get_balance(m)).available_points for m in ("m1", "m2")]
            assert group.stats.largest >= len(BATCH)  # the queued requests formed one batch
        grouped = stored(ledger.engine)
        assert ledger.audit() == []
    finally:
        ledger.engine.dispose()

    by_id = dict(zip((r[1] for r in BATCH), answers, strict=False))
    pair = answers[-2:]
    for rid, expected in EXPECTED.items():
        assert by_id[rid] == expected, rid
    assert answers[7] == answers[8] == "OK 40"  # the twins: one answer
    assert sorted(pair) in (
        ["ALREADY_EXISTS/REQUEST_ID_REUSED", "OK 10"],
        ["ALREADY_EXISTS/REQUEST_ID_REUSED", "OK 20"],
    )
    assert retried == [EXPECTED[rid] for rid in REFUSED]
    pair_points = 10 if "OK 10" in pair else 20
    assert balances == [100 + 20 - 30 + 40, 50 + 30 + pair_points]

    # Nothing of a refused request is written but its refusal; each accepted one once.
    assert grouped["journal"] == {
        "seed": 1, "taken": 1, "a": 1, "b": 1, "spend": 1, "twin": 1, "pair": 1,
    }  # fmt: skip
    assert {rid: r[2:] for rid, r in grouped["records"].items() if r[2] == "refused"} == {
        "poor": ("refused", "FAILED_PRECONDITION", "INSUFFICIENT_POINTS"),
        "ghost": ("refused", "NOT_FOUND", "MEMBER_NOT_FOUND"),
        "again": ("refused", "ALREADY_EXISTS", "ORDER_ALREADY_EARNED"),
    }
    pair_order = "o-e" if pair_points == 10 else "o-f"
    assert grouped["orders"] == sorted(["seed-order", "o-taken", "o-a", "o-b", "o-d", pair_order])

    # The same requests, one transaction each (as without group commit), in the order the
    # batch took the pair: the same records and journal.
    reference = open_test_ledger(new_database("one-by-one"), FakeClock())
    try:
        for member in ("m1", "m2", "m3"):
            reference.enroll(Enroll(f"enroll-{member}", member))
        order = [*SETUP, *BATCH[:-2]]
        order += BATCH[-2:] if pair_order == "o-e" else BATCH[-2:][::-1]
        for request in order:
            apply(reference, request)
        one_by_one = stored(reference.engine)
    finally:
        reference.engine.dispose()
    assert ledger_records(grouped) == ledger_records(one_by_one)
    assert grouped["journal"] == one_by_one["journal"]
    assert grouped["orders"] == one_by_one["orders"]


async def test_the_server_group_commits_on_sqlite_by_default(ledger: NodeLedger) -> None:
    sqlite = ledger.engine.dialect.name == "sqlite"
    async for _node in start_node(ledger):
        assert len(ledger._groups) == (1 if sqlite else 0)  # noqa: SLF001
    async for _node in start_node(ledger, group_commit=3):
        assert len(ledger._groups) == 3  # noqa: SLF001
    assert ledger._groups == ()  # noqa: SLF001 - stopping the server turned it off


def test_many_requests_from_many_threads_keep_the_laws_and_answer_each_once(
    ledger: NodeLedger,
) -> None:
    """Earns and redeems (a third of them refused: members run dry, orders reused, ids reused
    with another body, unknown members) from 16 threads through the group committer; every
    answer is the one its retry gives, and the ledger's laws hold."""
    groups = [GroupCommit(ledger.engine, name=f"test-node-{k}") for k in range(3)]
    ledger.use_group_commit(*groups)
    rng = random.Random(12)
    members = [f"gm{k}" for k in range(6)]
    for member in members:
        ledger.enroll(Enroll(f"enroll-{member}", member))
    requests: list[tuple[str, str, str, str, int]] = []
    for i in range(240):
        member = rng.choice([*members, "unknown"])
        if rng.random() < 0.5:
            order = f"e-{rng.randrange(200)}"  # some orders come twice: ORDER_ALREADY_EARNED
            requests.append(("earn", f"q{i}", member, order, rng.randrange(100, 5_000)))
        else:
            requests.append(("redeem", f"q{i}", member, f"r-{i}", rng.randrange(1, 60)))
    for i in range(0, 240, 17):  # a used id with another body
        kind, _rid, member, order, amount = requests[i]
        requests.append((kind, requests[i + 1][1], member, order, amount + 1))
    rng.shuffle(requests)
    try:
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda r: apply(ledger, r), requests))
    finally:
        ledger.use_group_commit()
        for group in groups:
            group.close()
    assert max(g.stats.largest for g in groups) > 1, "requests in flight were committed together"
    assert all(g.stats.requests for g in groups), "each committer has members of its own"
    outcomes = {a.split(" ")[0] for a in answers}
    assert "OK" in outcomes and "FAILED_PRECONDITION/INSUFFICIENT_POINTS" in outcomes
    assert "ALREADY_EXISTS/REQUEST_ID_REUSED" in outcomes
    # Each request id took effect at most once, and a retry gives its first answer.
    first: dict[str, tuple[tuple[str, str, str, str, int], str]] = {}
    for request, answer in zip(requests, answers, strict=True):
        if answer != "ALREADY_EXISTS/REQUEST_ID_REUSED":
            assert request[1] not in first, "one body per request id is accepted"
            first[request[1]] = (request, answer)
    for request, answer in first.values():
        assert apply(ledger, request) == answer
    written = stored(ledger.engine)
    accepted = {rid for rid, (_r, a) in first.items() if a.startswith("OK")}
    assert {rid for rid in written["journal"] if rid and rid.startswith("q")} == accepted
    assert all(written["journal"][rid] == 1 for rid in accepted)
    assert ledger.audit() == []
