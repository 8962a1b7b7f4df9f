"""`coalition`: run and operate merchant nodes (and, as they land, the exchange and workflows)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import pathlib
import sys

from merchant_node.config import NodeConfig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="coalition", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    node = sub.add_parser("node", help="a merchant node").add_subparsers(
        dest="node_command", required=True
    )
    init = node.add_parser("init", help="create a node's database, key pair and config")
    init.add_argument(
        "--dir", type=pathlib.Path, required=True, help="directory for node.toml and keys"
    )
    init.add_argument("--merchant-id", required=True)
    init.add_argument("--db", help="database URL (default: SQLite file in --dir)")
    init.add_argument("--listen", default="127.0.0.1:50051")
    init.add_argument(
        "--points-per-yuan", default="1", help="base earn rate, exact: '1', '1.5', '3/2'"
    )
    init.add_argument(
        "--fen-per-point", default="1", help="point value in fen: '1' means 100 points = ¥1"
    )
    init.add_argument("--points-ttl-days", type=int, default=365, help="0: points never expire")

    serve = node.add_parser("serve", help="serve a node's gRPC API until SIGINT/SIGTERM")
    serve.add_argument("--config", type=pathlib.Path, help="node.toml written by `node init`")
    serve.add_argument("--db", help="database URL (instead of --config)")
    serve.add_argument("--listen", help="HOST:PORT (overrides the config)")
    serve.add_argument("--merchant-id", default="local-merchant")
    serve.add_argument("--points-per-yuan", default="1")
    serve.add_argument("--fen-per-point", default="1")

    sub.add_parser("demo", help="start a local node on SQLite, run a short story, stop")

    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("alembic").setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    if args.command == "node" and args.node_command == "init":
        return _node_init(args)
    if args.command == "node" and args.node_command == "serve":
        return _node_serve(args)
    from coalition_cli.demo import run_demo

    return asyncio.run(run_demo())


def _node_init(args: argparse.Namespace) -> int:
    from merchant_node.runtime import init_node

    db = args.db or f"sqlite:///{(args.dir / 'node.db').resolve()}"
    config = NodeConfig(
        merchant_id=args.merchant_id,
        database_url=db,
        listen=args.listen,
        points_per_yuan=args.points_per_yuan,
        fen_per_point=args.fen_per_point,
        points_ttl_days=args.points_ttl_days,
    )
    try:
        path = init_node(args.dir, config)
    except FileExistsError as exc:
        print(f"coalition: {exc}", file=sys.stderr)
        return 1
    print(f"node {args.merchant_id} initialised: {path}")
    print(f"serve it with: coalition node serve --config {path}")
    return 0


def _node_serve(args: argparse.Namespace) -> int:
    if args.config:
        config = NodeConfig.load(args.config)
    elif args.db:
        config = NodeConfig(
            merchant_id=args.merchant_id,
            database_url=args.db,
            points_per_yuan=args.points_per_yuan,
            fen_per_point=args.fen_per_point,
        )
    else:
        print(
            "coalition node serve: give --config FILE, or --db URL --listen HOST:PORT",
            file=sys.stderr,
        )
        return 2
    asyncio.run(_serve(config, args.listen or config.listen))
    return 0


async def _serve(config: NodeConfig, listen: str) -> None:
    from merchant_node.runtime import open_ledger
    from merchant_node.server import build_server

    ledger = open_ledger(config)
    server, offload = build_server(ledger, listen)
    port = await server.start()
    logging.getLogger("coalition").info(
        "merchant node %s serving on %s (port %d), rate version %d",
        config.merchant_id,
        listen,
        port,
        ledger.rate.version,
    )
    try:
        await server.serve_until_signalled()
    finally:
        offload.shutdown()
        ledger.engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
