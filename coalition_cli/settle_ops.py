"""`coalition settle status|run-now|approve|reject|resolve|confirm`: the operator's hand on the
settlement workflows, through Temporal (its address and namespace are the operator's access;
in production, Temporal's mTLS and authorizer decide who may send these Updates)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from coalition_cli.args import minutes, time_zone
from coalition_cli.connection import add_connection_flags


def register(settle: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    def temporal(p: argparse.ArgumentParser) -> None:
        add_connection_flags(p, temporal=True)  # or from the environment / operator.toml

    status = settle.add_parser("status", help="a period's settlement, or the latest ones")
    status.add_argument("--period", help="e.g. 2026-11-23; without it, the latest runs")
    status.add_argument("--json", action="store_true")
    temporal(status)
    status.set_defaults(run=_status)

    run_now = settle.add_parser("run-now", help="start a period's settlement now")
    run_now.add_argument("--period", required=True)
    run_now.add_argument("--task-queue", default=None, help="default: coalition-settlement")
    run_now.add_argument("--zone", type=time_zone, default="Asia/Shanghai")
    run_now.add_argument("--cycle", choices=["daily", "weekly", "monthly"], default="daily")
    run_now.add_argument("--grace-minutes", type=minutes, default=5)
    run_now.add_argument("--remind-after-hours", type=float, default=4.0)
    temporal(run_now)
    run_now.set_defaults(run=_run_now)

    for name, what, note_required in (
        ("approve", "approve a reconciled batch for payment", False),
        ("reject", "reject a batch awaiting approval (it becomes disputed)", True),
        ("resolve", "say a disputed batch's nodes corrected their books: reconcile again", True),
        ("confirm", "confirm the paid batch's transfers arrived", False),
    ):
        p = settle.add_parser(name, help=what)
        p.add_argument("--period", required=True)
        p.add_argument("--by", required=True, help="who decides (recorded in the batch history)")
        p.add_argument("--note", required=note_required, default="")
        temporal(p)
        p.set_defaults(run=_decide, update=name)


async def _client(args: argparse.Namespace) -> Any:
    from temporalio.client import Client

    return await Client.connect(args.temporal, namespace=args.namespace)


def _print_status(status: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(asdict(status), indent=2, ensure_ascii=False))
        return
    print(f"period {status.period}: {status.state}  batch {status.batch_id or '-'}")
    if status.decided_by:
        print(f"  decided by {status.decided_by}")
    if status.reminders_sent:
        print(f"  reminders sent: {status.reminders_sent}")
    for m in status.mismatches:
        print(f"  mismatch: {m}")
    for i, t in enumerate(status.transfers, 1):
        print(f"  transfer {i}: {t.payer} -> {t.payee}  {_cny(t.amount_fen)}")
    if status.transfers:
        total = sum(t.amount_fen for t in status.transfers)
        print(f"  {len(status.transfers)} transfer(s), {_cny(total)} in all")
    elif status.batch_id and status.state not in ("closing", "reconciling", "disputed"):
        print("  no transfers: every position nets to zero")


def _cny(fen: int) -> str:
    yuan, rest = divmod(fen, 100)
    return f"{yuan}.{rest:02d} CNY"


def _status(args: argparse.Namespace) -> int:
    from workflows.settlement.shared import SettlementStatus
    from workflows.settlement.workflows import SettlementWorkflow, settlement_workflow_id

    async def run() -> int:
        client = await _client(args)
        if args.period:
            handle = client.get_workflow_handle(settlement_workflow_id(args.period))
            status = await handle.query(SettlementWorkflow.state, result_type=SettlementStatus)
            _print_status(status, args.json)
            return 0
        found = 0
        async for wf in client.list_workflows("WorkflowType = 'SettlementWorkflow'", limit=20):
            found += 1
            print(f"{wf.id}  {wf.status.name if wf.status else '?'}  started {wf.start_time}")
        if not found:
            print("no settlement has run yet")
        return 0

    return _guarded(run)


def _run_now(args: argparse.Namespace) -> int:
    from coalition_kernel.db import utc_now
    from coalition_kernel.errors import CoalitionError
    from settlement.periods import Calendar
    from workflows.settlement.shared import TASK_QUEUE, SettlementInput
    from workflows.settlement.workflows import SettlementWorkflow, settlement_workflow_id

    calendar = Calendar(args.zone, args.cycle, timedelta(minutes=args.grace_minutes))
    try:
        closes = calendar.closes_at(args.period)
    except CoalitionError as exc:
        print(f"coalition: {exc}", file=sys.stderr)
        return 2
    if utc_now() < closes:
        print(
            f"coalition: period {args.period} is not over; it can be settled after "
            f"{closes.astimezone(calendar.tz).isoformat()}",
            file=sys.stderr,
        )
        return 2

    async def run() -> int:
        client = await _client(args)
        handle = await client.start_workflow(
            SettlementWorkflow.run,
            SettlementInput(args.period, int(args.remind_after_hours * 3600)),
            id=settlement_workflow_id(args.period),
            task_queue=args.task_queue or TASK_QUEUE,
        )
        print(f"settlement of {args.period} started: workflow {handle.id}")
        return 0

    return _guarded(run)


def _decide(args: argparse.Namespace) -> int:
    from workflows.settlement.shared import Decision, SettlementStatus
    from workflows.settlement.workflows import settlement_workflow_id

    async def run() -> int:
        client = await _client(args)
        handle = client.get_workflow_handle(settlement_workflow_id(args.period))
        name = {"resolve": "resolve_dispute"}.get(args.update, args.update)
        before = await handle.execute_update(
            name, Decision(args.by, args.note), result_type=SettlementStatus
        )
        print(f"{args.update}: recorded by {args.by}")
        # The update answers at once, with the state it found; the workflow then moves on
        # (an approval: recorded, instructions published, paid). Show where it got to.
        status = await _moved_on(handle, before, SettlementStatus)
        _print_status(status, False)
        if status.state == before.state:
            print(
                f"  (still {status.state} after {MOVE_ON_SECONDS}s: "
                "a settlement worker moves it on; is one running?)"
            )
        return 0

    return _guarded(run)


MOVE_ON_SECONDS = 15


async def _moved_on(handle: Any, before: Any, result_type: type) -> Any:
    """The workflow's state once it has left `before`'s, or after MOVE_ON_SECONDS."""
    from temporalio.client import WorkflowQueryFailedError, WorkflowQueryRejectedError
    from temporalio.service import RPCError

    from workflows.settlement.workflows import SettlementWorkflow

    status = before
    for _ in range(MOVE_ON_SECONDS * 10):
        try:
            status = await handle.query(SettlementWorkflow.state, result_type=result_type)
        except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError):
            return status  # e.g. no worker to answer for a closed workflow: the last we know
        if status.state != before.state and status.state not in ("closing", "paying"):
            break
        await asyncio.sleep(0.1)
    return status


def _guarded(run: Any) -> int:
    """Runs the command; what Temporal refuses is printed as the operator can act on it."""
    from temporalio.client import WorkflowUpdateFailedError
    from temporalio.exceptions import WorkflowAlreadyStartedError
    from temporalio.service import RPCError

    try:
        return int(asyncio.run(run()))
    except WorkflowAlreadyStartedError as exc:
        print(
            f"coalition: that period's settlement was started already ({exc.workflow_id})",
            file=sys.stderr,
        )
        return 1
    except WorkflowUpdateFailedError as exc:
        cause = str(exc.cause) if exc.cause is not None else str(exc)
        print(f"coalition: refused: {cause}", file=sys.stderr)
        return 1
    except RPCError as exc:
        print(f"coalition: Temporal says: {exc.message}", file=sys.stderr)
        return 1
    except RuntimeError as exc:  # cannot connect
        print(f"coalition: {exc}", file=sys.stderr)
        return 1
