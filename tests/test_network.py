"""How servers take their port and tell what they did: a busy port is refused (unless several
processes of one server share it on purpose, `--processes N`), every call leaves one structured
log line without secrets, and every client channel caps its reconnect backoff."""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from coalition.merchant.v1 import merchant_node_pb2 as pb
from coalition.merchant.v1 import merchant_node_pb2_grpc as pb_grpc
from coalition_kernel.rpc import PortInUse, Server, channel_options


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def coalition(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coalition_cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_serving(port: int, connections: int = 1) -> None:
    """`connections` fresh connections to `port` each get a SERVING health answer (with
    SO_REUSEPORT the kernel hands each new connection to one of the listening processes)."""
    for _ in range(connections):
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=60)
            health = health_pb2_grpc.HealthStub(channel)
            res = health.Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert res.status == health_pb2.HealthCheckResponse.SERVING


@pytest.fixture
def exchange_config(tmp_path, db_url) -> Iterator[tuple[str, int]]:  # type: ignore[no-untyped-def]
    port = free_port()
    done = coalition(
        "exchange", "init", "--dir", str(tmp_path / "ex"), "--db", db_url,
        "--listen", f"127.0.0.1:{port}",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    yield str(tmp_path / "ex" / "exchange.toml"), port


async def test_a_server_on_a_busy_port_is_refused_not_shared():
    first = Server([], listen="127.0.0.1:0")
    port = await first.start()
    try:
        second = Server([], listen=f"127.0.0.1:{port}")
        with pytest.raises(PortInUse, match="in use"):
            await second.start()
    finally:
        await first.stop(0)


def test_a_second_exchange_on_a_busy_port_fails_with_a_clear_message(exchange_config):
    config, port = exchange_config
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        done = coalition("exchange", "serve", "--config", config)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert f"cannot listen on 127.0.0.1:{port}: the address is in use" in done.stderr


def test_processes_share_a_port_on_purpose_and_others_are_still_refused(exchange_config):
    config, port = exchange_config
    group = subprocess.Popen(
        [sys.executable, "-m", "coalition_cli.main", "exchange", "serve", "--config", config,
         "--processes", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert_serving(port, connections=8)
        # Two server processes hold the port, children of the one that was started.
        children = subprocess.run(
            ["ps", "--ppid", str(group.pid), "-o", "pid="], capture_output=True, text=True
        ).stdout.split()
        assert len(children) == 2
        # A lone server (no --processes) and a second group are both refused.
        alone = coalition("exchange", "serve", "--config", config)
        assert alone.returncode == 1 and "in use" in alone.stderr
        assert "Traceback" not in alone.stderr
        again = coalition("exchange", "serve", "--config", config, "--processes", "2")
        assert again.returncode == 1 and "in use" in again.stderr
        assert "Traceback" not in again.stderr
    finally:
        group.send_signal(signal.SIGTERM)
        assert group.wait(timeout=30) == 0
    for pid in children:  # SIGTERM to the parent stopped every child
        assert subprocess.run(["ps", "-p", pid], capture_output=True).returncode != 0


def test_processes_need_a_fixed_port(tmp_path, db_url):
    done = coalition(
        "exchange", "init", "--dir", str(tmp_path / "ex"), "--db", db_url,
        "--listen", "127.0.0.1:0",
    )  # fmt: skip
    assert done.returncode == 0
    done = coalition(
        "exchange", "serve", "--config", str(tmp_path / "ex" / "exchange.toml"),
        "--processes", "2",
    )  # fmt: skip
    assert done.returncode == 1
    assert "fixed port" in done.stderr and "Traceback" not in done.stderr


async def test_every_call_leaves_one_log_line_without_secrets(node, caplog):
    caplog.set_level(logging.INFO, logger="coalition.rpc")
    async with node.client(max_attempts=1) as client:
        await client.enroll_member("m-log", phone="13800000000", request_id="req-enroll-1")
        with pytest.raises(grpc.aio.AioRpcError):
            await client.earn("m-nobody", "o-1", 1000, request_id="req-earn-1")
        await client.get_balance("m-log")
    async with grpc.aio.insecure_channel(node.target) as channel:
        stub = pb_grpc.MerchantNodeServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError):  # an unknown key is refused (and not logged)
            await stub.GetBalance(
                pb.GetBalanceRequest(member_id="m-log"),
                metadata=(("authorization", "Bearer very-secret-key"),),
            )
    lines = [r for r in caplog.records if r.name == "coalition.rpc"]
    assert len(lines) == 4
    enroll, earn, balance, _ = (r.rpc for r in lines)  # type: ignore[attr-defined]
    assert enroll["method"] == "/coalition.merchant.v1.MerchantNodeService/EnrollMember"
    assert enroll["request_id"] == "req-enroll-1" and enroll["status"] == "OK"
    assert enroll["peer"].startswith(("ipv4:127.0.0.1:", "ipv6:"))
    assert isinstance(enroll["latency_ms"], float) and enroll["latency_ms"] >= 0
    assert earn["status"] == "NOT_FOUND" and earn["reason"] == "MEMBER_NOT_FOUND"
    assert earn["request_id"] == "req-earn-1"
    assert balance["request_id"] == "" and balance["status"] == "OK"
    text = "\n".join(r.getMessage() for r in lines)
    assert "status=NOT_FOUND reason=MEMBER_NOT_FOUND" in text
    for secret in ("13800000000", "very-secret-key", "m-nobody"):
        assert secret not in text  # no payloads, no metadata values


def test_signed_calls_log_the_request_id_inside_the_envelope():
    from coalition.envelope.v1.envelope_pb2 import MessageHeader
    from coalition.exchange.v1 import exchange_pb2 as xpb
    from coalition_kernel.envelope import header_request_id

    command = xpb.QuoteCommand(header=MessageHeader(request_id="q-" + "x" * 200))
    assert header_request_id(command.SerializeToString()) == "q-" + "x" * 200
    assert header_request_id(b"") == ""
    assert header_request_id(b"\x0a\xff") == ""


def test_every_channel_caps_its_reconnect_backoff_near_a_second():
    options = dict(channel_options(("grpc.enable_retries", 1)))
    assert options["grpc.max_reconnect_backoff_ms"] <= 1_000
    assert options["grpc.enable_retries"] == 1
    assert options["grpc.keepalive_time_ms"] >= 10_000  # servers accept pings every 15 s


def test_the_cli_bind_error_has_no_traceback_for_a_node(tmp_path):
    port = free_port()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        done = coalition(
            "node", "serve", "--db", f"sqlite:///{tmp_path / 'n.db'}",
            "--listen", f"127.0.0.1:{port}",
        )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr and "in use" in done.stderr


def test_a_node_serves_from_several_processes_on_one_port(tmp_path):
    port = free_port()
    init = coalition(
        "node", "init", "--dir", str(tmp_path / "tea"), "--merchant-id", "tea",
        "--listen", f"127.0.0.1:{port}",
    )  # fmt: skip
    assert init.returncode == 0, init.stderr
    config = str(tmp_path / "tea" / "node.toml")
    group = subprocess.Popen(
        [sys.executable, "-m", "coalition_cli.main", "node", "serve", "--config", config,
         "--processes", "2"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert_serving(port, connections=8)
        children = subprocess.run(
            ["ps", "--ppid", str(group.pid), "-o", "pid="], capture_output=True, text=True
        ).stdout.split()
        assert len(children) == 2
        alone = coalition("node", "serve", "--config", config)
        assert alone.returncode == 1 and "in use" in alone.stderr
        assert "Traceback" not in alone.stderr
    finally:
        group.send_signal(signal.SIGTERM)
        assert group.wait(timeout=30) == 0
