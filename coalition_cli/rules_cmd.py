"""`coalition rules …`: a merchant's points program — show, validate, apply, simulate."""

from __future__ import annotations

import argparse
import asyncio
import json
import pathlib
import sys
from datetime import datetime

import grpc

from coalition.merchant.v1 import merchant_node_pb2 as pb
from coalition.merchant.v1 import rules_admin_pb2 as rpb
from coalition.merchant.v1 import rules_admin_pb2_grpc
from coalition_cli.args import iso_time, line_item, readable_file


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    rules = sub.add_parser("rules", help="a merchant's points program").add_subparsers(
        dest="rules_command", required=True
    )
    validate = rules.add_parser("validate", help="check a program file (offline)")
    validate.add_argument("file", type=readable_file)
    validate.set_defaults(run=_validate)

    show = rules.add_parser("show", help="the program in force and its history")
    show.add_argument("--config", type=pathlib.Path, required=True)
    show.set_defaults(run=lambda a: _remote(a, _show))

    apply = rules.add_parser("apply", help="make a program file the next version")
    apply.add_argument("--config", type=pathlib.Path, required=True)
    apply.add_argument("file", type=readable_file)
    apply.add_argument("--by", required=True, help="who applies it (kept in the audit trail)")
    apply.add_argument("--effective-from", type=iso_time, help="ISO time (default: now)")
    apply.set_defaults(run=lambda a: _remote(a, _apply))

    simulate = rules.add_parser("simulate", help="what a purchase would earn, rule by rule")
    simulate.add_argument("--config", type=pathlib.Path, required=True)
    simulate.add_argument("--amount-fen", type=int, required=True)
    simulate.add_argument(
        "--item",
        type=line_item,
        action="append",
        default=[],
        help="SKU:CATEGORY:QTY:UNIT_PRICE_FEN (repeatable)",
    )
    simulate.add_argument("--points-paid-fen", type=int, default=0)
    simulate.add_argument("--at", type=iso_time, help="ISO time of the purchase (default: now)")
    simulate.add_argument("--tier", default="")
    simulate.add_argument("--first-purchase", action="store_true")
    simulate.add_argument("--birth-month", type=int, default=0)
    simulate.add_argument(
        "--file", type=readable_file, help="try this program instead of the one in force"
    )
    simulate.set_defaults(run=lambda a: _remote(a, _simulate))


def _validate(args: argparse.Namespace) -> int:
    from coalition_kernel.errors import CoalitionError
    from merchant_node.rules.program import load_program

    try:
        program = load_program(args.file.read_text())
    except CoalitionError as err:
        errors = getattr(err, "errors", [err.message])
        print(f"{args.file}: INVALID, {len(errors)} error(s)")
        for e in errors:
            print(f"  {e}")
        return 1
    print(f"{args.file}: valid, {len(program.rules)} rule(s), digest {program.digest()[:16]}")
    return 0


def _remote(args: argparse.Namespace, action) -> int:  # type: ignore[no-untyped-def]
    from coalition_kernel.errors import error_info_of
    from merchant_node.config import NodeConfig

    config = NodeConfig.load(args.config)

    async def go() -> int:
        async with grpc.aio.insecure_channel(config.listen) as channel:
            stub = rules_admin_pb2_grpc.RulesAdminServiceStub(channel)
            auth = (("authorization", f"Bearer {config.admin_token}"),)
            try:
                return await action(stub, auth, args)
            except grpc.aio.AioRpcError as err:
                info = error_info_of(err)
                print(
                    f"coalition: {err.code().name} {info.reason if info else ''}: {err.details()}",
                    file=sys.stderr,
                )
                return 1

    return asyncio.run(go())


async def _show(stub, auth, _args) -> int:  # type: ignore[no-untyped-def]
    history = await stub.ListProgramVersions(rpb.ListProgramVersionsRequest(), metadata=auth)
    if not history.versions:
        print("no program applied: the node's base rate is in force")
        return 0
    current = await stub.GetProgram(rpb.GetProgramRequest(), metadata=auth)
    print(f"in force: version {current.program.version} ({current.program.digest[:16]})")
    print(json.dumps(json.loads(current.program.document), indent=2, ensure_ascii=False))
    print("\nhistory:")
    for v in history.versions:
        print(
            f"  v{v.version}  from {v.effective_from.ToDatetime():%Y-%m-%d %H:%M}  "
            f"applied {v.applied_at.ToDatetime():%Y-%m-%d %H:%M} by {v.applied_by}  {v.digest[:16]}"
        )
    return 0


async def _apply(stub, auth, args) -> int:  # type: ignore[no-untyped-def]
    req = rpb.ApplyProgramRequest(
        request_id=f"cli-{datetime.now().timestamp()}".replace(".", "-"),
        document=args.file.read_text(),
        applied_by=args.by,
    )
    if args.effective_from:
        req.effective_from.FromDatetime(args.effective_from)
    done = await stub.ApplyProgram(req, metadata=auth)
    print(f"applied as version {done.version} ({done.digest[:16]})")
    return 0


async def _simulate(stub, auth, args) -> int:  # type: ignore[no-untyped-def]
    purchase = pb.EarnRequest(amount_fen=args.amount_fen, points_paid_fen=args.points_paid_fen)
    for item in args.item:
        purchase.line_items.add(
            sku=item.sku,
            category=item.category,
            quantity=item.quantity,
            unit_price_fen=item.unit_price_fen,
        )
    if args.at:
        purchase.occurred_at.FromDatetime(args.at)
    req = rpb.SimulateEarnRequest(
        purchase=purchase,
        tier=args.tier,
        first_purchase=args.first_purchase,
        birth_month=args.birth_month,
        document=args.file.read_text() if args.file else "",
    )
    result = await stub.SimulateEarn(req, metadata=auth)
    for line in result.breakdown:
        print(f"  {line.points:>+8}  {line.rule_id:<24} {line.description}")
    print(
        f"  {result.points:>8}  points"
        + (f", available after {result.pending_days} days" if result.pending_days else "")
    )
    return 0
