"""Several exchange processes over one PostgreSQL database write one audit history (issue 12).

Three `coalition exchange serve` processes share one initialised exchange (its keys and its
database), each on its own port; each merchant node calls a different one, so every process
answers redemptions while the others do (each process's log shows what it answered). Many
cross-shop redemptions (authorize + capture through the acquirers' POS API), some refused, run
at once. Then the history is one: `coalition exchange audit verify` finds the chain intact, its
sequence has no gap, every signed request and answer is in it exactly once, and each merchant's
slice, fetched from any process, verifies on the node's side. Tampering with one entry is named
by both checks.

PostgreSQL only: a SQLite file has one writer at a time, so it cannot show processes racing to
append (the test is skipped without a server, and fails under COALITION_REQUIRE_POSTGRES=1).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
import pytest
import pytest_asyncio
import sqlalchemy as sa

from coalition.envelope.v1.envelope_pb2 import SignedEnvelope
from coalition_kernel.db import make_engine, run_in_transaction
from coalition_kernel.envelope import Signer, header_request_id
from exchange import audit
from exchange.schema import audit_log
from merchant_node.acquirer import ExchangeLink
from merchant_node.audit_slice import SliceReport, fetch_and_verify
from tests.exchange.multi_process import Nodes, RealClock, serve_exchanges, start_nodes

pytestmark = pytest.mark.postgresql

CLOCK = RealClock()
LINKS = {"tea": 0, "noodles": 1, "salon": 2}  # merchant → the exchange process its node calls
POINTS = 5


@dataclass
class Outcome:
    authorized: dict[str, list[str]] = field(default_factory=dict)  # acquirer → request ids
    captured: dict[str, list[str]] = field(default_factory=dict)
    refused: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # (request id, reason)


@pytest_asyncio.fixture
async def multi(tmp_path, pg_url) -> AsyncIterator[Nodes]:  # type: ignore[no-untyped-def]
    def node_database(name: str) -> str:
        return f"sqlite:///{tmp_path / f'{name}.db'}"

    with serve_exchanges(tmp_path, pg_url, count=len(set(LINKS.values()))) as exchange:
        async for nodes in start_nodes(exchange, node_database, LINKS, CLOCK):
            yield nodes


async def fund(nodes: Nodes, issuer: str, members: list[str], fen: int) -> None:
    client = nodes[issuer].client
    for member in members:
        await client.enroll_member(member)
        if fen:
            await client.earn(member, f"seed-{member}", fen)


async def redeem(
    nodes: Nodes, issuer: str, acquirer: str, member: str, out: Outcome, code: str | None = None
) -> None:
    """One cross-shop redemption through the acquirer's POS API; its outcome noted."""
    client = nodes[acquirer].client
    code = code or nodes[issuer].wallet_code(member, CLOCK, acquirer, POINTS)  # type: ignore[arg-type]
    auth_id, capture_id = f"auth-{acquirer}-{member}", f"capture-{acquirer}-{member}"
    try:
        auth = await client.authorize_cross(
            issuer, member, f"order-{member}", points=POINTS, consent_code=code, request_id=auth_id
        )
    except grpc.aio.AioRpcError as err:
        out.refused.setdefault(acquirer, []).append((auth_id, _reason(err)))
        return
    out.authorized.setdefault(acquirer, []).append(auth_id)
    await client.capture_cross(auth.authorization_id, request_id=capture_id)
    out.captured.setdefault(acquirer, []).append(capture_id)


def _reason(err: grpc.aio.AioRpcError) -> str:
    from coalition_kernel.errors import error_from_rpc

    return error_from_rpc(err, "node", "NODE").reason


async def slice_of(nodes: Nodes, merchant_id: str, process: int) -> SliceReport:
    """The merchant's slice fetched from exchange process `process` and checked by the node's
    own code (merchant_node/audit_slice.py)."""
    node, exchange = nodes[merchant_id], nodes.exchange
    link = ExchangeLink(
        exchange.targets[process],
        Signer(merchant_id, node.key, CLOCK),
        exchange.public_key,
    )
    try:
        return await fetch_and_verify(link, node.key.public_key(), exchange.public_key, page=50)
    finally:
        await link.close()


def read_entries(url: str) -> list[audit.Entry]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return audit.read(conn)
    finally:
        engine.dispose()


def verify_chain(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        return run_in_transaction(engine, audit.verify_chain)
    finally:
        engine.dispose()


def request_ids(entries: list[audit.Entry], direction: str, peer: str) -> Counter[str]:
    """How often each request id appears in signed envelopes of `direction` with `peer`."""
    seen: Counter[str] = Counter()
    for e in entries:
        if e.direction == direction and e.peer_id == peer and e.envelope:
            seen[header_request_id(SignedEnvelope.FromString(e.envelope).payload)] += 1
    return seen


async def run_workload(nodes: Nodes) -> Outcome:
    """Tea's members spend at noodles and at salon, noodles' at tea, all at once; some are
    refused: a wrong consent code, or too few points."""
    tea = [f"t-{k:02d}" for k in range(24)]
    noodles = [f"n-{k:02d}" for k in range(10)]
    poor = ["t-poor-0", "t-poor-1", "n-poor-0"]
    await fund(nodes, "tea", [*tea, "t-wrong-0", "t-wrong-1"], 10_000)
    await fund(nodes, "noodles", noodles, 10_000)
    await fund(nodes, "tea", poor[:2], 0)
    await fund(nodes, "noodles", poor[2:], 0)
    out = Outcome()
    work = [redeem(nodes, "tea", "noodles", m, out) for m in tea[:12]]
    work += [redeem(nodes, "tea", "salon", m, out) for m in tea[12:]]
    work += [redeem(nodes, "noodles", "tea", m, out) for m in noodles]
    work += [
        redeem(nodes, "tea", "noodles", "t-wrong-0", out, code="000000"),
        redeem(nodes, "tea", "salon", "t-wrong-1", out, code="000000"),
        redeem(nodes, "tea", "salon", "t-poor-0", out),
        redeem(nodes, "tea", "noodles", "t-poor-1", out),
        redeem(nodes, "noodles", "tea", "n-poor-0", out),
    ]
    await asyncio.gather(*work)
    return out


async def test_processes_write_one_verifiable_history(multi, pg_url):
    nodes = multi
    out = await run_workload(nodes)
    # The good ones all went through, the bad ones were refused for what they were.
    assert {a: len(ids) for a, ids in out.captured.items()} == {
        "noodles": 12,
        "salon": 12,
        "tea": 10,
    }
    refused = sorted(reason for ids in out.refused.values() for _, reason in ids)
    assert len(refused) == 5 and refused.count("CONSENT_INVALID") == 2, refused

    # Every process answered its own acquirer's redemptions, each from its own PID.
    pids = set()
    for merchant_id, index in LINKS.items():
        served = nodes.exchange.served_by(index, "Authorize")
        assert sum(served.values()) == len(out.authorized[merchant_id]), nodes.exchange.log(index)
        assert sum(nodes.exchange.served_by(index, "Capture").values()) == len(
            out.captured[merchant_id]
        )
        pids |= set(served)
    assert len(pids) == len(LINKS)

    # One chain: the exchange's own verification, then a contiguous sequence.
    verify = nodes.exchange.verify()
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "hash chain verified" in verify.stdout
    entries = read_entries(pg_url)
    assert [e.sequence for e in entries] == list(range(1, len(entries) + 1))
    assert f"{len(entries)} entries" in verify.stdout

    # Every signed message is in it once: each request the acquirers sent, its answer, and the
    # refused requests (their refusal is an unsigned "out" entry naming the reason).
    signed = [e.envelope for e in entries if e.envelope]
    assert len(signed) == len(set(signed))
    for acquirer in LINKS:
        received = request_ids(entries, "in", acquirer)
        answered = request_ids(entries, "out", acquirer)
        for rid in out.authorized.get(acquirer, []) + out.captured.get(acquirer, []):
            assert received[rid] == 1 and answered[rid] == 1, rid
        for rid, _ in out.refused.get(acquirer, []):
            assert received[rid] == 1 and answered[rid] == 0, rid
        refusals = Counter(
            e.outcome
            for e in entries
            if e.direction == "out" and e.peer_id == acquirer and e.outcome.startswith("refused")
        )
        assert refusals == Counter(
            f"refused:{reason}" for _, reason in out.refused.get(acquirer, [])
        )

    # Each merchant's slice, fetched from a process other than its own, verifies node-side.
    for merchant_id, index in LINKS.items():
        other = (index + 1) % len(LINKS)
        report = await slice_of(nodes, merchant_id, other)
        assert report.problems == []
        # Fetching a page is itself on the record: compare with the log as of the last page.
        assert report.head_sequence > entries[-1].sequence
        mine = [
            e
            for e in read_entries(pg_url)
            if e.peer_id == merchant_id and e.sequence <= report.head_sequence
        ]
        assert report.entries == len(mine)
        assert report.signatures_checked == sum(1 for e in mine if e.envelope)


async def test_a_tampered_entry_is_named(multi, pg_url):
    nodes = multi
    await fund(nodes, "tea", ["t-1", "t-2", "t-3"], 10_000)
    out = Outcome()
    await asyncio.gather(
        redeem(nodes, "tea", "noodles", "t-1", out),
        redeem(nodes, "tea", "salon", "t-2", out),
        redeem(nodes, "tea", "noodles", "t-3", out),
    )
    assert verify_chain(pg_url) == []
    # As the database's owner, past the append-only guard: one of salon's entries is altered.
    engine = make_engine(pg_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
            target = conn.execute(
                sa.select(audit_log.c.sequence)
                .where(audit_log.c.peer_id == "salon", audit_log.c.direction == "in")
                .order_by(audit_log.c.sequence.desc())
                .limit(1)
            ).scalar_one()
            conn.execute(
                sa.update(audit_log)
                .where(audit_log.c.sequence == target)
                .values(outcome="refused:NOPE")
            )
    finally:
        engine.dispose()
    verify = nodes.exchange.verify()
    assert verify.returncode == 1
    assert "audit log BROKEN" in verify.stdout
    assert f"entry {target}: its hash does not match its contents" in verify.stdout
    assert f"entry {target}: its hash does not match its contents" in verify_chain(pg_url)
    report = await slice_of(nodes, "salon", 0)
    assert f"entry {target}: its hash does not match its contents" in report.problems
    assert (await slice_of(nodes, "noodles", 0)).problems == []


async def test_a_suspension_through_one_process_holds_at_the_others_at_once(multi):
    """The registry each process keeps in memory (keys, standing) follows a change another
    process committed, by the very next request: the operator suspends through process 0,
    the acquirers' nodes call processes 1 and 2."""
    nodes = multi
    members = [f"t-s{k}" for k in range(6)]
    await fund(nodes, "tea", members, 10_000)
    out = Outcome()
    # Every process has served (and so loaded its registry) before the change.
    await redeem(nodes, "tea", "noodles", members[0], out)
    await redeem(nodes, "tea", "salon", members[1], out)
    assert len(out.captured["noodles"]) == len(out.captured["salon"]) == 1

    await nodes.operator.set_status("noodles", active=False)  # the acquirer, via process 0
    await redeem(nodes, "tea", "noodles", members[2], out)  # process 1
    await nodes.operator.set_status("noodles", active=True)
    await nodes.operator.set_status("tea", active=False)  # the issuer, via process 0
    await redeem(nodes, "tea", "salon", members[3], out)  # process 2
    await nodes.operator.set_status("tea", active=True)
    assert [reason for _, reason in out.refused["noodles"]] == ["MERCHANT_SUSPENDED"]
    assert [reason for _, reason in out.refused["salon"]] == ["MERCHANT_SUSPENDED"]

    # Resumed through process 0: both go through again at once.
    await redeem(nodes, "tea", "noodles", members[4], out)
    await redeem(nodes, "tea", "salon", members[5], out)
    assert len(out.captured["noodles"]) == len(out.captured["salon"]) == 2
