"""`coalition`: run and operate merchant nodes, the exchange, settlement and campaigns."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from coalition_cli import (
    campaign_cmd,
    console_cmd,
    exchange_cmd,
    mall_cmd,
    members_cmd,
    node_cmd,
    operator_cmd,
    rules_cmd,
    settle_cmd,
    triggers_cmd,
    worker_cmd,
)
from coalition_cli.process import finish, run_command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="coalition", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    node_cmd.register(sub)
    exchange_cmd.register(sub)
    operator_cmd.register(sub)
    rules_cmd.register(sub)
    settle_cmd.register(sub)
    worker_cmd.register(sub)
    campaign_cmd.register(sub)
    console_cmd.register(sub)
    mall_cmd.register(sub)
    members_cmd.register(sub)
    triggers_cmd.register(sub)
    demo = sub.add_parser(
        "demo", help="a local coalition on SQLite: a short story, then a clean stop"
    )
    demo.add_argument(
        "--keep", action="store_true", help="leave the coalition running until Ctrl-C"
    )
    demo.set_defaults(run=_demo)

    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("alembic").setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    status = run_command(args, args.run)  # a message and a status, never a traceback
    if argv is None:  # the process's own command line: end it with exactly that status
        finish(status)
    return status


def _demo(args: argparse.Namespace) -> int:
    from coalition_cli.demo import run_demo

    return asyncio.run(run_demo(keep=args.keep))


if __name__ == "__main__":
    sys.exit(main())
