"""coalition_kernel.group_commit: requests applied together, each outcome its own.

A toy ledger of accounts (a balance that may not go negative, a unique request id per
transfer) on SQLite and PostgreSQL. The committer's thread is held on a first request while the
others queue, so the batch they form is known, not hoped for.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coalition_kernel import db
from coalition_kernel.errors import CoalitionError, DeadlineExceeded, FailedPrecondition
from coalition_kernel.group_commit import GroupCommit

meta = sa.MetaData()
accounts = sa.Table(
    "accounts",
    meta,
    sa.Column("id", sa.String(8), primary_key=True),
    sa.Column("balance", sa.Integer, sa.CheckConstraint("balance >= 0"), nullable=False),
)
requests = sa.Table(
    "requests",
    meta,
    sa.Column("request_id", sa.String(16), primary_key=True),
    sa.Column("outcome", sa.String(32), nullable=False),
)
notes = sa.Table(
    "notes",
    meta,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "account_id",
        sa.String(8),
        sa.ForeignKey("accounts.id", deferrable=True, initially="DEFERRED"),
        nullable=False,
    ),
)


class Refused(FailedPrecondition):
    pass


@pytest.fixture
def engine(db_url):  # type: ignore[no-untyped-def]
    engine = db.make_engine(db_url)
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(sa.insert(accounts), [{"id": "a", "balance": 100}, {"id": "b", "balance": 0}])
    yield engine
    engine.dispose()


def move(request_id: str, points: int):  # type: ignore[no-untyped-def]
    """Moves points from a to b under a request id: a refusal (not enough points) is recorded
    under the id and raised; a reused id is an IntegrityError (the caller's bug)."""

    def work(conn: sa.Connection) -> int:
        balance = conn.execute(
            sa.select(accounts.c.balance).where(accounts.c.id == "a")
        ).scalar_one()
        if balance < points:
            conn.execute(sa.insert(requests).values(request_id=request_id, outcome="refused"))
            raise Refused("INSUFFICIENT_POINTS", f"{balance} < {points}")
        conn.execute(sa.insert(requests).values(request_id=request_id, outcome="moved"))
        conn.execute(
            sa.update(accounts)
            .where(accounts.c.id == "a")
            .values(balance=accounts.c.balance - points)
        )
        conn.execute(
            sa.update(accounts)
            .where(accounts.c.id == "b")
            .values(balance=accounts.c.balance + points)
        )
        return balance - points

    return work


def held(gate: threading.Event):  # type: ignore[no-untyped-def]
    """A first request that keeps the committer busy until the test has queued the rest."""

    def work(conn: sa.Connection) -> str:
        assert gate.wait(10)
        return "held"

    return work


def state(engine: sa.Engine) -> tuple[dict[str, int], dict[str, str]]:
    with engine.connect() as conn:
        balances = dict(conn.execute(sa.select(accounts.c.id, accounts.c.balance)).all())
        outcomes = dict(conn.execute(sa.select(requests.c.request_id, requests.c.outcome)).all())
    return balances, outcomes  # type: ignore[return-value]


def queue_behind_gate(gc: GroupCommit, works):  # type: ignore[no-untyped-def]
    gate = threading.Event()
    first = gc.submit(held(gate))
    time.sleep(0.05)  # the committer has taken `first` and waits on the gate
    futures = [gc.submit(work, keep=(Refused,)) for work in works]
    gate.set()
    assert first.result(10) == "held"
    return futures


@pytest.mark.parametrize("optimistic", [False, True])
def test_a_batch_gives_each_request_its_own_answer(engine, optimistic) -> None:  # type: ignore[no-untyped-def]
    gc = GroupCommit(engine, optimistic=optimistic)
    try:
        futures = queue_behind_gate(
            gc,
            [
                move("r1", 30),  # 100 → 70
                move("r2", 80),  # refused: 70 < 80 (kept: its record stays)
                move("r1", 10),  # the id again: an IntegrityError, that caller's alone
                move("r3", 70),  # 70 → 0
                move("r4", 1),  # refused: 0 < 1
            ],
        )
        answers = []
        for future in futures:
            try:
                answers.append(future.result(10))
            except Exception as exc:  # noqa: BLE001 - the test compares each answer
                answers.append(type(exc).__name__)
    finally:
        gc.close()
    assert answers == [70, "Refused", "IntegrityError", 0, "Refused"]
    balances, outcomes = state(engine)
    assert balances == {"a": 0, "b": 100}
    assert outcomes == {"r1": "moved", "r2": "refused", "r3": "moved", "r4": "refused"}
    assert gc.stats.largest == 5  # the five queued behind the gate formed one batch
    assert gc.stats.alone == 1  # the reused id, re-run alone to get its own error


@pytest.mark.parametrize("optimistic", [False, True])
def test_a_failing_commit_reruns_each_request_alone(engine, optimistic) -> None:  # type: ignore[no-untyped-def]
    """A deferred foreign key fails only at commit: nothing of the batch was written, so each
    request is re-run alone and only the bad one fails."""

    def dangling(conn: sa.Connection) -> None:
        conn.execute(sa.insert(notes).values(id=1, account_id="nobody"))

    gc = GroupCommit(engine, optimistic=optimistic)
    try:
        ok1, bad, ok2 = queue_behind_gate(gc, [move("r1", 10), dangling, move("r2", 20)])
        assert ok1.result(10) == 90
        with pytest.raises(sa.exc.IntegrityError):
            bad.result(10)
        assert ok2.result(10) == 70
    finally:
        gc.close()
    balances, outcomes = state(engine)
    assert balances == {"a": 70, "b": 30}
    assert outcomes == {"r1": "moved", "r2": "moved"}
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(notes)).scalar_one() == 0
    assert gc.stats.alone == 3


def test_a_passed_deadline_writes_nothing(engine) -> None:  # type: ignore[no-untyped-def]
    gc = GroupCommit(engine)
    token = db.deadline.set(time.monotonic() - 1)
    try:
        late = gc.submit(move("late", 5))
    finally:
        db.deadline.reset(token)
    try:
        with pytest.raises(DeadlineExceeded):
            late.result(10)
        assert gc.run_blocking(move("on-time", 5)) == 95
    finally:
        gc.close()
    assert state(engine) == ({"a": 95, "b": 5}, {"on-time": "moved"})


def test_results_come_back_to_coroutines(engine) -> None:  # type: ignore[no-untyped-def]
    gc = GroupCommit(engine)

    async def main() -> list[object]:
        async def one(i: int) -> object:
            try:
                return await gc.run(move(f"c{i}", 7), keep=(Refused,))
            except CoalitionError as err:
                return err.reason

        return await asyncio.gather(*(one(i) for i in range(20)))

    try:
        answers = asyncio.run(main())
    finally:
        gc.close()
    # 100 points in moves of 7: fourteen succeed (in whatever order), six are refused.
    assert sorted(a for a in answers if isinstance(a, int)) == [
        100 - 7 * k for k in range(14, 0, -1)
    ]
    assert answers.count("INSUFFICIENT_POINTS") == 6
    balances, outcomes = state(engine)
    assert balances == {"a": 2, "b": 98}
    assert sorted(outcomes.values()).count("moved") == 14


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    st.lists(
        st.tuples(st.sampled_from(["r0", "r1", "r2", "r3", "r4", "r5"]), st.integers(0, 60)),
        min_size=1,
        max_size=12,
    )
)
@pytest.mark.parametrize("optimistic", [False, True])
def test_a_batch_is_the_requests_applied_one_by_one(engine, optimistic, moves) -> None:  # type: ignore[no-untyped-def]
    """Law: whatever a batch holds, its outcome is that of the same requests applied one after
    another, each in its own transaction."""
    with engine.begin() as conn:
        conn.execute(sa.delete(requests))
        conn.execute(
            sa.update(accounts).values(balance=sa.case((accounts.c.id == "a", 100), else_=0))
        )
    # The model: one request at a time.
    balance, seen, expected = 100, set(), []
    for request_id, points in moves:
        if request_id in seen:
            expected.append("IntegrityError")
        elif balance < points:
            seen.add(request_id)
            expected.append("Refused")
        else:
            seen.add(request_id)
            balance -= points
            expected.append(balance)
    gc = GroupCommit(engine, max_batch=8, optimistic=optimistic)
    try:
        futures = queue_behind_gate(gc, [move(r, p) for r, p in moves])
        answers = []
        for future in futures:
            try:
                answers.append(future.result(10))
            except Exception as exc:  # noqa: BLE001
                answers.append(type(exc).__name__)
    finally:
        gc.close()
    assert answers == expected
    assert state(engine)[0] == {"a": balance, "b": 100 - balance}


def test_a_caller_that_gives_up_does_not_stop_the_committer(engine) -> None:  # type: ignore[no-untyped-def]
    """A cancelled caller (its deadline passed at the RPC layer) is skipped if its turn has not
    come, and the committer goes on serving the others either way."""
    gc = GroupCommit(engine)
    gate = threading.Event()
    first = gc.submit(held(gate))
    time.sleep(0.05)
    given_up = gc.submit(move("gone", 5))
    kept = gc.submit(move("kept", 5))
    assert given_up.cancel()
    gate.set()
    try:
        assert first.result(10) == "held"
        assert kept.result(10) == 95
        running = gc.submit(held(gate))  # cancelled while its work runs: the outcome is dropped
        running.cancel()
        assert gc.run_blocking(move("after", 5)) == 90
    finally:
        gc.close()
    assert state(engine)[1] == {"kept": "moved", "after": "moved"}


def savepoints(engine: sa.Engine) -> list[str]:
    """Collects the SAVEPOINT statements the engine runs."""
    seen: list[str] = []

    @sa.event.listens_for(engine, "savepoint")
    def savepoint(conn, name):  # type: ignore[no-untyped-def]
        seen.append(name)

    return seen


def test_a_batch_of_one_takes_no_savepoint_and_a_failure_writes_nothing(engine) -> None:  # type: ignore[no-untyped-def]
    taken = savepoints(engine)

    def fails_after_writing(conn: sa.Connection) -> None:
        move("broken", 10)(conn)
        raise RuntimeError("a bug after the writes")

    gc = GroupCommit(engine)
    try:
        assert gc.run_blocking(move("r1", 10)) == 90
        with pytest.raises(Refused):
            gc.submit(move("r2", 500), keep=(Refused,)).result(10)
        with pytest.raises(RuntimeError):
            gc.run_blocking(fails_after_writing)
        with pytest.raises(sa.exc.IntegrityError):  # the id again: re-run alone for its error
            gc.run_blocking(move("r1", 10))
    finally:
        gc.close()
    assert taken == []
    assert state(engine) == ({"a": 90, "b": 10}, {"r1": "moved", "r2": "refused"})
    assert gc.stats.alone == 1


def test_an_optimistic_batch_takes_savepoints_only_when_a_request_fails(engine) -> None:  # type: ignore[no-untyped-def]
    taken = savepoints(engine)
    gc = GroupCommit(engine, optimistic=True)
    try:
        clean = queue_behind_gate(gc, [move("r1", 10), move("r2", 500), move("r3", 20)])
        assert clean[0].result(10) == 90
        with pytest.raises(Refused):  # a kept refusal needs no savepoint
            clean[1].result(10)
        assert clean[2].result(10) == 70
        assert taken == []
        failing = queue_behind_gate(gc, [move("r4", 5), move("r1", 1), move("r5", 5)])
        assert failing[0].result(10) == 65
        with pytest.raises(sa.exc.IntegrityError):
            failing[1].result(10)
        assert failing[2].result(10) == 60
        assert len(taken) == 3  # the failing batch again, a savepoint per request
    finally:
        gc.close()
    balances, outcomes = state(engine)
    assert balances == {"a": 60, "b": 40}
    assert outcomes == {
        "r1": "moved",
        "r2": "refused",
        "r3": "moved",
        "r4": "moved",
        "r5": "moved",
    }


def test_a_batch_left_aborted_by_a_swallowed_error_is_not_reported_written(engine) -> None:  # type: ignore[no-untyped-def]
    """On PostgreSQL a work that swallows a database error leaves the transaction aborted, and
    COMMIT then rolls it back without an error: the batch's other requests must not be told
    they were written. They are re-run alone."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite undoes only the failed statement")

    def swallows(conn: sa.Connection) -> str:
        with contextlib.suppress(sa.exc.IntegrityError):
            conn.execute(sa.insert(accounts).values(id="a", balance=1))
        return "swallowed"

    gc = GroupCommit(engine, optimistic=True)
    try:
        written, swallowed = queue_behind_gate(gc, [move("r1", 10), swallows])
        assert written.result(10) == 90
        swallowed.result(10)
    finally:
        gc.close()
    assert state(engine) == ({"a": 90, "b": 10}, {"r1": "moved"})
