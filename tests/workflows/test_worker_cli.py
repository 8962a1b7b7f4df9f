"""`coalition worker` as an operator and a merchant run it: a real process against a real
Temporal dev server, beside an exchange and a node initialised by the CLI. It keeps its
Schedules (settlement at 00:10, the node's expiry at 03:00, both in Shanghai time; delivery
every 5 minutes) and stops cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from zoneinfo import ZoneInfo

from tests.merchant_node.test_cli import coalition

SHANGHAI = ZoneInfo("Asia/Shanghai")


async def test_the_worker_keeps_its_schedules_and_stops_on_sigterm(dev_server, tmp_path):
    assert coalition("exchange", "init", "--dir", str(tmp_path / "x")).returncode == 0
    assert (
        coalition("node", "init", "--dir", str(tmp_path / "tea"), "--merchant-id", "tea").returncode
        == 0
    )
    assert coalition("worker").returncode == 2  # neither side given
    target = dev_server.client.service_client.config.target_host
    nodes = tmp_path / "campaign-nodes.toml"
    nodes.write_text(
        '[[node]]\nmerchant_id = "tea"\nendpoint = "127.0.0.1:50051"\nadmin_token = "t0ken"\n'
    )
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "coalition_cli.main",
            "worker",
            "--exchange-config",
            str(tmp_path / "x" / "exchange.toml"),
            "--node-config",
            str(tmp_path / "tea" / "node.toml"),
            "--campaign-nodes",
            str(nodes),
            "--temporal",
            target,
            "--task-queue",
            "coalition-settlement-cli-test",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    client = dev_server.client
    wanted = {
        "coalition-settlement",
        "coalition-expiry-tea",
        "coalition-notify-tea",
        "coalition-intelligence-tea",
    }
    try:
        for _ in range(300):
            found = {s.id async for s in await client.list_schedules()}
            if wanted <= found:
                break
            assert worker.poll() is None, worker.communicate()[0]
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"schedules never appeared: {found}")
        settle = await client.get_schedule_handle("coalition-settlement").describe()
        expiry = await client.get_schedule_handle("coalition-expiry-tea").describe()
        notify = await client.get_schedule_handle("coalition-notify-tea").describe()
        assert {
            (t.astimezone(SHANGHAI).hour, t.astimezone(SHANGHAI).minute)
            for t in settle.info.next_action_times
        } == {(0, 10)}
        assert {
            (t.astimezone(SHANGHAI).hour, t.astimezone(SHANGHAI).minute)
            for t in expiry.info.next_action_times
        } == {(3, 0)}
        intelligence = await client.get_schedule_handle("coalition-intelligence-tea").describe()
        assert {
            (t.astimezone(SHANGHAI).hour, t.astimezone(SHANGHAI).minute)
            for t in intelligence.info.next_action_times
        } == {(2, 0)}
        times = notify.info.next_action_times
        assert len(times) >= 2 and (times[1] - times[0]).total_seconds() == 300
        await asyncio.sleep(1.0)  # the workers poll
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=30)
        assert worker.returncode == 0, output
        assert "task queue coalition-node-tea" in output
        assert "task queue coalition-settlement-cli-test" in output
        assert "task queue coalition-campaigns" in output
    finally:
        if worker.poll() is None:
            worker.kill()
        for schedule_id in wanted:
            await client.get_schedule_handle(schedule_id).delete()
