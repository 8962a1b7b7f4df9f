"""`coalition settle …`: settlement batches — the operator drives them (status, run-now,
approve, reject, resolve, confirm: coalition_cli/settle_ops.py), a merchant checks its share
(verify)."""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import sys

from coalition_cli import settle_ops


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    settle = sub.add_parser("settle", help="settlement batches").add_subparsers(
        dest="settle_command", required=True
    )

    verify = settle.add_parser(
        "verify",
        help="check this node's share of a closed settlement batch against its own books",
        description="Fetches the exchange's signed proof of this merchant's entries in the "
        "period's batch (or reads one saved earlier with --file, without the exchange) and "
        "checks every entry against the batch's commitment root, the entries against this "
        "node's bookings, and the net position against the entries. Exit status 1 when "
        "anything disagrees.",
    )
    verify.add_argument("--config", type=pathlib.Path, required=True, help="the node's node.toml")
    verify.add_argument("--period", required=True, help="the batch's period, YYYY-MM-DD")
    source = verify.add_mutually_exclusive_group()
    source.add_argument("--save", type=pathlib.Path, help="also save the signed proof to FILE")
    source.add_argument(
        "--file", type=pathlib.Path, help="check a proof saved earlier; the exchange is not asked"
    )
    verify.set_defaults(run=_verify)
    settle_ops.register(settle)


def _verify(args: argparse.Namespace) -> int:
    from coalition_kernel.db import make_engine
    from coalition_kernel.errors import CoalitionError
    from merchant_node import settlement_check
    from merchant_node.config import NodeConfig
    from merchant_node.ledger.commands import check_period
    from merchant_node.runtime import coalition_link

    config = NodeConfig.load(args.config)
    link = coalition_link(config)
    if link is None:
        print("coalition settle verify: the node has no exchange in its config", file=sys.stderr)
        return 2
    engine = make_engine(config.database_url, pool_size=1)
    try:
        check_period("--period", args.period)
        if args.file:
            check = settlement_check.load_and_verify(
                args.file, config.merchant_id, args.period, link.exchange_key, engine
            )
        else:
            envelope = asyncio.run(_fetch(config, link, args.period))
            if args.save:
                settlement_check.save_proof(args.save, envelope)
            check = settlement_check.verify_proof(
                envelope, config.merchant_id, args.period, link.exchange_key, engine
            )
    except CoalitionError as err:  # a refusal (no such batch, still open…) or a bad argument
        print(f"coalition settle verify: {err.reason}: {err.message}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    _report(check, config.merchant_id, args.save)
    return 1 if check.problems else 0


async def _fetch(config, link, period: str):  # type: ignore[no-untyped-def]
    from coalition_kernel.envelope import Signer
    from merchant_node.acquirer import ExchangeLink
    from merchant_node.settlement_check import fetch_proof

    exchange = ExchangeLink(
        config.exchange_endpoint, Signer(config.merchant_id, link.private_key), link.exchange_key
    )
    try:
        return await fetch_proof(exchange, period)
    finally:
        await exchange.close()


def _report(check, merchant_id: str, saved: pathlib.Path | None) -> None:  # type: ignore[no-untyped-def]
    if check.batch_id:
        print(
            f"settlement {check.period}: batch {check.batch_id} ({check.status.lower()}), "
            f"{check.record_count} records, root {check.commitment_root.hex()}"
        )
        print(f"{merchant_id}: {check.entries} entries, net {check.net_fen:+d} fen")
    if saved:
        print(f"proof saved to {saved}")
    if not check.problems:
        print("verified: every entry is in the batch, matches this node's books, and nets as paid")
        return
    print(f"FAILED: {len(check.problems)} problem(s)")
    for problem in check.problems:
        print(f"  {problem}")
