"""The operator's and merchants' command lines against real processes: an exchange and a node
served by `coalition … serve`, onboarding, listing, auditing."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import grpc
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def coalition(*args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "coalition_cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done


def wait_ready(port: int) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        grpc.channel_ready_future(channel).result(timeout=30)


@pytest.fixture
def served(tmp_path) -> Iterator[dict[str, object]]:  # type: ignore[no-untyped-def]
    processes: list[subprocess.Popen[str]] = []

    def serve(*args: str, port: int) -> None:
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "coalition_cli.main", *args],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                text=True,
            )
        )
        wait_ready(port)

    yield {"serve": serve, "dir": tmp_path}
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        assert process.wait(timeout=30) == 0


def test_an_operator_onboards_a_node_and_everyone_audits(served):
    d, serve = served["dir"], served["serve"]
    x_port, n_port = free_port(), free_port()
    assert (
        coalition(
            "exchange", "init", "--dir", f"{d}/x", "--listen", f"127.0.0.1:{x_port}"
        ).returncode
        == 0
    )
    serve("exchange", "serve", "--config", f"{d}/x/exchange.toml", port=x_port)
    init = coalition(
        "node", "init", "--dir", f"{d}/tea", "--merchant-id", "tea", "--listen", f"127.0.0.1:{n_port}",
        "--exchange", f"127.0.0.1:{x_port}", "--exchange-key", f"{d}/x/exchange_ed25519.pub.pem",
    )  # fmt: skip
    assert init.returncode == 0, init.stderr
    serve("node", "serve", "--config", f"{d}/tea/node.toml", port=n_port)
    op = [
        "--exchange", f"127.0.0.1:{x_port}", "--exchange-key", f"{d}/x/exchange_ed25519.pub.pem",
        "--key", f"{d}/x/operator_ed25519.pem",
    ]  # fmt: skip
    onboard = coalition(
        "operator", "onboard", *op, "--node-config", f"{d}/tea/node.toml", "--name", "Tea House",
        "--fee-bps", "150",
    )  # fmt: skip
    assert onboard.returncode == 0, onboard.stderr
    assert "tea" in onboard.stdout and "fee 150 bps" in onboard.stdout
    assert coalition("operator", "suspend", *op, "tea").stdout.split()[3] == "suspended"
    assert coalition("operator", "resume", *op, "tea").stdout.split()[3] == "active"
    listed = coalition("operator", "list", *op)
    assert listed.stdout.count("\n") == 1 and "Tea House" in listed.stdout
    audit = coalition("node", "audit", "--config", f"{d}/tea/node.toml")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "ledger laws: hold" in audit.stdout and ": intact" in audit.stdout
    verify = coalition("exchange", "audit", "verify", "--config", f"{d}/x/exchange.toml")
    assert verify.returncode == 0 and "hash chain verified" in verify.stdout
