"""One cross-shop redemption across three real processes (the exchange and two `coalition node
serve` processes, each exporting spans to a file by its environment) is one trace holding the
spans of all three: acquirer's node → exchange → issuer's node."""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest_asyncio

from coalition_kernel.envelope import OPERATOR_ID, Signer
from coalition_kernel.keys import load_private_key, load_public_key
from exchange.operator_client import OperatorClient
from merchant_node.client import MerchantNodeClient
from merchant_node.config import NodeConfig
from merchant_node.runtime import raw_public_key
from tests.conftest import node_key
from tests.exchange.test_restart import spend_consent, wait_ready
from tests.test_network import coalition, free_port


@dataclass
class Traced:
    spans_file: pathlib.Path
    exchange_target: str
    clients: dict[str, MerchantNodeClient] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def spans(self) -> list[dict]:  # type: ignore[type-arg]
        if not self.spans_file.exists():
            return []
        return [json.loads(line) for line in self.spans_file.read_text().splitlines() if line]


def serve(args: list[str], service: str, spans_file: pathlib.Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "OTEL_SERVICE_NAME": service,
        "COALITION_TRACE_FILE": str(spans_file),
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # export within a tenth of a second
    }
    return subprocess.Popen(
        [sys.executable, "-m", "coalition_cli.main", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest_asyncio.fixture
async def traced(tmp_path, new_database) -> AsyncIterator[Traced]:  # type: ignore[no-untyped-def]
    spans_file = tmp_path / "spans.jsonl"
    port = free_port()
    ex_dir = tmp_path / "exchange"
    made = await asyncio.to_thread(
        coalition, "exchange", "init", "--dir", str(ex_dir), "--db", new_database("exchange"),
        "--listen", f"127.0.0.1:{port}",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    target = f"127.0.0.1:{port}"
    live = Traced(spans_file, target)
    live.processes.append(
        serve(
            ["exchange", "serve", "--config", str(ex_dir / "exchange.toml")], "exchange", spans_file
        )
    )
    operator = None
    try:
        await asyncio.to_thread(wait_ready, target)
        exchange_pem = ex_dir / "exchange_ed25519.pub.pem"
        operator = OperatorClient(
            target,
            Signer(OPERATOR_ID, load_private_key(ex_dir / "operator_ed25519.pem")),
            load_public_key(exchange_pem),
        )
        for merchant_id in ("tea", "noodles"):
            node_target = f"127.0.0.1:{free_port()}"
            init = await asyncio.to_thread(
                coalition, "node", "init", "--dir", str(tmp_path / merchant_id),
                "--merchant-id", merchant_id, "--db", new_database(merchant_id),
                "--listen", node_target, "--exchange", target, "--exchange-key", str(exchange_pem),
            )  # fmt: skip
            assert init.returncode == 0, init.stderr
            config = tmp_path / merchant_id / "node.toml"
            await operator.onboard(
                merchant_id,
                merchant_id.title(),
                raw_public_key(NodeConfig.load(config)),
                node_target,
                fen_per_point="1",
            )
            live.processes.append(
                serve(["node", "serve", "--config", str(config)], f"node-{merchant_id}", spans_file)
            )
            live.clients[merchant_id] = MerchantNodeClient(
                node_target, api_key=node_key(config), timeout=10
            )
            await asyncio.to_thread(wait_ready, node_target)
        yield live
    finally:
        for client in live.clients.values():
            await client.close()
        if operator is not None:
            await operator.close()
        for process in live.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)


async def test_one_cross_shop_redemption_is_one_trace_through_three_processes(traced):
    tea, noodles = traced.clients["tea"], traced.clients["noodles"]
    secret = (await tea.enroll_member("m-1")).wallet_secret
    await tea.earn("m-1", "seed", 100_000)
    # The POS's own call is not traced (a POS is not ours): the trace starts at noodles' node.
    auth = await noodles.authorize_cross(
        "tea",
        "m-1",
        "o-1",
        points=100,
        consent_code=spend_consent(secret, "tea", "noodles", 100),
        request_id="a-1",
    )
    await noodles.capture_cross(auth.authorization_id, request_id="c-1")

    def capture_trace() -> list[dict]:  # type: ignore[type-arg]
        spans = traced.spans()
        roots = [
            s
            for s in spans
            if s["name"].endswith("/CaptureCrossRedemption") and s["kind"] == "SERVER"
        ]
        if not roots:
            return []
        return [s for s in spans if s["trace_id"] == roots[0]["trace_id"]]

    deadline = time.monotonic() + 30
    trace = capture_trace()
    while {s["service"] for s in trace} != {"node-noodles", "exchange", "node-tea"}:
        assert time.monotonic() < deadline, f"incomplete trace: {trace}"
        await asyncio.sleep(0.2)
        trace = capture_trace()

    by_id = {s["span_id"]: s for s in trace}
    root = next(s for s in trace if s["parent_span_id"] == "")
    assert (root["service"], root["kind"]) == ("node-noodles", "SERVER")
    assert root["name"] == "/coalition.merchant.v1.MerchantNodeService/CaptureCrossRedemption"
    # Every other span hangs off the root, and the hops go node → exchange → issuer's node.
    for span in trace:
        if span is not root:
            assert span["parent_span_id"] in by_id, span
    exchange_capture = next(
        s for s in trace if s["service"] == "exchange" and s["name"].endswith("Service/Capture")
    )
    assert by_id[exchange_capture["parent_span_id"]]["service"] == "node-noodles"
    issuer = [s for s in trace if s["service"] == "node-tea" and s["kind"] == "SERVER"]
    assert issuer and all(by_id[s["parent_span_id"]]["service"] == "exchange" for s in issuer)
    # Authorize was its own trace, as separate calls from the POS are.
    authorize = [s for s in traced.spans() if s["name"].endswith("/AuthorizeCrossRedemption")]
    assert authorize and authorize[0]["trace_id"] != root["trace_id"]
