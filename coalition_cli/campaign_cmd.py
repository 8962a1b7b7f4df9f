"""`coalition campaign …`: campaigns on Temporal — create from a spec file, list, status, cancel,
extend, report (docs/campaigns.md). Each campaign is the workflow `campaign-<id>`."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import pathlib
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from fractions import Fraction
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from temporalio.client import Client

    from workflows.campaigns.shared import CampaignReport, CampaignSpec, CampaignStatus, Roi


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    campaign = sub.add_parser("campaign", help="campaigns: start, watch, change, report")
    commands = campaign.add_subparsers(dest="campaign_command", required=True)

    def command(
        name: str, help: str, run: Callable[..., Awaitable[int]]
    ) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help)
        parser.add_argument("--temporal", default="127.0.0.1:7233", help="Temporal frontend")
        parser.add_argument("--namespace", default="default")
        parser.set_defaults(run=lambda args: asyncio.run(_connected(args, run)))
        return parser

    create = command("create", "start a campaign from a YAML or JSON spec file", _create)
    create.add_argument("file", type=pathlib.Path)
    create.add_argument("--task-queue", help="default: coalition-campaigns")
    listing = command("list", "the campaigns, newest first", _list)
    listing.add_argument("--running", action="store_true", help="only those not yet ended")
    command("status", "where a campaign stands", _status).add_argument("id")
    cancel = command("cancel", "end a campaign now (switched off at every node)", _cancel)
    cancel.add_argument("id")
    cancel.add_argument("--reason", required=True)
    cancel.add_argument("--by", required=True, help="who cancels (kept in the campaign)")
    extend = command("extend", "move a campaign's end later", _extend)
    extend.add_argument("id")
    extend.add_argument("--until", required=True, help="the new end, ISO with offset")
    extend.add_argument("--by", required=True)
    report = command("report", "the ROI report (so far, while it runs)", _report)
    report.add_argument("id")
    report.add_argument("--json", action="store_true", help="the report as JSON")


async def _connected(args: argparse.Namespace, run: Callable[..., Awaitable[int]]) -> int:
    from temporalio.client import Client
    from temporalio.exceptions import TemporalError

    try:
        client = await Client.connect(args.temporal, namespace=args.namespace)
        return await run(client, args)
    except (TemporalError, ValueError, OSError, RuntimeError) as err:
        # An update's refusal says why in its cause (the workflow's validator).
        print(f"coalition campaign: {getattr(err, 'cause', None) or err}", file=sys.stderr)
        return 1


def load_spec(path: pathlib.Path) -> CampaignSpec:
    """The spec of a file, checked as the workflow and the nodes will check it; ValueError
    lists every problem."""
    from coalition_kernel.errors import CoalitionError
    from merchant_node.rules.program import load_document, parse_program
    from workflows.campaigns.documents import campaign_pools, campaign_rules
    from workflows.campaigns.shared import check_spec, spec_from_document

    try:
        spec = spec_from_document(load_document(path.read_text()))
    except CoalitionError as err:
        raise ValueError(f"{path}: {err.message}") from None
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: {err}") from None
    errors = check_spec(spec)
    try:
        rules = campaign_rules(spec, spec.ends_at)
        parse_program({"rules": rules, "budget_pools": campaign_pools(spec)})
    except CoalitionError as err:
        errors += getattr(err, "errors", [err.message])
    if errors:
        raise ValueError(f"{path}: " + "; ".join(errors))
    return spec


async def _create(client: Client, args: argparse.Namespace) -> int:
    from temporalio.common import WorkflowIDReusePolicy

    from workflows.campaigns.shared import TASK_QUEUE, campaign_workflow_id
    from workflows.campaigns.workflows import CampaignWorkflow

    spec = load_spec(args.file)
    handle = await client.start_workflow(
        CampaignWorkflow.run,
        spec,
        id=campaign_workflow_id(spec.campaign_id),
        task_queue=args.task_queue or TASK_QUEUE,
        # A campaign id names one campaign: its pools keep what they granted.
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
    )
    print(f"started {handle.id}: {spec.starts_at.isoformat()} to {spec.ends_at.isoformat()}")
    return 0


async def _list(client: Client, args: argparse.Namespace) -> int:
    from temporalio.client import WorkflowExecutionStatus

    query = "WorkflowType = 'CampaignWorkflow'"
    if args.running:
        query += " AND ExecutionStatus = 'Running'"
    async for execution in client.list_workflows(query):
        status = execution.status.name if execution.status else "?"
        if execution.status == WorkflowExecutionStatus.CONTINUED_AS_NEW:
            continue  # an earlier run of a long campaign; its latest run is listed
        print(f"{execution.id:<40} {status:<12} started {execution.start_time:%Y-%m-%d %H:%M}")
    return 0


async def _status(client: Client, args: argparse.Namespace) -> int:
    from workflows.campaigns.workflows import CampaignWorkflow

    status = await _handle(client, args.id).query(CampaignWorkflow.status)
    print(render_status(status))
    return 0


async def _cancel(client: Client, args: argparse.Namespace) -> int:
    from workflows.campaigns.shared import Cancel
    from workflows.campaigns.workflows import CampaignWorkflow

    update = CampaignWorkflow.cancel
    status = await _handle(client, args.id).execute_update(update, Cancel(args.reason, args.by))
    print(render_status(status))
    return 0


async def _extend(client: Client, args: argparse.Namespace) -> int:
    from workflows.campaigns.shared import Extend
    from workflows.campaigns.workflows import CampaignWorkflow

    until = datetime.fromisoformat(args.until)
    update = CampaignWorkflow.extend
    status = await _handle(client, args.id).execute_update(update, Extend(until, args.by))
    print(render_status(status))
    return 0


async def _report(client: Client, args: argparse.Namespace) -> int:
    from temporalio.client import WorkflowExecutionStatus

    from workflows.campaigns.workflows import CampaignWorkflow

    handle = _handle(client, args.id)
    described = await handle.describe()
    if described.status == WorkflowExecutionStatus.COMPLETED:
        status: CampaignStatus = await handle.result()
    else:
        status = await handle.query(CampaignWorkflow.status)
    if args.json:
        print(json.dumps(dataclasses.asdict(status), default=str, indent=2, ensure_ascii=False))
    elif status.report is None:
        print(f"{status.campaign_id}: no report yet ({status.state})")
    else:
        print("\n".join(render_report(status.report)))
    return 0


def _handle(client: Client, campaign: str):  # type: ignore[no-untyped-def]
    """The campaign's workflow, without a run id: the latest run of a long campaign."""
    from workflows.campaigns.shared import campaign_workflow_id
    from workflows.campaigns.workflows import CampaignWorkflow

    workflow_id = campaign if campaign.startswith("campaign-") else campaign_workflow_id(campaign)
    return client.get_workflow_handle_for(CampaignWorkflow.run, workflow_id)


def render_status(status: CampaignStatus) -> str:
    lines = [
        f"campaign {status.campaign_id} ({status.owner}): {status.state}"
        + (f", ended: {status.end_reason}" if status.end_reason else ""),
        f"  {status.starts_at.isoformat()} to {status.ends_at.isoformat()}",
        f"  merchants: {', '.join(status.merchants)}; switched on at: "
        f"{', '.join(status.activated) or 'none yet'}",
    ]
    lines += [f"  refused: {why}" for why in status.refused]
    lines += [f"  pool at {p.merchant_id}: {p.granted} of {p.budget} granted" for p in status.pools]
    lines += [f"  extended to {e.new_ends_at.isoformat()} by {e.by}" for e in status.extensions]
    if status.cancellation:
        lines.append(f"  cancelled by {status.cancellation.by}: {status.cancellation.reason}")
    return "\n".join(lines)


def render_report(report: CampaignReport) -> list[str]:
    lines = [
        f"campaign {report.campaign_id}: {report.starts_at:%Y-%m-%d %H:%M} to "
        f"{report.ended_at:%Y-%m-%d %H:%M}; baseline {report.baseline_starts_at:%Y-%m-%d %H:%M} "
        f"to {report.baseline_ends_at:%Y-%m-%d %H:%M}"
    ]
    for roi in [*report.merchants, *([report.total] if report.total else [])]:
        lines += _render_roi(roi)
    return lines


def _render_roi(roi: Roi) -> list[str]:
    f = roi.figures
    lines = [
        f"{f.merchant_id}:",
        f"  points granted {f.points_granted} of {f.budget_points}, "
        f"cost {_yuan(f.points_cost_fen)}",
        f"  participating {f.participating.orders} orders, {f.participating.members} members, "
        f"{_yuan(f.participating.revenue_fen)}; control group {f.control_group.orders} orders, "
        f"{f.control_group.members} members, {_yuan(f.control_group.revenue_fen)}",
        f"  revenue per member: participants {_yuan(roi.participant_revenue_per_member)}, "
        f"control group {_yuan(roi.control_revenue_per_member)}",
        f"  revenue per day: campaign {_yuan(roi.campaign_revenue_per_day)}, "
        f"baseline {_yuan(roi.baseline_revenue_per_day)}",
    ]
    for uplift in (roi.vs_control_group, roi.vs_baseline):
        if uplift is not None:
            roi_text = f"{_percent(uplift.roi_bp)}" if uplift.roi_bp is not None else "n/a"
            lines.append(
                f"  vs {uplift.method}: incremental {_yuan(uplift.incremental_revenue)}, "
                f"ROI {roi_text}"
            )
    return lines


def _yuan(fen: Any) -> str:
    """Exact fen (an int or "p/q") as yuan, rounded half up to the fen for display only."""
    if fen in ("", None):
        return "n/a"
    value = Fraction(fen)
    cents = int((abs(value) + Fraction(1, 2)) // 1) * (1 if value >= 0 else -1)
    sign = "-" if cents < 0 else ""
    return f"¥{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def _percent(bp: int) -> str:
    sign = "-" if bp < 0 else ""
    return f"{sign}{abs(bp) // 100}.{abs(bp) % 100:02d}%"
