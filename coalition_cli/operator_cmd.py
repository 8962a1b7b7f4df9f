"""`coalition operator …`: the coalition operator's commands, signed with the operator key."""

from __future__ import annotations

import argparse
import asyncio
import json
import pathlib
import sys
from datetime import UTC, datetime

from coalition.exchange.v1 import exchange_pb2 as xpb
from coalition_cli.args import iso_time
from coalition_cli.connection import add_connection_flags


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    op = sub.add_parser("operator", help="operate the coalition's registry").add_subparsers(
        dest="operator_command", required=True
    )

    def command(name: str, help_: str) -> argparse.ArgumentParser:
        p = op.add_parser(name, help=help_)
        add_connection_flags(p, exchange="required")  # or from the environment / operator.toml
        return p

    onboard = command(
        "onboard",
        "register a merchant: from its node.toml (--node-config), or, for a node written in "
        "another language, from its public key (--merchant-id --public-key --endpoint "
        "--fen-per-point)",
    )
    node = onboard.add_mutually_exclusive_group(required=True)
    node.add_argument(
        "--node-config",
        type=pathlib.Path,
        help="the node's node.toml: its merchant id, public key file, listen address and point "
        "value are read from it",
    )
    node.add_argument(
        "--public-key", type=pathlib.Path, help="the merchant's Ed25519 public key (PEM)"
    )
    onboard.add_argument("--merchant-id", help="with --public-key: the merchant's id")
    onboard.add_argument("--name", required=True)
    onboard.add_argument(
        "--fen-per-point",
        help="what one point is worth in fen ('1', '5', '1/2'); read from --node-config, where a "
        "different value is refused; required with --public-key",
    )
    onboard.add_argument("--fee-bps", type=int, default=0)
    onboard.add_argument(
        "--endpoint", help="HOST:PORT the exchange calls the node at (default: its listen address)"
    )
    onboard.set_defaults(run=lambda a: _run(a, _onboard))

    command("list", "list merchants").set_defaults(run=lambda a: _run(a, _list))
    for name, active in (("suspend", False), ("resume", True)):
        p = command(name, f"{name} a merchant")
        p.add_argument("merchant_id")
        p.set_defaults(
            run=lambda a, active=active: _run(
                a, lambda c, a: c.set_status(a.merchant_id, active=active)
            )
        )

    terms = command(
        "set-terms",
        "change a merchant's point value, fee, endpoint, net-debit cap or breakage share",
    )
    terms.add_argument("merchant_id")
    terms.add_argument("--fen-per-point", default="")
    terms.add_argument("--fee-bps", type=int, default=-1)
    terms.add_argument("--endpoint", default="")
    cap = terms.add_mutually_exclusive_group()
    cap.add_argument(
        "--net-debit-cap-fen",
        type=int,
        help="refuse authorizations drawing on this issuer past this unsettled net debit "
        "(fen; 0: none until it settles)",
    )
    cap.add_argument(
        "--no-net-debit-cap", action="store_true", help="remove the merchant's net-debit cap"
    )
    terms.add_argument(
        "--breakage-operator-bps",
        type=int,
        metavar="N",
        help="the operator's share of this issuer's breakage (the value of its expired points), "
        "in basis points, rounded down to the fen per settlement period: 0 the issuer keeps it "
        "all (the default), 10000 the operator does",
    )
    terms.set_defaults(run=lambda a: _run(a, _set_terms))

    rotate = command(
        "rotate-key", "register a merchant's new key; its old keys end at --old-valid-until"
    )
    rotate.add_argument("merchant_id")
    rotate.add_argument(
        "--public-key", type=pathlib.Path, required=True, help="new public key (PEM)"
    )
    rotate.add_argument("--old-valid-until", type=iso_time, help="ISO time (default: now)")
    rotate.set_defaults(run=lambda a: _run(a, _rotate))

    affinity = command(
        "affinity",
        "which shops share customers and where cross-shop spending flows, with suggested "
        "partnerships (aggregates of the clearing records; no figure under --min-members)",
    )
    affinity.add_argument(
        "--days", type=int, default=0, metavar="N", help="the window: the last N days (default 30)"
    )
    affinity.add_argument(
        "--min-members",
        type=int,
        default=0,
        metavar="K",
        help="leave out flows of fewer than K distinct members (3-1000; default 5)",
    )
    affinity.add_argument("--json", action="store_true", help="the answer as JSON")
    affinity.set_defaults(run=lambda a: _run(a, _affinity))


def _run(args: argparse.Namespace, action) -> int:  # type: ignore[no-untyped-def]
    from coalition_kernel.errors import CoalitionError

    try:
        return _call(args, action)
    except CoalitionError as err:  # the exchange's refusal, e.g. INVALID_ARGUMENT: say why
        print(f"coalition operator: {err.reason}: {err.message}", file=sys.stderr)
        return 1


def _call(args: argparse.Namespace, action) -> int:  # type: ignore[no-untyped-def]
    from coalition_kernel.envelope import OPERATOR_ID, Signer
    from coalition_kernel.keys import load_private_key, load_public_key
    from exchange.operator_client import OperatorClient

    async def go() -> None:
        client = OperatorClient(
            args.exchange,
            Signer(OPERATOR_ID, load_private_key(args.key)),
            load_public_key(args.exchange_key),
        )
        try:
            result = await action(client, args)
        finally:
            await client.close()
        if isinstance(result, xpb.AffinityReceipt):
            _print_affinity(result, as_json=args.json)
            return
        for merchant in result if isinstance(result, list) else [result]:
            _print(merchant)

    asyncio.run(go())
    return 0


def _print(m: xpb.Merchant) -> None:
    status = xpb.MerchantStatus.Name(m.status).removeprefix("MERCHANT_STATUS_").lower()
    keys = ", ".join(k.key_id for k in m.keys)
    cap = f"cap {m.net_debit_cap_fen} fen" if m.HasField("net_debit_cap_fen") else "no cap"
    print(
        f"{m.merchant_id:<16} {m.display_name:<20} {status:<9} fen/point {m.fen_per_point} "
        f"(v{m.rate_version}) fee {m.fee_bps} bps  {cap}  "
        f"breakage to operator {m.breakage_operator_bps} bps  {m.endpoint}  keys {keys}"
    )


def _print_affinity(receipt: xpb.AffinityReceipt, *, as_json: bool) -> None:
    from coalition_cli import operator_affinity

    if as_json:
        print(json.dumps(operator_affinity.as_dict(receipt), indent=2, ensure_ascii=False))
    else:
        print("\n".join(operator_affinity.render(receipt)))


async def _affinity(client, args):  # type: ignore[no-untyped-def]
    return await client.affinity(days=args.days, min_members=args.min_members)


async def _onboard(client, args):  # type: ignore[no-untyped-def]
    from coalition_cli.onboarding import merchant_terms

    terms = merchant_terms(args)
    return await client.onboard(
        terms.merchant_id,
        args.name,
        terms.public_key,
        terms.endpoint,
        fen_per_point=terms.fen_per_point,
        fee_bps=args.fee_bps,
    )


async def _set_terms(client, args):  # type: ignore[no-untyped-def]
    from exchange.registry import NO_CAP

    return await client.set_terms(
        args.merchant_id,
        fen_per_point=args.fen_per_point,
        fee_bps=args.fee_bps,
        endpoint=args.endpoint,
        net_debit_cap_fen=NO_CAP if args.no_net_debit_cap else args.net_debit_cap_fen,
        breakage_operator_bps=args.breakage_operator_bps,
    )


async def _list(client, _args):  # type: ignore[no-untyped-def]
    return await client.list()


async def _rotate(client, args):  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives import serialization

    from coalition_kernel.keys import load_public_key

    raw = load_public_key(args.public_key).public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    until = args.old_valid_until if args.old_valid_until else datetime.now(UTC)
    return await client.rotate_key(args.merchant_id, raw, old_keys_valid_until=until)
