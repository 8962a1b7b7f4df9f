"""`coalition node client add|list|revoke`: the merchant's API clients (tills, web shops, tools).

They work on the node's database directly (the node need not run); a revocation reaches a
running node within its key cache interval (2 s). `add` prints the key once: the node keeps
only its digest.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

from merchant_node.config import NodeConfig

SCOPES_HELP = (
    "comma-separated: pos (enroll, earn, redeem, refund, cross-shop redemption), "
    "read (balances, history, profiles), admin (the program, budget pools, campaign reports)"
)


def register(node: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    client = node.add_parser("client", help="API keys of the node's callers").add_subparsers(
        dest="client_command", required=True
    )
    add = client.add_parser("add", help="issue a key for a new client (printed once)")
    add.add_argument("--config", type=pathlib.Path, required=True, help="the node's node.toml")
    add.add_argument("--name", required=True, help="what the client is, e.g. till-1")
    add.add_argument("--scopes", default="pos,read", help=f"{SCOPES_HELP} (default pos,read)")
    for flag, what in (
        ("--max-points-per-earn", "points one Earn may award"),
        ("--max-points-per-redeem", "points one redemption may spend"),
        ("--max-order-fen", "order amount (fen) of one Earn or redemption"),
        ("--calls-per-minute", "calls a minute, per node process"),
    ):
        add.add_argument(flag, type=int, help=f"limit: {what} (default: the node's [auth] value)")
    add.set_defaults(run=_add)

    listing = client.add_parser("list", help="every client, its scopes, limits and state")
    listing.add_argument("--config", type=pathlib.Path, required=True)
    listing.set_defaults(run=_list)

    revoke = client.add_parser("revoke", help="revoke a client's key (by key id or name)")
    revoke.add_argument("--config", type=pathlib.Path, required=True)
    revoke.add_argument("client", help="the client's key id, or its name if only one is active")
    revoke.set_defaults(run=_revoke)


def _engine(config_path: pathlib.Path):  # type: ignore[no-untyped-def]
    from coalition_kernel.db import make_engine
    from merchant_node.ledger.migrate import upgrade

    engine = make_engine(NodeConfig.load(config_path).database_url, pool_size=1)
    upgrade(engine)
    return engine


def _add(args: argparse.Namespace) -> int:
    from coalition_kernel.errors import CoalitionError
    from merchant_node.auth.domain import Limits
    from merchant_node.auth.service import add_client

    limits = Limits(
        max_points_per_earn=args.max_points_per_earn,
        max_points_per_redeem=args.max_points_per_redeem,
        max_order_fen=args.max_order_fen,
        calls_per_minute=args.calls_per_minute,
    )
    engine = _engine(args.config)
    try:
        issued = add_client(engine, args.name, args.scopes, limits)
    except CoalitionError as err:
        print(f"coalition node client add: {err.message}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    c = issued.client
    print(f"client {c.name} added: key id {c.key_id}, scopes {','.join(sorted(c.scopes))}")
    print("its API key, shown once (send it as gRPC metadata 'authorization: Bearer <key>'):")
    print(issued.key)
    return 0


def _limits_text(limits) -> str:  # type: ignore[no-untyped-def]
    shown = [f"{k}={v}" for k, v in limits.__dict__.items() if v is not None]
    return " ".join(shown) or "node defaults"


def _list(args: argparse.Namespace) -> int:
    from merchant_node.auth.service import list_clients

    engine = _engine(args.config)
    try:
        clients = list_clients(engine)
    finally:
        engine.dispose()
    if not clients:
        print("no clients: add one with `coalition node client add`")
    for c in clients:
        state = f"revoked {c.revoked_at:%Y-%m-%d %H:%M}" if c.revoked_at else "active"
        print(
            f"{c.key_id}  {c.name:<20} {','.join(sorted(c.scopes)):<15} {state:<24} "
            f"{_limits_text(c.limits)}"
        )
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from coalition_kernel.errors import CoalitionError
    from merchant_node.auth.service import revoke_client

    engine = _engine(args.config)
    try:
        client = revoke_client(engine, args.client)
    except CoalitionError as err:
        print(f"coalition node client revoke: {err.message}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(
        f"client {client.name} ({client.key_id}) revoked at {client.revoked_at:%Y-%m-%d %H:%M:%S}"
    )
    return 0
