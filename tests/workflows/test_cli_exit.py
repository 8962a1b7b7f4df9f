"""Commands that talk to Temporal exit 0 exactly when they succeeded: before the work-around
(coalition_cli/process.py) about one run in five of `campaign list` died at interpreter exit
with "Fatal Python error: PyGILState_Release" (status 134) after printing its answer."""

from __future__ import annotations

import asyncio
import subprocess
import sys


def coalition(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coalition_cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


async def at_once(*commands: tuple[str, ...]) -> list[subprocess.CompletedProcess[str]]:
    """Runs the commands, three processes at a time (each is its own interpreter, started and
    ended on its own: the exit under test is each process's); their results in order."""
    slots = asyncio.Semaphore(3)

    async def one(args: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
        async with slots:
            return await asyncio.to_thread(coalition, *args)

    return await asyncio.gather(*(one(args) for args in commands))


async def test_thirty_temporal_commands_all_exit_0_with_their_output(dev_server):
    target = dev_server.client.service_client.config.target_host
    commands = [
        ("settle", "status", "--temporal", target),
        ("campaign", "list", "--temporal", target),
    ]
    runs = await at_once(*(commands[i % 2] for i in range(30)))
    for i, done in enumerate(runs):
        assert done.returncode == 0, (i, done.returncode, done.stderr[-2000:])
        assert "Fatal Python error" not in done.stderr
        if i % 2 == 0:  # the answer was printed (and flushed) before the process ended
            assert done.stdout.strip(), done.stderr


async def test_a_failed_temporal_command_exits_1_with_a_message(dev_server):
    target = dev_server.client.service_client.config.target_host
    failing = ("settle", "status", "--period", "2020-01-01", "--temporal", target)
    for done in await at_once(*[failing] * 5):
        assert done.returncode == 1, done.stderr
        assert "Traceback" not in done.stderr and "Fatal Python error" not in done.stderr
        assert "coalition" in done.stderr
