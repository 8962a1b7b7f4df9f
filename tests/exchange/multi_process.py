"""A coalition whose exchange is real `coalition exchange serve` processes over one database,
with merchant nodes (gRPC servers over their own databases, as in tests/exchange/conftest.py)
in this process, on the real clock (the exchange processes sign with theirs).

`serve_exchanges` starts `count` exchange processes, each `coalition exchange serve` of one
initialised exchange (one config, one key pair, one database), each on its own port
(COALITION_EXCHANGE__LISTEN), or one group of `processes` sharing a port (`--processes N`).
Each process's log (INFO, one `coalition.rpc` line per call) is kept in its own file.
`start_nodes` onboards merchant nodes, each linked to the exchange process the caller picks.

Shared by tests/exchange/test_audit_batching.py and bench/xchange_bench.py.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from coalition_kernel.envelope import OPERATOR_ID, Signer
from coalition_kernel.keys import load_private_key, load_public_key
from exchange.operator_client import OperatorClient
from exchange.runtime import ExchangeConfig, init_exchange
from merchant_node.client import MerchantNodeClient
from merchant_node.server import CoalitionLink, build_server
from tests.conftest import issue_key, open_test_ledger
from tests.exchange.conftest import Node, raw_public
from tests.test_network import free_port

REPO = pathlib.Path(__file__).resolve().parents[2]
# `coalition …` with every log line opening with the PID that wrote it (the CLI's own
# logging.basicConfig then leaves this one in place), so a --processes group's log tells which
# process answered each call. Run with -c: importing this module would import the tests' fixtures.
SERVE_WITH_PIDS = """
import logging, sys
logging.basicConfig(
    level=logging.INFO, format="pid=%(process)d %(asctime)s %(levelname)s %(name)s: %(message)s"
)
from coalition_cli.main import main
sys.exit(main(sys.argv[1:]))
"""


class RealClock:
    """The wall clock, shaped like the tests' FakeClock (callable, and `.now`)."""

    @property
    def now(self) -> datetime:
        return datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def coalition_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coalition_cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def wait_ready(target: str, timeout: float = 60) -> None:
    with grpc.insecure_channel(target) as channel:
        grpc.channel_ready_future(channel).result(timeout=timeout)


@dataclass
class ExchangeGroup:
    directory: pathlib.Path
    config: pathlib.Path
    targets: list[str]  # one per process started (a --processes group: one target)
    processes: list[subprocess.Popen[bytes]]
    logs: list[pathlib.Path]
    public_key: Ed25519PublicKey
    operator_key: Ed25519PrivateKey

    def log(self, index: int) -> str:
        return self.logs[index].read_text(errors="replace")

    def served_by(self, index: int, method: str) -> dict[int, int]:
        """How many calls of `method` (e.g. "Authorize") each PID of process `index` answered
        OK, from its log (the PID is in every line, see SERVE_WITH_PIDS)."""
        counts: dict[int, int] = {}
        needle = f"ExchangeService/{method} "
        for line in self.log(index).splitlines():
            if needle in line and "status=OK" in line and line.startswith("pid="):
                pid = int(line.split()[0][4:])
                counts[pid] = counts.get(pid, 0) + 1
        return counts

    def wait_ready(self) -> None:
        for target in self.targets:
            wait_ready(target)

    def verify(self) -> subprocess.CompletedProcess[str]:
        """`coalition exchange audit verify` over the shared database."""
        return coalition_cli("exchange", "audit", "verify", "--config", str(self.config))


def init_exchange_dir(directory: pathlib.Path, database_url: str) -> pathlib.Path:
    """What `coalition exchange init --dir DIRECTORY/x --db URL` does (in this process: one
    interpreter start less); returns exchange.toml's path."""
    return init_exchange(directory / "x", ExchangeConfig(database_url=database_url))


def attach(config: pathlib.Path, targets: list[str]) -> ExchangeGroup:
    """The keys and addresses of exchange processes someone else started (no process handles,
    no logs), e.g. in another process than the one serving them."""
    return ExchangeGroup(
        config.parent,
        config,
        targets,
        [],
        [],
        load_public_key(config.parent / "exchange_ed25519.pub.pem"),
        load_private_key(config.parent / "operator_ed25519.pem"),
    )


@contextmanager
def serving(
    config: pathlib.Path, ports: list[int], processes: int = 1, tag: str = "", wait: bool = True
) -> Iterator[ExchangeGroup]:
    """One `coalition exchange serve --config CONFIG` per port (COALITION_EXCHANGE__LISTEN), each
    with `--processes processes` when that is more than one; its log (every line opening with
    the PID that wrote it) beside the config; stopped with SIGTERM."""
    started: list[subprocess.Popen[bytes]] = []
    logs: list[pathlib.Path] = []
    try:
        for index, port in enumerate(ports):
            log = config.parent.parent / f"exchange{tag}-{index}.log"
            logs.append(log)
            extra = ["--processes", str(processes)] if processes > 1 else []
            with log.open("wb") as sink:
                started.append(
                    subprocess.Popen(
                        [sys.executable, "-c", SERVE_WITH_PIDS, "exchange", "serve",
                         "--config", str(config), *extra],
                        stdout=subprocess.DEVNULL,
                        stderr=sink,
                        cwd=REPO,
                        env={**os.environ, "COALITION_EXCHANGE__LISTEN": f"127.0.0.1:{port}"},
                    )
                )  # fmt: skip
        group = attach(config, [f"127.0.0.1:{port}" for port in ports])
        group.processes, group.logs = started, logs
        if wait:  # else the caller does (start_nodes does, once its ledgers are open)
            group.wait_ready()
        yield group
    finally:
        for process in started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def serve_exchanges(
    directory: pathlib.Path, database_url: str, count: int = 1, processes: int = 1
) -> Iterator[ExchangeGroup]:
    """A new exchange in DIRECTORY/x over `database_url`, served by `count` processes (or
    groups of `processes`), each on its own port; yielded as soon as they are started (call
    `wait_ready`, or let start_nodes)."""
    directory.mkdir(parents=True, exist_ok=True)
    config = init_exchange_dir(directory, database_url)
    with serving(config, [free_port() for _ in range(count)], processes, wait=False) as group:
        yield group


@dataclass
class Nodes:
    exchange: ExchangeGroup
    operator: OperatorClient
    nodes: dict[str, Node] = field(default_factory=dict)

    def __getitem__(self, merchant_id: str) -> Node:
        return self.nodes[merchant_id]


async def start_nodes(
    exchange: ExchangeGroup,
    new_database: Callable[[str], str],
    links: dict[str, int],
    clock: Callable[[], datetime] | None = None,
) -> AsyncIterator[Nodes]:
    """Merchant nodes on the real clock, onboarded; `links` maps each merchant to the index of
    the exchange target (process) its node calls."""
    clock = clock or RealClock()
    operator = OperatorClient(
        exchange.targets[0], Signer(OPERATOR_ID, exchange.operator_key), exchange.public_key
    )
    coalition = Nodes(exchange, operator)
    servers = []
    try:
        keys = {m: Ed25519PrivateKey.generate() for m in links}
        for merchant_id, index in links.items():  # while the exchange's processes start
            ledger = open_test_ledger(new_database(merchant_id), clock)  # type: ignore[arg-type]
            link = CoalitionLink(
                merchant_id, keys[merchant_id], exchange.public_key, exchange.targets[index], clock
            )
            server, offload = build_server(ledger, "127.0.0.1:0", coalition=link)
            node_target = f"127.0.0.1:{await server.start()}"
            servers.append((server, offload, ledger))
            api_key = issue_key(ledger)
            client = MerchantNodeClient(node_target, api_key=api_key, timeout=30, max_attempts=1)
            coalition.nodes[merchant_id] = Node(
                merchant_id, keys[merchant_id], ledger, node_target, client, api_key=api_key
            )
        await asyncio.to_thread(exchange.wait_ready)
        for merchant_id, node in coalition.nodes.items():
            await operator.onboard(
                merchant_id, merchant_id.title(), raw_public(node.key), node.target, fee_bps=100
            )
        yield coalition
    finally:
        for node in coalition.nodes.values():
            await node.client.close()
        for server, offload, ledger in servers:
            await server.stop(1)
            offload.shutdown()
            ledger.engine.dispose()
        await operator.close()
