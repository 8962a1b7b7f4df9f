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
    serve.add_argument(
        "--processes",
        type=int,
        default=1,
        metavar="N",
        help="serve from N processes sharing the listen port (SO_REUSEPORT), for more than one "
        "core; without it a port another process holds is refused",
    )
    serve.set_defaults(run=_serve)

    audit = exchange.add_parser("audit", help="the exchange's audit log").add_subparsers(
        dest="audit_command", required=True
    )
    verify = audit.add_parser(
        "verify",
        help="walk the whole hash chain; check closed settlement batches against their committed "
        "roots and every clearing record against its two signed envelopes",
    )
    verify.add_argument("--config", type=pathlib.Path, required=True)
    verify.set_defaults(run=_verify)
    refusals = audit.add_parser(
        "refusals",
        help="requests refused before their signature was proven, per network peer, for a UTC "
        "day: records kept in the log, refusals only counted, rate-limited ones, bytes received",
    )
    refusals.add_argument("--config", type=pathlib.Path, required=True)
    refusals.add_argument("--day", help="YYYY-MM-DD (UTC); default: today")
    refusals.set_defaults(run=_refusals)


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
    from coalition_kernel import telemetry
    from coalition_kernel.processes import serve_processes
    from coalition_kernel.rpc import PortInUse
    from exchange.runtime import ExchangeApp, ExchangeConfig

    config = ExchangeConfig.load(args.config)
    shared = args.processes > 1
    telemetry.use_metrics_port(config.metrics_port)

    async def run(index: int) -> None:
        app = ExchangeApp.from_config(config)
        app.server.reuse_port = shared
        try:
            port = await app.start()
        except PortInUse:
            await app.stop(0)
            app.engine.dispose()
            raise
        logging.getLogger("coalition").info(
            "exchange serving on %s (port %d, process %d of %d)",
            config.listen,
            port,
            index + 1,
            args.processes,
        )
        try:
            await app.server.serve_until_signalled()
        finally:
            await app.stop()
            app.engine.dispose()

    def serve_one(index: int) -> int:
        try:
            asyncio.run(run(index))
        except PortInUse as exc:
            print(f"coalition exchange serve: {exc}", file=sys.stderr)
            return 1
        return 0

    if not shared:
        return serve_one(0)
    try:
        return serve_processes(args.processes, config.listen, serve_one)
    except (PortInUse, ValueError) as exc:
        print(f"coalition exchange serve: {exc}", file=sys.stderr)
        return 1


def _verify(args: argparse.Namespace) -> int:
    from coalition_kernel.db import make_engine, run_in_transaction
    from exchange import audit
    from exchange.batch_audit import audit_clearing
    from exchange.runtime import ExchangeConfig

    engine = make_engine(ExchangeConfig.load(args.config).database_url, pool_size=1)
    problems = run_in_transaction(engine, audit.verify_chain)
    entries = run_in_transaction(engine, audit.count)
    clearing = run_in_transaction(engine, audit_clearing)
    engine.dispose()
    if problems:
        print(f"audit log BROKEN ({entries} entries):")
        for p in problems:
            print(f"  {p}")
    else:
        print(f"audit log intact: {entries} entries, hash chain verified")
    checked = (
        f"{clearing.batches} closed settlement batches against their committed roots, "
        f"{clearing.records} clearing records against their signed envelopes"
    )
    if clearing.problems:
        print(f"clearing BROKEN ({checked}):")
        for p in clearing.problems:
            print(f"  {p}")
    else:
        print(f"clearing intact: {checked}")
    return 1 if problems or clearing.problems else 0


def _refusals(args: argparse.Namespace) -> int:
    from datetime import UTC, date, datetime

    from coalition_kernel.db import make_engine, run_in_transaction
    from exchange import refusals
    from exchange.runtime import ExchangeConfig

    try:
        day = date.fromisoformat(args.day) if args.day else datetime.now(UTC).date()
    except ValueError:
        print(f"coalition: --day {args.day!r} is not a date (YYYY-MM-DD)", file=sys.stderr)
        return 2
    engine = make_engine(ExchangeConfig.load(args.config).database_url, pool_size=1)
    rows = run_in_transaction(engine, lambda conn: refusals.report(conn, day.isoformat()))
    engine.dispose()
    print(f"unproven refusals on {day.isoformat()} (UTC): {len(rows)} peers")
    for r in rows:
        print(
            f"  {r['peer']:<40} logged {r['logged']:>6}  counted only {r['counted_only']:>6}  "
            f"rate-limited {r['rate_limited']:>8}  bytes {r['bytes']:>12}"
        )
    return 0
