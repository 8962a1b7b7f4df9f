"""/metrics after a known workload: per-RPC counts and latencies, and the business figures the
node reads from its rollups, checked exactly."""

from __future__ import annotations

import asyncio
import urllib.request

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from coalition_kernel import telemetry
from merchant_node.client import MerchantNodeClient

EARN = "/coalition.merchant.v1.MerchantNodeService/Earn"
REDEEM = "/coalition.merchant.v1.MerchantNodeService/Redeem"


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples, name: str, **labels: str) -> float:  # type: ignore[no-untyped-def]
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture(scope="module")
def metrics_port() -> int:
    port = telemetry.serve_metrics(0)
    assert port
    return port


async def test_metrics_after_a_known_workload_count_calls_and_points_exactly(node, metrics_port):
    before = await asyncio.to_thread(scrape, metrics_port)
    async with MerchantNodeClient(node.target, api_key=getattr(node, "api_key", "")) as pos:
        await pos.enroll_member("m-1")
        await pos.enroll_member("m-2")
        await pos.earn("m-1", "o-1", 10_000)  # 100 points at 1 point per yuan
        await pos.earn("m-2", "o-2", 5_000)  # 50 points
        await pos.redeem("m-1", "r-1", points=30)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await pos.redeem("m-2", "r-2", points=51)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    after = await asyncio.to_thread(scrape, metrics_port)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("coalition_rpc_calls_total", method=EARN, code="OK") == 2
    assert delta("coalition_rpc_calls_total", method=REDEEM, code="OK") == 1
    assert delta("coalition_rpc_calls_total", method=REDEEM, code="FAILED_PRECONDITION") == 1
    assert delta("coalition_rpc_latency_seconds_count", method=EARN) == 2
    assert delta("coalition_rpc_latency_seconds_count", method=REDEEM) == 2
    # Business figures come from this node's database: exact, not deltas.
    shop = {"merchant": ""}
    assert value(after, "coalition_points_issued_total", **shop) == 150
    assert value(after, "coalition_points_redeemed_total", **shop) == 30
    assert value(after, "coalition_points_outstanding", **shop) == 120
    assert value(after, "coalition_earns_total", **shop) == 2
    assert value(after, "coalition_redemptions_total", **shop) == 1
    assert value(after, "coalition_members_enrolled_total", **shop) == 2
    assert value(after, "coalition_open_holds", **shop) == 0
    assert value(after, "coalition_outbox_backlog", **shop) == 0


async def test_a_stopped_node_leaves_no_figures_on_metrics(ledger, metrics_port):
    from tests.conftest import start_node

    async for _running in start_node(ledger):
        during = await asyncio.to_thread(scrape, metrics_port)
        assert ("coalition_points_issued_total", (("merchant", ""),)) in during
    after = await asyncio.to_thread(scrape, metrics_port)
    assert ("coalition_points_issued_total", (("merchant", ""),)) not in after


async def test_several_nodes_in_one_process_each_add_their_figures(new_database, metrics_port):
    from tests.conftest import open_test_ledger, start_node

    ledgers = [open_test_ledger(new_database(f"n{i}")) for i in range(2)]
    try:
        async for _first in start_node(ledgers[0]):
            async for _second in start_node(ledgers[1]):
                text = await asyncio.to_thread(
                    lambda: urllib.request.urlopen(
                        f"http://127.0.0.1:{metrics_port}/metrics", timeout=10
                    ).read()
                )
                assert text.count(b'coalition_points_issued_total{merchant=""}') == 2
    finally:
        for ledger in ledgers:
            ledger.engine.dispose()
