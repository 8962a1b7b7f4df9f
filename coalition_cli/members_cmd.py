"""`coalition members segments|tags|churn|show`: what a node knows of its members, and
`coalition members definitions` to apply its segment and tag definitions (MarketingService)."""

from __future__ import annotations

import argparse
import asyncio
import os
import pathlib
import sys

import grpc

from coalition.merchant.v1 import marketing_pb2 as mpb
from coalition.merchant.v1 import marketing_pb2_grpc
from coalition_cli.args import readable_file

KIND = {"segments": mpb.DEFINITIONS_KIND_SEGMENTS, "triggers": mpb.DEFINITIONS_KIND_TRIGGERS}


def connection_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=pathlib.Path, help="the node's node.toml")
    parser.add_argument("--target", help="host:port of the node (default: the config's listen)")
    parser.add_argument(
        "--key", help="an API key with the admin scope (default: $COALITION_API_KEY)"
    )


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    members = sub.add_parser("members", help="members' segments, tags and churn").add_subparsers(
        dest="members_command", required=True
    )
    segments = members.add_parser("segments", help="the segment definitions in force and history")
    segments.set_defaults(run=lambda a: remote(a, _definitions_history, "segments"))
    apply = members.add_parser("apply", help="apply a segments/tags definitions file")
    apply.add_argument("file", type=readable_file)
    apply.add_argument("--by", required=True, help="who applies it (kept in the audit trail)")
    apply.set_defaults(run=lambda a: remote(a, _apply, "segments"))
    validate = members.add_parser("validate", help="check a segments/tags file (offline)")
    validate.add_argument("file", type=readable_file)
    validate.set_defaults(run=lambda a: validate_offline(a.file, "segments"))
    tags = members.add_parser("tags", help="a member's tags with the reasons")
    tags.add_argument("member_id")
    tags.set_defaults(run=lambda a: remote(a, _show, "tags"))
    show = members.add_parser("show", help="a member's facts, segment, tags and churn cause")
    show.add_argument("member_id")
    show.set_defaults(run=lambda a: remote(a, _show, "all"))
    churn = members.add_parser("churn", help="members at risk, most at risk first")
    churn.add_argument("--limit", type=int, default=50)
    churn.set_defaults(run=lambda a: remote(a, _churn, ""))
    for p in (segments, apply, tags, show, churn):
        connection_flags(p)


def validate_offline(file: pathlib.Path, kind: str) -> int:
    from coalition_kernel.errors import CoalitionError
    from merchant_node.marketing import definitions, triggers

    try:
        if kind == "segments":
            parsed = definitions.parse_definitions(file.read_text())
            summary = f"{len(parsed.segments)} segment(s), {len(parsed.tags)} tag(s)"
        else:
            found = triggers.parse_triggers(file.read_text())
            summary = f"{len(found.triggers)} trigger(s)"
    except CoalitionError as err:
        errors = getattr(err, "errors", [err.message])
        print(f"{file}: INVALID, {len(errors)} error(s)")
        for e in errors:
            print(f"  {e}")
        return 1
    print(f"{file}: valid, {summary}")
    return 0


def remote(args: argparse.Namespace, action, what: str) -> int:  # type: ignore[no-untyped-def]
    from coalition_kernel.errors import error_info_of

    target, key = args.target, args.key or os.environ.get("COALITION_API_KEY", "")
    if args.config is not None and not target:
        from merchant_node.config import NodeConfig

        target = NodeConfig.load(args.config).listen
    if not target:
        print("coalition: give --config or --target", file=sys.stderr)
        return 2

    async def go() -> int:
        async with grpc.aio.insecure_channel(target) as channel:
            stub = marketing_pb2_grpc.MarketingServiceStub(channel)
            auth = (("authorization", f"Bearer {key}"),)
            try:
                return int(await action(stub, auth, args, what))
            except grpc.aio.AioRpcError as err:
                info = error_info_of(err)
                reason = info.reason if info else ""
                print(f"coalition: {err.code().name} {reason}: {err.details()}", file=sys.stderr)
                return 1

    return asyncio.run(go())


async def _definitions_history(stub, auth, _args, kind) -> int:  # type: ignore[no-untyped-def]
    history = await stub.ListDefinitionVersions(
        mpb.ListDefinitionVersionsRequest(kind=KIND[kind]), metadata=auth
    )
    if not history.versions:
        print(f"no {kind} definitions applied: the built-in defaults are in force")
        return 0
    current = history.versions[-1]
    print(f"in force: version {current.version} ({current.digest[:16]})")
    print(current.document)
    for v in history.versions:
        when = v.applied_at.ToDatetime()
        print(f"  v{v.version}  applied {when:%Y-%m-%d %H:%M} by {v.applied_by}  {v.digest[:16]}")
    return 0


async def _apply(stub, auth, args, kind) -> int:  # type: ignore[no-untyped-def]
    done = await stub.ApplyDefinitions(
        mpb.ApplyDefinitionsRequest(
            kind=KIND[kind], document=args.file.read_text(), applied_by=args.by
        ),
        metadata=auth,
    )
    print(f"{kind}: version {done.version.version} in force ({done.version.digest[:16]})")
    return 0


async def _show(stub, auth, args, what) -> int:  # type: ignore[no-untyped-def]
    view = await stub.GetMemberSegment(
        mpb.GetMemberSegmentRequest(member_id=args.member_id), metadata=auth
    )
    if what == "all":
        f = view.facts
        print(f"{args.member_id}: segment {view.segment.name} ({view.segment.id})")
        print(f"  because {view.segment.reason}")
        print(f"  RFM {view.r_score}{view.f_score}{view.m_score}")
        print(
            f"  last order {f.recency_days} days ago; {f.orders_365d} orders and "
            f"{f.spend_365d_fen / 100:.2f} yuan over 365 days"
        )
        print(
            f"  points on {f.points_paid_share_bps / 100:.0f}% of orders; campaigns "
            f"{f.campaign_share_bps / 100:.0f}%; top category {f.top_category_recent or '-'} "
            f"(before: {f.top_category_before or '-'})"
        )
        if f.HasField("p_alive_bps"):
            print(
                f"  churn model: P(alive) {f.p_alive_bps / 100:.1f}%, "
                f"{f.expected_orders_90d_milli / 1000:.2f} orders expected in 90 days"
            )
        if view.churn_cause.id:
            print(f"  likely cause: {view.churn_cause.name} — {view.churn_cause.reason}")
    print(f"{args.member_id}: {len(view.tags)} tag(s)")
    for tag in view.tags:
        print(f"  {tag.name} ({tag.id}): {tag.reason}")
    return 0


async def _churn(stub, auth, args, _what) -> int:  # type: ignore[no-untyped-def]
    listed = await stub.ListAtRisk(mpb.ListAtRiskRequest(limit=args.limit), metadata=auth)
    print(
        f"{'member':<24}{'segment':<12}{'cause':<18}{'silent':>8}{'exp.orders':>12}{'yuan/365d':>12}"
    )
    for m in listed.members:
        expected = (
            f"{m.expected_orders_90d_milli / 1000:.2f}"
            if m.HasField("expected_orders_90d_milli")
            else "-"
        )
        print(
            f"{m.member_id:<24}{m.segment:<12}{m.cause:<18}{m.recency_days:>8}{expected:>12}"
            f"{m.spend_365d_fen / 100:>12.2f}"
        )
    return 0
