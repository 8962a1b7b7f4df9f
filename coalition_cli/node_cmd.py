"""`coalition node …`: initialise, serve and audit a merchant node."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import pathlib
import sys

from merchant_node.config import NodeConfig


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
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
    init.add_argument("--exchange", default="", help="the coalition exchange's HOST:PORT")
    init.add_argument("--exchange-key", default="", help="the exchange's public key (PEM file)")
    init.set_defaults(run=_init)

    serve = node.add_parser("serve", help="serve a node's gRPC API until SIGINT/SIGTERM")
    serve.add_argument("--config", type=pathlib.Path, help="node.toml written by `node init`")
    serve.add_argument("--db", help="database URL (instead of --config)")
    serve.add_argument("--listen", help="HOST:PORT (overrides the config)")
    serve.add_argument("--merchant-id", default="local-merchant")
    serve.add_argument("--points-per-yuan", default="1")
    serve.add_argument("--fen-per-point", default="1")
    serve.add_argument(
        "--group-commit",
        type=int,
        metavar="N",
        default=None,
        help="earns and redeems in flight committed together by N committer threads, each "
        "request's answer its own (0: one transaction per request); default 1 on SQLite, "
        "0 on PostgreSQL",
    )
    serve.add_argument(
        "--processes",
        type=int,
        default=1,
        metavar="N",
        help="serve from N processes sharing the listen port (SO_REUSEPORT), for more than one "
        "core; without it a port another process holds is refused",
    )
    serve.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="serve the POS and admin APIs WITHOUT API keys (a laptop demo only; logs a warning; "
        "node.toml: [auth] insecure_no_auth)",
    )
    serve.add_argument(
        "--wallet-key-file",
        type=pathlib.Path,
        help="the wallet key file (default: node.toml's wallet_key_file; with --db and "
        "SQLite, <database file>.wallet.key); created 0600 on a node's first start",
    )
    serve.add_argument(
        "--tls-cert", default="", help="PEM certificate: serve TLS (node.toml: tls_cert_file)"
    )
    serve.add_argument("--tls-key", default="", help="PEM private key of --tls-cert")
    serve.add_argument(
        "--tls-client-ca", default="", help="PEM CA of client certificates: require mTLS"
    )
    serve.set_defaults(run=_serve)

    audit = node.add_parser(
        "audit", help="check the ledger's laws and this node's slice of the exchange's log"
    )
    audit.add_argument("--config", type=pathlib.Path, required=True)
    audit.set_defaults(run=_audit)

    from coalition_cli import node_client_cmd

    node_client_cmd.register(node)


def _init(args: argparse.Namespace) -> int:
    from merchant_node.runtime import init_node

    db = args.db or f"sqlite:///{(args.dir / 'node.db').resolve()}"
    config = NodeConfig(
        merchant_id=args.merchant_id,
        database_url=db,
        listen=args.listen,
        points_per_yuan=args.points_per_yuan,
        fen_per_point=args.fen_per_point,
        points_ttl_days=args.points_ttl_days,
        exchange_endpoint=args.exchange,
        exchange_public_key_file=str(pathlib.Path(args.exchange_key).resolve())
        if args.exchange_key
        else "",
    )
    try:
        path = init_node(args.dir, config)
    except FileExistsError as exc:
        print(f"coalition: {exc}", file=sys.stderr)
        return 1
    print(f"node {args.merchant_id} initialised: {path}")
    print(f"serve it with: coalition node serve --config {path}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    if args.group_commit is not None and not 0 <= args.group_commit <= 64:
        print("coalition node serve: --group-commit takes 0-64 committers", file=sys.stderr)
        return 2
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
    from coalition_kernel import telemetry
    from coalition_kernel.processes import serve_processes
    from coalition_kernel.rpc import PortInUse

    telemetry.use_metrics_port(config.metrics_port)
    listen = args.listen or config.listen
    shared = args.processes > 1

    def serve_one(index: int) -> int:
        try:
            asyncio.run(_run_node(config, listen, args, reuse_port=shared))
        except (PortInUse, ValueError, OSError) as exc:
            print(f"coalition node serve: {exc}", file=sys.stderr)
            return 1
        return 0

    if not shared:
        return serve_one(0)
    try:
        return serve_processes(args.processes, listen, serve_one)
    except (PortInUse, ValueError) as exc:
        print(f"coalition node serve: {exc}", file=sys.stderr)
        return 1


async def _run_node(
    config: NodeConfig, listen: str, args: argparse.Namespace, *, reuse_port: bool = False
) -> None:
    from merchant_node.auth.tls import server_credentials
    from merchant_node.runtime import coalition_link, open_ledger
    from merchant_node.server import build_server

    if args.tls_cert:
        credentials = server_credentials(args.tls_cert, args.tls_key, args.tls_client_ca)
    else:
        credentials = server_credentials(
            config.tls_cert_file, config.tls_key_file, config.client_ca_file
        )
    ledger = open_ledger(
        config, wallet_key_file=_wallet_key_file(config, args), create_wallet_key=True
    )
    link = coalition_link(config)
    if config.admin_token and not config.admin_token.startswith("cpk_"):
        logging.getLogger("coalition").warning(
            "node.toml's admin_token is not an API key (nodes now authenticate every caller by "
            "key): issue one with `coalition node client add --config … --name node-admin "
            "--scopes admin` and put it in admin_token"
        )
    server, offload = build_server(
        ledger,
        listen,
        coalition=link,
        limits=config.auth.limits(),
        insecure_no_auth=args.insecure_no_auth or config.auth.insecure_no_auth,
        credentials=credentials,
        group_commit=args.group_commit,
    )
    server.reuse_port = reuse_port
    from merchant_node.mall.node import mount_for_node

    # The points mall: its gRPC services on this port; its member HTTP API on [mall]
    # http_listen, from one process only (a group started with --processes N serves none).
    mall = mount_for_node(
        server,
        offload,
        ledger,
        config,
        insecure_no_auth=args.insecure_no_auth or config.auth.insecure_no_auth,
        http=not reuse_port,
    )
    try:
        port = await server.start()
        mall_port = await mall.start()
    except BaseException:
        offload.shutdown()
        ledger.engine.dispose()
        raise
    logging.getLogger("coalition").info(
        "merchant node %s serving on %s (port %d), rate version %d%s",
        config.merchant_id,
        listen,
        port,
        ledger.rate.version,
        f", exchange {config.exchange_endpoint}" if link else ", standalone",
    )
    if mall_port:
        logging.getLogger("coalition").info("points mall member API on port %d", mall_port)
    try:
        await server.serve_until_signalled()
    finally:
        offload.shutdown()
        ledger.engine.dispose()


def _wallet_key_file(config: NodeConfig, args: argparse.Namespace) -> pathlib.Path | None:
    from merchant_node.auth.vault import ENV

    if args.wallet_key_file or args.config or os.environ.get(ENV):
        return args.wallet_key_file  # None: the config's own, or the environment's keys
    if config.database_url.startswith("sqlite:///"):
        return pathlib.Path(config.database_url.removeprefix("sqlite:///") + ".wallet.key")
    raise ValueError("a node served with --db needs --wallet-key-file (or $COALITION_WALLET_KEYS)")


def _audit(args: argparse.Namespace) -> int:
    from merchant_node.runtime import open_ledger

    config = NodeConfig.load(args.config)
    ledger = open_ledger(config, pool_size=2)
    problems = ledger.audit()
    print(f"ledger laws: {'hold' if not problems else 'VIOLATED'}")
    for p in problems:
        print(f"  {p}")
    if config.exchange_endpoint:
        report = asyncio.run(_audit_slice(config))
        verdict = "intact" if not report.problems else "BROKEN"
        print(
            f"exchange audit slice: {report.entries} entries, "
            f"{report.signatures_checked} signatures checked, "
            f"chain head {report.head_sequence}: {verdict}"
        )
        problems += report.problems
        for p in report.problems:
            print(f"  {p}")
    return 1 if problems else 0


async def _audit_slice(config: NodeConfig):  # type: ignore[no-untyped-def]
    from coalition_kernel.envelope import Signer
    from merchant_node.acquirer import ExchangeLink
    from merchant_node.audit_slice import fetch_and_verify
    from merchant_node.runtime import coalition_link

    link_config = coalition_link(config)
    assert link_config is not None
    signer = Signer(config.merchant_id, link_config.private_key)
    link = ExchangeLink(config.exchange_endpoint, signer, link_config.exchange_key)
    try:
        return await fetch_and_verify(
            link, link_config.private_key.public_key(), link_config.exchange_key
        )
    finally:
        await link.close()
