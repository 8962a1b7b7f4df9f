"""The crash tests' harness: a real worker process (tests/workflows/crash_worker.py) does one
activity's work and hangs before reporting it; the test kills it there (SIGKILL) and a new
worker process finishes the run. Used by test_worker_crash (settlement), test_expiry_crash,
test_marketing_crash and test_campaign_workflow (campaigns).

The replacement is started once the first worker polls, on standby: it opens everything and
waits for a file before it polls Temporal, so it takes over the moment the first one is dead
(not after a fresh interpreter's imports) and never takes a task before the kill."""

from __future__ import annotations

import asyncio
import os
import pathlib
import subprocess
import sys
import uuid
from collections.abc import Callable
from dataclasses import replace
from types import TracebackType
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory

from merchant_node.config import NodeConfig
from tests.merchant_node.test_cli import coalition

ROOT = pathlib.Path(__file__).resolve().parents[2]


def spawn(
    side: str, config: pathlib.Path, temporal: str, queue: str, *options: str
) -> subprocess.Popen[bytes]:
    """`python -m tests.workflows.crash_worker SIDE CONFIG TEMPORAL QUEUE OPTIONS...`."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.workflows.crash_worker", side, str(config), temporal, queue]
        + list(options),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


class CrashingWorker:
    """The worker of one side (`settlement`, `node`, `campaign`) on `queue` that hangs right
    after `pause` (an activity name, `apply_campaign:activate` for one step), and its
    replacement on standby. `async with` it; every process still alive is killed at the end."""

    def __init__(
        self, side: str, config: pathlib.Path, temporal: str, pause: str, folder: pathlib.Path
    ) -> None:
        self.side, self.config, self.temporal = side, config, temporal
        self.queue = f"crash-{side}-{uuid.uuid4().hex[:10]}"
        self.marker = folder / f"{self.queue}.paused"
        self.ready = folder / f"{self.queue}.ready"
        self.go = folder / f"{self.queue}.go"
        self.first = spawn(
            side, config, temporal, self.queue, "--pause", pause, str(self.marker),
            "--ready", str(self.ready),
        )  # fmt: skip
        self.second: subprocess.Popen[bytes] | None = None

    async def paused(self, seconds: float = 120) -> str:
        """Waits until the first worker hangs after its pause; what it wrote."""
        for _ in range(int(seconds / 0.05)):
            if self.marker.exists():
                return self.marker.read_text()
            assert self.first.poll() is None, "the worker died before its pause"
            assert self.second is None or self.second.poll() is None, "the standby died"
            await asyncio.sleep(0.05)
        raise AssertionError(f"the worker never reached its pause ({self.marker})")

    async def kill_at_pause(self) -> None:
        """SIGKILL at the pause: the work done, its completion never reported; then the
        replacement starts polling."""
        await self.paused()
        self.first.kill()
        self.first.wait()
        self.go.touch()

    async def __aenter__(self) -> CrashingWorker:
        """Once the first worker polls (so that its start is not slowed by the second's), the
        replacement is started on standby."""
        try:
            for _ in range(int(120 / 0.05)):
                if self.ready.exists():
                    break
                assert self.first.poll() is None, "the worker died before it polled"
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the worker never polled")
            self.second = spawn(
                self.side, self.config, self.temporal, self.queue, "--standby", str(self.go)
            )
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for proc in (self.first, self.second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


def init_node(folder: pathlib.Path, url: str, webhook_url: str) -> pathlib.Path:
    """`coalition node init` of the shop tea on `url`, its notifications to `webhook_url` at
    any hour; its node.toml."""
    done = coalition("node", "init", "--dir", str(folder), "--merchant-id", "tea", "--db", url)
    assert done.returncode == 0, done.stderr
    path = folder / "node.toml"
    config = NodeConfig.load(path)
    notifications = replace(config.notifications, webhook_url=webhook_url, quiet_hours="")
    replace(config, notifications=notifications).save(path)
    return path


async def run_through_a_crash(
    client: Client,
    side: str,
    config: pathlib.Path,
    pause: str,
    folder: pathlib.Path,
    workflow: Any,
    arg: Any,
    workflow_id: str,
    seconds: float = 120,
) -> Any:
    """Starts `workflow(arg)` on a CrashingWorker, kills it at `pause`, and returns the result
    the replacement finished with."""
    target = client.service_client.config.target_host
    async with CrashingWorker(side, config, target, pause, folder) as worker:
        handle = await client.start_workflow(workflow, arg, id=workflow_id, task_queue=worker.queue)
        await worker.kill_at_pause()
        return await asyncio.wait_for(handle.result(), seconds)


def attempts(history: WorkflowHistory, picked: Callable[[Any], bool]) -> list[int]:
    """The attempts started of the activities whose scheduled event's attributes `picked`
    chooses: a killed attempt retried shows an attempt 2."""
    scheduled = {
        e.event_id: e.activity_task_scheduled_event_attributes
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    return [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        and picked(scheduled[e.activity_task_started_event_attributes.scheduled_event_id])
    ]
