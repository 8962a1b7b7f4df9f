"""Many clients at once against one member, through the real server: never overdrawn, exact sums,
no deadlock. Run on both databases; on PostgreSQL this exercises the row locks for real."""

from __future__ import annotations

import asyncio
import socket

import grpc
import pytest

from coalition_kernel.errors import error_info_of
from merchant_node.client import MerchantNodeClient
from tests.conftest import issue_key


async def outcome(call) -> str:  # type: ignore[no-untyped-def]
    try:
        await call
        return "OK"
    except grpc.aio.AioRpcError as err:
        info = error_info_of(err)
        return f"{err.code().name}/{info.reason if info else '-'}"


async def test_32_concurrent_redeems_never_overdraw_one_member(node):
    async with node.client(timeout=60) as client:
        await client.enroll_member("m1")
        await client.earn("m1", "seed", 100_000)  # 1000 points
        results = await asyncio.gather(
            *(outcome(client.redeem("m1", f"r{i}", points=40)) for i in range(32))
        )
        balance = await client.get_balance("m1")
    assert results.count("OK") == 25  # 32 × 40 points asked of 1000
    assert set(results) == {"OK", "FAILED_PRECONDITION/INSUFFICIENT_POINTS"}
    assert balance.available_points == 0
    assert node.ledger.audit() == []


async def test_concurrent_earns_redeems_and_refunds_keep_the_sums_exact(node):
    async with node.client(timeout=60) as client:
        await client.enroll_member("m1")
        await client.earn("m1", "seed", 50_000)
        calls = []
        for i in range(16):
            calls.append(client.earn("m1", f"e{i}", 1_000))
            calls.append(client.redeem("m1", f"r{i}", points=20))
        calls += [client.refund("seed", amount_fen=1_000) for _ in range(16)]
        results = await asyncio.gather(*(outcome(c) for c in calls))
        balance = await client.get_balance("m1")
    assert set(results) <= {"OK", "FAILED_PRECONDITION/INSUFFICIENT_POINTS"}
    redeemed = 20 * sum(r == "OK" for r in results[1:32:2])
    assert balance.available_points - balance.debt_points == 500 + 16 * 10 - redeemed - 16 * 10
    assert node.ledger.audit() == []


async def test_the_same_request_sent_16_times_at_once_takes_effect_once(node):
    async with node.client(timeout=60) as client:
        await client.enroll_member("m1")
        answers = await asyncio.gather(
            *(client.earn("m1", "o1", 10_000, request_id="same") for _ in range(16))
        )
        balance = await client.get_balance("m1")
    assert {a.points_earned for a in answers} == {100}
    assert len({a.SerializeToString() for a in answers}) == 1
    assert balance.available_points == 100


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_client_retries_unavailable_with_the_same_request_id(ledger):
    port = free_port()
    from merchant_node.server import build_server

    server, offload = build_server(ledger, f"127.0.0.1:{port}")

    async def start_late() -> None:
        await asyncio.sleep(0.4)
        await server.start()

    key = issue_key(ledger)
    async with MerchantNodeClient(f"127.0.0.1:{port}", api_key=key, max_attempts=5) as client:
        starter = asyncio.create_task(start_late())
        try:
            res = await client.enroll_member("m1")
        finally:
            await starter
    assert res.member.member_id == "m1"
    await server.stop(1)
    offload.shutdown()


async def test_graceful_shutdown_finishes_calls_in_flight(ledger):
    from merchant_node.server import build_server

    server, offload = build_server(ledger, "127.0.0.1:0")
    port = await server.start()
    key = issue_key(ledger)
    async with MerchantNodeClient(
        f"127.0.0.1:{port}", api_key=key, timeout=30, max_attempts=1
    ) as client:
        await client.enroll_member("m1")
        in_flight = [
            asyncio.create_task(outcome(client.earn("m1", f"o{i}", 1_000))) for i in range(20)
        ]
        await asyncio.sleep(0.01)
        await server.stop(grace=10)
        done = await asyncio.gather(*in_flight)
        after = await outcome(client.earn("m1", "late", 1_000))
    offload.shutdown()
    # Every call either completed, or was turned away before it started (grpc answers those
    # UNAVAILABLE or CANCELLED): none was cut half-way, as the balance shows.
    assert set(done) <= {"OK", "UNAVAILABLE/-", "CANCELLED/-"} and "OK" in done
    assert after == "UNAVAILABLE/-"
    assert ledger.balance("m1").available_points == 10 * done.count("OK")
    assert ledger.audit() == []


@pytest.mark.parametrize("n", [32])
async def test_concurrent_enrollments_of_one_member_enroll_it_once(node, n):
    async with node.client(timeout=60) as client:
        results = await asyncio.gather(*(outcome(client.enroll_member("m1")) for _ in range(n)))
    assert results.count("OK") == 1
    assert set(results) == {"OK", "ALREADY_EXISTS/MEMBER_ALREADY_ENROLLED"}
