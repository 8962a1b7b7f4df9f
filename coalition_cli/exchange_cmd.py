"""`coalition exchange …`: initialise and serve the exchange, verify its audit log."""

from __future__ import annotations

import argparse
import asyncio
import logging
import pathlib
import sys


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    exchange = sub.add_parser("exchange", help="the coalition exchange").add_subparsers(
        dest="exchange_command", required=True
    )
    init = exchange.add_parser(
        "init", help="create the exchange's database, its key pair and the operator's"
    )
    init.add_argument("--dir", type=pathlib.Path, required=True)
    init.add_argument("--db", help="database URL (default: SQLite file in --dir)")
    init.add_argument("--listen", default="127.0.0.1:50050")
    init.set_defaults(run=_init)

    serve = exchange.add_parser("serve", help="serve the exchange until SIGINT/SIGTERM")
    serve.add_argument("--config", type=pathlib.Path, required=True)
    serve.set_defaults(run=_serve)

    audit = exchange.add_parser("audit", help="the exchange's audit log").add_subparsers(
        dest="audit_command", required=True
    )
    verify = audit.add_parser("verify", help="walk the whole hash chain")
    verify.add_argument("--config", type=pathlib.Path, required=True)
    verify.set_defaults(run=_verify)


def _init(args: argparse.Namespace) -> int:
    from exchange.runtime import ExchangeConfig, init_exchange

    db = args.db or f"sqlite:///{(args.dir / 'exchange.db').resolve()}"
    try:
        path = init_exchange(args.dir, ExchangeConfig(database_url=db, listen=args.listen))
    except FileExistsError as exc:
        print(f"coalition: {exc}", file=sys.stderr)
        return 1
    print(f"exchange initialised: {path}")
    print(f"operator key: {args.dir / 'operator_ed25519.pem'} (keep it offline)")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from exchange.runtime import ExchangeApp, ExchangeConfig

    config = ExchangeConfig.load(args.config)

    async def run() -> None:
        app = ExchangeApp.from_config(config)
        port = await app.start()
        logging.getLogger("coalition").info("exchange serving on %s (port %d)", config.listen, port)
        try:
            await app.server.serve_until_signalled()
        finally:
            await app.stop()
            app.engine.dispose()

    asyncio.run(run())
    return 0


def _verify(args: argparse.Namespace) -> int:
    from coalition_kernel.db import make_engine, run_in_transaction
    from exchange import audit
    from exchange.runtime import ExchangeConfig

    engine = make_engine(ExchangeConfig.load(args.config).database_url, pool_size=1)
    problems = run_in_transaction(engine, audit.verify_chain)
    entries = run_in_transaction(engine, audit.count)
    if problems:
        print(f"audit log BROKEN ({entries} entries):")
        for p in problems:
            print(f"  {p}")
        return 1
    print(f"audit log intact: {entries} entries, hash chain verified")
    return 0
