"""Campaigns on Temporal: durable timers for start and end, the rules engine's time windows and
budget pools switched on and off at the participating nodes, cancel or extend by Update, an
early stop when the budget is spent, and an ROI report (docs/campaigns.md).

Register with a worker on TASK_QUEUE: `Worker(client, task_queue=TASK_QUEUE,
workflows=WORKFLOWS, activities=campaign_activities(load_nodes(path)))`.
"""

from __future__ import annotations

from temporalio import workflow

# The sandbox imports this package before the workflow's module: the dataclasses must come from
# outside it here too, or their datetimes are the sandbox's and no longer convert.
with workflow.unsafe.imports_passed_through():
    from workflows.campaigns.shared import TASK_QUEUE
from workflows.campaigns.workflows import CampaignWorkflow

WORKFLOWS = [CampaignWorkflow]


def campaign_activities(nodes):  # type: ignore[no-untyped-def]
    """The activities, bound to the nodes the worker may change (merchant id -> NodeAccess)."""
    from workflows.campaigns.activities import CampaignActivities  # grpc: not for the sandbox

    return CampaignActivities(nodes).all()


__all__ = ["TASK_QUEUE", "WORKFLOWS", "CampaignWorkflow", "campaign_activities"]
