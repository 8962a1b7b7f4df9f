"""Histories recorded from earlier versions of the workflows must replay on today's code: a
change that would make a running workflow non-deterministic fails here, before it ships.

Re-record (after an intended, versioned change) with
    COALITION_RECORD_HISTORIES=1 pytest tests/workflows
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from tests.workflows.conftest import HISTORIES, WORKFLOWS
from workflows.settlement.shared import SettlementInput

RECORDED = sorted(HISTORIES.glob("*.json"))


def test_histories_are_recorded():
    assert len(RECORDED) >= 3, "record them: COALITION_RECORD_HISTORIES=1 pytest tests/workflows"


@pytest.mark.parametrize("path", RECORDED, ids=[p.stem for p in RECORDED])
async def test_recorded_history_replays_on_todays_workflows(path):
    history = WorkflowHistory.from_json(path.stem, json.loads(path.read_text()))
    result = await Replayer(workflows=WORKFLOWS).replay_workflow(
        history, raise_on_replay_failure=True
    )
    assert result.replay_failure is None


@workflow.defn(name="SettlementWorkflow", sandboxed=False)
class SettlementSkippingReconciliation:
    """Today's workflow with one step dropped: what a careless edit would ship."""

    @workflow.run
    async def run(self, params: SettlementInput) -> None:
        timeout = timedelta(minutes=1)
        await workflow.execute_activity(
            "close_period", params.period, start_to_close_timeout=timeout
        )
        await workflow.execute_activity("net_batch", "sb", start_to_close_timeout=timeout)


async def test_a_non_deterministic_change_fails_the_replay():
    path = HISTORIES / "settlement-late-approval.json"
    history = WorkflowHistory.from_json(path.stem, json.loads(path.read_text()))
    result = await Replayer(workflows=[SettlementSkippingReconciliation]).replay_workflow(
        history, raise_on_replay_failure=False
    )
    assert result.replay_failure is not None
    assert "nondetermin" in str(result.replay_failure).lower()
