"""The `coalition` command as an operator runs it: init a node, serve it, stop it with SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import tomllib

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from coalition.merchant.v1 import merchant_node_pb2 as pb
from coalition.merchant.v1 import merchant_node_pb2_grpc as pb_grpc


def coalition(*args: str, **kw) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    return subprocess.run(
        [sys.executable, "-m", "coalition_cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        **kw,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_node_init_writes_config_keys_and_a_migrated_database(tmp_path, db_url):
    done = coalition(
        "node", "init", "--dir", str(tmp_path / "n"), "--merchant-id", "tea", "--db", db_url,
        "--points-per-yuan", "3/2", "--fen-per-point", "1",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    config = tomllib.loads((tmp_path / "n" / "node.toml").read_text())["node"]
    assert (config["merchant_id"], config["points_per_yuan"], len(config["key_id"])) == (
        "tea",
        "3/2",
        16,
    )
    assert os.stat(config["private_key_file"]).st_mode & 0o777 == 0o600
    again = coalition("node", "init", "--dir", str(tmp_path / "n"), "--merchant-id", "tea")
    assert again.returncode == 1 and "exists" in again.stderr


def test_node_serve_answers_and_stops_gracefully_on_sigterm(tmp_path):
    port = free_port()
    init = coalition(
        "node",
        "init",
        "--dir",
        str(tmp_path),
        "--merchant-id",
        "tea",
        "--listen",
        f"127.0.0.1:{port}",
    )
    assert init.returncode == 0, init.stderr
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "coalition_cli.main",
            "node",
            "serve",
            "--config",
            str(tmp_path / "node.toml"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            status = (
                health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest()).status
            )
            assert status == health_pb2.HealthCheckResponse.SERVING
            stub = pb_grpc.MerchantNodeServiceStub(channel)
            added = coalition(
                "node", "client", "add", "--config", str(tmp_path / "node.toml"),
                "--name", "till-1", "--scopes", "pos",
            )  # fmt: skip
            assert added.returncode == 0, added.stderr
            auth = (("authorization", f"Bearer {added.stdout.splitlines()[-1]}"),)
            stub.EnrollMember(
                pb.EnrollMemberRequest(request_id="r1", member_id="m1"), metadata=auth
            )
            res = stub.Earn(
                pb.EarnRequest(request_id="r2", member_id="m1", order_id="o1", amount_fen=1000),
                metadata=auth,
            )
            assert res.points_earned == 10  # 1 point per yuan (the default rate)
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            server.kill()
    assert "serving on" in server.stdout.read()


@pytest.mark.parametrize("args", [["node", "serve"], ["node", "init", "--dir", "x"]])
def test_cli_refuses_incomplete_invocations(args):
    done = coalition(*args)
    assert done.returncode == 2
    assert done.stderr


def test_demo_runs_a_story_and_stops():
    started = time.monotonic()
    done = coalition("demo")
    assert done.returncode == 0, done.stderr
    assert "CONSENT_INVALID" in done.stdout and "CONSENT_REUSED" in done.stdout
    assert "receivables match" in done.stdout and "hash chain intact" in done.stdout
    assert "DO NOT MATCH" not in done.stdout and "BROKEN" not in done.stdout
    # Member intelligence (coalition_cli/demo_marketing.py): segments with their reasons, the
    # wake-up offers through the signed webhook, the control member told nothing.
    assert "m-he   → segment dormant" in done.stdout and "recency_days >= 90" in done.stdout
    assert "likely cause price_sensitive" in done.stdout
    assert "m-luo  → segment active" in done.stdout
    assert "(verified): m-xu ← 「满200减50 限时券」" in done.stdout
    assert "(verified): m-he ← 「欢迎回来礼」 +100 points" in done.stdout
    assert "nothing sent to m-gao (control group)" in done.stdout and "REJECTED" not in done.stdout
    # The console (coalition_cli/demo_console.py): its own process, both logins work, stopped.
    assert "merchant login: tea-house / cpk_" in done.stdout and "operator login: " in done.stdout
    assert "tea-house logged in → /shop/tea-house" in done.stdout
    assert "the operator logged in → /district: settlement batches" in done.stdout
    assert "nodes and console stopped" in done.stdout
    assert time.monotonic() - started < 60


PROGRAM = """
rules:
  - {id: spend_tiers, type: spend_brackets, mode: marginal,
     brackets: [{up_to_yuan: 1000, points_per_yuan: "1"}, {up_to_yuan: 5000, points_per_yuan: "1.5"}, {points_per_yuan: "2"}]}
  - {id: member_tier, type: tier_multiplier, tiers: {silver: "1", gold: "1.5"}}
tiers: {measure: spend_12m, levels: [{id: silver, threshold: 0}, {id: gold, threshold: 500000}]}
"""


def test_rules_validate_apply_show_and_simulate_from_the_command_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "rules:\n  - {id: x, type: category_multiplier, categories: [a], multiplier: '-1'}\ncaps: {per_order: -3}\n"
    )
    done = coalition("rules", "validate", str(bad))
    assert done.returncode == 1 and "2 error(s)" in done.stdout and "rules[0] (x)" in done.stdout
    good = tmp_path / "program.yaml"
    good.write_text(PROGRAM)
    assert coalition("rules", "validate", str(good)).returncode == 0

    port = free_port()
    assert (
        coalition(
            "node",
            "init",
            "--dir",
            str(tmp_path / "n"),
            "--merchant-id",
            "tea",
            "--listen",
            f"127.0.0.1:{port}",
        ).returncode
        == 0
    )
    config = str(tmp_path / "n" / "node.toml")
    assert os.stat(config).st_mode & 0o777 == 0o600  # it holds the admin token
    server = subprocess.Popen(
        [sys.executable, "-m", "coalition_cli.main", "node", "serve", "--config", config],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
        assert "no program applied" in coalition("rules", "show", "--config", config).stdout
        refused = coalition("rules", "apply", "--config", config, str(bad), "--by", "ops")
        assert refused.returncode == 1 and "PROGRAM_INVALID" in refused.stderr
        applied = coalition("rules", "apply", "--config", config, str(good), "--by", "ops")
        assert "applied as version 1" in applied.stdout, applied.stderr
        assert "in force: version 1" in coalition("rules", "show", "--config", config).stdout
        sim = coalition(
            "rules", "simulate", "--config", config, "--amount-fen", "200000", "--tier", "gold"
        )
        # 2000 yuan, marginal: 1000 × 1 + 1000 × 1.5 = 2500; gold adds half of it: 1250.
        assert "+2500  spend_tiers" in sim.stdout and "+1250  member_tier" in sim.stdout, sim.stdout
        assert "3750  points" in sim.stdout
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def test_the_operator_reads_the_nodes_public_key_without_its_private_key(tmp_path):
    from merchant_node.config import NodeConfig
    from merchant_node.runtime import raw_public_key

    assert (
        coalition("node", "init", "--dir", str(tmp_path / "n"), "--merchant-id", "tea").returncode
        == 0
    )
    config = NodeConfig.load(tmp_path / "n" / "node.toml")
    private = type(tmp_path)(config.private_key_file)
    expected = raw_public_key(config)
    private.rename(tmp_path / "elsewhere.pem")  # the operator's machine has no private key
    assert raw_public_key(config) == expected and len(expected) == 32
