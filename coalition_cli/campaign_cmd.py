"""`coalition campaign …`: campaigns on Temporal — create from a spec file, list, status, cancel,
extend, report (docs/campaigns.md). Each campaign is the workflow `campaign-<id>`."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from collections.abc import Awaitable, Callable
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from coalition_cli.args import iso_time_with_offset, readable_file
from coalition_cli.connection import add_connection_flags

if TYPE_CHECKING:
    from temporalio.client import Client

    from workflows.campaigns.shared import CampaignReport, CampaignStatus, Roi


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    campaign = sub.add_parser("campaign", help="campaigns: start, watch, change, report")
    commands = campaign.add_subparsers(dest="campaign_command", required=True)

    def command(
        name: str, help: str, run: Callable[..., Awaitable[int]]
    ) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help)
        # create checks the merchants at the exchange when it is configured
        add_connection_flags(parser, temporal=True, exchange="optional" if name == "create" else "")
        parser.set_defaults(run=lambda args: asyncio.run(_connected(args, run)))
        return parser

    create = command("create", "start a campaign from a YAML or JSON spec file", _create)
    create.add_argument("file", type=readable_file)
    create.add_argument("--task-queue", help="default: coalition-campaigns")
    create.add_argument(
        "--skip-registry-check",
        action="store_true",
        help="start without checking the merchants at the exchange (no operator connection)",
    )
    listing = command("list", "the campaigns, newest first", _list)
    listing.add_argument("--running", action="store_true", help="only those not yet ended")
    command("status", "where a campaign stands", _status).add_argument("id")
    cancel = command("cancel", "end a campaign now (switched off at every node)", _cancel)
    cancel.add_argument("id")
    cancel.add_argument("--reason", required=True)
    cancel.add_argument("--by", required=True, help="who cancels (kept in the campaign)")
    extend = command("extend", "move a campaign's end later", _extend)
    extend.add_argument("id")
    extend.add_argument(
        "--until", type=iso_time_with_offset, required=True, help="the new end, ISO with offset"
    )
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
    except BrokenPipeError:
        raise  # the reader of our output went away: coalition_cli.process ends quietly
    except (TemporalError, ValueError, OSError, RuntimeError) as err:
        # An update's refusal says why in its cause (the workflow's validator).
        print(f"coalition campaign: {getattr(err, 'cause', None) or err}", file=sys.stderr)
        return 1


async def _create(client: Client, args: argparse.Namespace) -> int:
    """Checks the spec whole (its shape, the workflow's checks, the rules as the nodes check
    them, its dates, its id, its merchants at the exchange) before anything is started."""
    from temporalio.common import WorkflowIDReusePolicy
    from temporalio.exceptions import WorkflowAlreadyStartedError

    from coalition_cli.campaign_spec import SpecRefused, check_spec_file, unknown_merchants
    from coalition_kernel.db import utc_now
    from workflows.campaigns.shared import TASK_QUEUE, campaign_workflow_id
    from workflows.campaigns.workflows import CampaignWorkflow

    spec, problems = check_spec_file(args.file, utc_now())
    if spec is None:
        raise SpecRefused(args.file, problems)
    workflow_id = campaign_workflow_id(spec.campaign_id)
    problems += await _id_taken(client, spec.campaign_id, workflow_id)
    if args.skip_registry_check:
        print("coalition campaign: merchants not checked at the exchange", file=sys.stderr)
    elif not (args.exchange and args.exchange_key and args.key):
        problems.append(
            "merchants: cannot be checked at the exchange: give the operator's connection "
            "(--exchange, --exchange-key, --key; or COALITION_OPERATOR__EXCHANGE, "
            "…__EXCHANGE_KEY, …__KEY; or operator.toml), or --skip-registry-check"
        )
    else:
        problems += unknown_merchants(spec, await _registered(args))
    if problems:
        raise SpecRefused(args.file, problems)
    try:
        handle = await client.start_workflow(
            CampaignWorkflow.run,
            spec,
            id=workflow_id,
            task_queue=args.task_queue or TASK_QUEUE,
            # A campaign id names one campaign: its pools keep what they granted.
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:  # started by someone else since the check above
        problems = [f"id: campaign {spec.campaign_id!r} exists already ({workflow_id})"]
        raise SpecRefused(args.file, problems) from None
    print(f"started {handle.id}: {spec.starts_at.isoformat()} to {spec.ends_at.isoformat()}")
    return 0


async def _id_taken(client: Client, campaign_id: str, workflow_id: str) -> list[str]:
    from temporalio.service import RPCError, RPCStatusCode

    try:
        taken = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return []
        raise
    state = taken.status.name if taken.status else "unknown"
    return [
        f"id: campaign {campaign_id!r} exists already ({workflow_id}, {state}); an id names "
        "one campaign, whose pools keep what they granted: choose another id"
    ]


async def _registered(args: argparse.Namespace) -> dict[str, bool]:
    """The exchange's registry: merchant id -> active."""
    from coalition.exchange.v1 import exchange_pb2 as xpb
    from coalition_kernel.envelope import OPERATOR_ID, Signer
    from coalition_kernel.keys import load_private_key, load_public_key
    from exchange.operator_client import OperatorClient

    operator = OperatorClient(
        args.exchange,
        Signer(OPERATOR_ID, load_private_key(args.key)),
        load_public_key(args.exchange_key),
    )
    try:
        merchants = await operator.list()
    finally:
        await operator.close()
    return {m.merchant_id: m.status == xpb.MERCHANT_STATUS_ACTIVE for m in merchants}


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

    update = CampaignWorkflow.extend
    status = await _handle(client, args.id).execute_update(update, Extend(args.until, args.by))
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
