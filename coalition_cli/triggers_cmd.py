"""`coalition triggers validate|apply|list|report`: a node's automated marketing."""

from __future__ import annotations

import argparse

from coalition.merchant.v1 import marketing_pb2 as mpb
from coalition_cli.args import readable_file
from coalition_cli.members_cmd import KIND, connection_flags, remote, validate_offline


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    triggers = sub.add_parser("triggers", help="automated marketing triggers").add_subparsers(
        dest="triggers_command", required=True
    )
    validate = triggers.add_parser("validate", help="check a triggers file (offline)")
    validate.add_argument("file", type=readable_file)
    validate.set_defaults(run=lambda a: validate_offline(a.file, "triggers"))
    apply = triggers.add_parser("apply", help="make a triggers file the next version")
    apply.add_argument("file", type=readable_file)
    apply.add_argument("--by", required=True, help="who applies it (kept in the audit trail)")
    apply.set_defaults(run=lambda a: remote(a, _apply, "triggers"))
    listing = triggers.add_parser("list", help="the triggers in force and their history")
    listing.set_defaults(run=lambda a: remote(a, _list, "triggers"))
    report = triggers.add_parser("report", help="a trigger's conversions against its control")
    report.add_argument("trigger_id")
    report.set_defaults(run=lambda a: remote(a, _report, ""))
    for p in (apply, listing, report):
        connection_flags(p)


async def _apply(stub, auth, args, kind) -> int:  # type: ignore[no-untyped-def]
    done = await stub.ApplyDefinitions(
        mpb.ApplyDefinitionsRequest(
            kind=KIND[kind], document=args.file.read_text(), applied_by=args.by
        ),
        metadata=auth,
    )
    print(f"triggers: version {done.version.version} in force ({done.version.digest[:16]})")
    return 0


async def _list(stub, auth, args, kind) -> int:  # type: ignore[no-untyped-def]
    from coalition_cli.members_cmd import _definitions_history

    return int(await _definitions_history(stub, auth, args, kind))


async def _report(stub, auth, args, _what) -> int:  # type: ignore[no-untyped-def]
    r = await stub.GetTriggerReport(
        mpb.GetTriggerReportRequest(trigger_id=args.trigger_id), metadata=auth
    )
    print(f"trigger {r.trigger_id}")
    print(
        f"  treated {r.treated}: {r.treated_converted} bought again "
        f"({r.treated_rate_bps / 100:.1f}%), spent {r.treated_spend_fen / 100:.2f} yuan"
    )
    print(
        f"  control {r.control}: {r.control_converted} bought again "
        f"({r.control_rate_bps / 100:.1f}%), spent {r.control_spend_fen / 100:.2f} yuan"
    )
    print(
        f"  uplift {r.uplift_bps / 100:+.1f} points; incremental spend "
        f"{r.incremental_spend_fen / 100:.2f} yuan; cost {r.cost_points} points + "
        f"{r.cost_coupon_fen / 100:.2f} yuan of coupons"
    )
    return 0
