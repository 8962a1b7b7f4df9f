"""Cross-shop redemptions (authorize + capture through the acquirer's POS API), next to baselines.

A real coalition runs in one spawned process, started by the tests' own helper
(tests/exchange/conftest.py `start_coalition`: the exchange and three merchant nodes, each a
gRPC server over its own database, on one controllable clock), so the bench follows whatever the
tests' coalition requires (keys, consent codes). Members of "tea" spend one point each at
"noodles": the load generator (this process, grpc.aio, MerchantNodeClient) keeps N redemptions in
flight, each AuthorizeCrossRedemption then CaptureCrossRedemption on the acquirer's node, with a
one-time consent code the coalition process made beforehand for each (member, time step).

For each database (SQLite files; fresh PostgreSQL databases, dropped afterwards) and each N:

* redemptions/s and p50/p99 of one redemption (authorize + capture) in the measured window;
* gRPC echo: a trivial grpc.aio unary handler in its own process at the same N, back to back;
* Ed25519 verify/s (200-byte message, one thread, this process), once per run.

Then a counting pass of `--count` redemptions at N = 1 gives, per redemption, the RPCs every
server of the coalition answered (the `coalition.rpc` log line each call leaves), and the
database transactions and SQL statements (SQLAlchemy event listeners on every engine: the
exchange's and each node's). The cores column shows where the CPU went: coalition process /
this process / PostgreSQL / the rest of the machine.

Then, over PostgreSQL, the exchange's scaling over processes: one exchange (a new database) is
served by `coalition exchange serve --processes N` (SO_REUSEPORT: the kernel hands each new
connection to one of N processes), for each N of --processes in turn, on one port; an issuer
and --acquirers acquirer nodes (SQLite files, real clock, one process, each node with its own
connection as a node in its own process has) redeem through it, and redemptions/s at each of
--scale-concurrency is printed against the same concentration with 1 process, same run. Each
acquirer's connection is located (the exchange's log, PID on each line, tells which process
answered) and moved until every process holds as many, and each redemption goes to the process
with the fewest in flight: the group is measured with its load spread as many merchants' nodes
would spread it, not SO_REUSEPORT's luck over four connections. "Authorize by process" shows
the split the log saw.

Each cell's window opens after --warmup and once as many calls as are in flight have ended (a
redemption can outlast a fixed warm-up on a loaded machine), and lasts --seconds, stretched up
to 4× until as many calls ended inside it.

    python bench/xchange_bench.py [--seconds 5] [--warmup 1] [--db sqlite|postgresql|both]
        [--concurrency 1,16,64] [--members 1000] [--count 20] [--quick]
        [--processes 1,2|none] [--scale-concurrency 16,64] [--acquirers 4] [--scale-members 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import math
import multiprocessing
import os
import shlex
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from multiprocessing.connection import Connection as Pipe
from typing import Any

import grpc
import psycopg2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine, event
from sqlalchemy.engine import make_url

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [p for p in (REPO, os.path.join(REPO, "bench")) if p not in sys.path]

from node_bench import EchoClient, _table, background_load, echo_process  # noqa: E402

from merchant_node.client import MerchantNodeClient  # noqa: E402

PG_ADMIN_DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"
ISSUER, ACQUIRER = "tea", "noodles"
FUND_FEN = 1_000_000  # 10,000 points a member at 1 point per yuan: never runs dry
POINTS = 1
CLK_TCK = os.sysconf("SC_CLK_TCK")
STEP = 30  # seconds: a consent code is spent once per member per time step (three accepted)


# -- the coalition, in its own process ---------------------------------------------------------


@contextmanager
def databases(db: str, pg_admin_url: str) -> Iterator[Callable[[str], str]]:
    """Like the tests' `new_database`: fresh databases on demand, removed afterwards."""
    made: list[str] = []
    with tempfile.TemporaryDirectory(prefix="xchange_bench_") as tmp:
        admin = make_url(pg_admin_url)

        def connect() -> Any:
            conn = psycopg2.connect(
                **admin.translate_connect_args(username="user", database="dbname")
            )
            conn.autocommit = True
            return conn

        def make(name: str) -> str:
            if db == "sqlite":
                return f"sqlite:///{os.path.join(tmp, name)}.db"
            database = f"xchange_bench_{name}_{uuid.uuid4().hex[:8]}"
            conn = connect()
            try:
                with conn.cursor() as cur:
                    cur.execute(f'CREATE DATABASE "{database}"')
            finally:
                conn.close()
            made.append(database)
            url = admin.set(drivername="postgresql+psycopg2", database=database)
            return url.render_as_string(hide_password=False)

        try:
            yield make
        finally:
            if made:
                conn = connect()
                with conn.cursor() as cur:
                    for database in made:
                        cur.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
                conn.close()


class Counts:
    """RPCs answered, transactions and statements run, by every part of the coalition."""

    def __init__(self) -> None:
        self.rpcs: Counter[str] = Counter()
        self.tx: Counter[str] = Counter()
        self.statements: Counter[str] = Counter()
        self.shapes: Counter[str] = Counter()  # the exchange's statements by kind and table
        self.on = False

    def listen(self, parts: dict[str | None, str]) -> None:
        """Counts on every engine of this process, attributed by database (`parts`: database →
        the exchange or a node), so an engine a part opens for itself (a pool or a committer of
        its own) is counted too."""

        def part(conn: Any) -> str:
            return parts.get(conn.engine.url.database, "other")

        def statement(conn: Any, _cursor: object, sql: str, *_args: object) -> None:
            if self.on:
                name = part(conn)
                self.statements[name] += 1
                if name == "exchange":
                    self.shapes[_shape(sql)] += 1

        def begin(conn: Any) -> None:
            if self.on:
                self.tx[part(conn)] += 1

        event.listen(Engine, "before_cursor_execute", statement)
        event.listen(Engine, "begin", begin)


def _shape(sql: str) -> str:
    """A statement's kind and table: SELECT authorizations, INSERT audit_log, SAVEPOINT, ..."""
    words = sql.split()
    upper = [w.upper() for w in words]
    verb = upper[0] if upper else "?"
    marker = {"SELECT": "FROM", "DELETE": "FROM", "INSERT": "INTO", "UPDATE": "UPDATE"}.get(verb)
    if marker in upper and upper.index(marker) + 1 < len(words):
        return f"{verb} {words[upper.index(marker) + 1].strip('(),;')}"
    return verb


class RpcCounter(logging.Handler):
    def __init__(self, counts: Counts) -> None:
        super().__init__()
        self.counts = counts

    def emit(self, record: logging.LogRecord) -> None:
        if self.counts.on:
            rpc = getattr(record, "rpc", None)
            method = rpc.get("method", "?") if isinstance(rpc, dict) else str(record.args)
            self.counts.rpcs[str(method).rsplit("/", 1)[-1]] += 1


def coalition_process(db: str, pg_admin_url: str, members: int, pipe: Pipe) -> None:
    asyncio.run(_serve_coalition(db, pg_admin_url, members, pipe))


async def _bounded(coros: list[Any], limit: int) -> None:
    gate = asyncio.Semaphore(limit)

    async def one(coro: Any) -> None:
        async with gate:
            await coro

    await asyncio.gather(*(one(c) for c in coros))


async def _serve_coalition(db: str, pg_admin_url: str, members: int, pipe: Pipe) -> None:
    from tests.conftest import FakeClock
    from tests.exchange.conftest import start_coalition

    clock = FakeClock()
    counts = Counts()
    rpc_log = logging.getLogger("coalition.rpc")
    loop = asyncio.get_running_loop()
    member_ids = [f"xb-{k:05d}" for k in range(members)]
    with databases(db, pg_admin_url) as new_database:
        coalition: Any
        async for coalition in start_coalition(new_database, clock):
            issuer, acquirer = coalition[ISSUER], coalition[ACQUIRER]
            counts.listen(
                {
                    coalition.exchange.engine.url.database: "exchange",
                    **{n.ledger.engine.url.database: m for m, n in coalition.nodes.items()},
                }
            )
            began = time.perf_counter()
            await _bounded([issuer.client.enroll_member(m) for m in member_ids], 32)
            await _bounded([issuer.client.earn(m, f"fund-{m}", FUND_FEN) for m in member_ids], 32)
            setup = time.perf_counter() - began
            pipe.send(
                {"target": acquirer.target, "setup_seconds": setup, "pos": pos_kwargs(acquirer)}
            )
            while True:
                command = await loop.run_in_executor(None, pipe.recv)
                if command == "codes":  # a fresh set: three time steps nobody used yet
                    clock.advance(seconds=3 * STEP + 1)
                    codes = []
                    for offset in (-STEP, 0, STEP):
                        at = FakeClock(clock.now + timedelta(seconds=offset))
                        # Bound codes: "up to POINTS of tea's points at noodles".
                        codes += [
                            (m, issuer.wallet_code(m, at, ACQUIRER, POINTS)) for m in member_ids
                        ]
                    pipe.send(codes)
                elif command == "count":
                    for counter in (counts.rpcs, counts.tx, counts.statements, counts.shapes):
                        counter.clear()
                    handler, level = RpcCounter(counts), rpc_log.level
                    rpc_log.addHandler(handler)
                    rpc_log.setLevel(logging.INFO)
                    counts.on = True
                    pipe.send("counting")
                elif command == "counted":
                    counts.on = False
                    rpc_log.removeHandler(handler)
                    rpc_log.setLevel(level)
                    pipe.send(
                        (
                            dict(counts.rpcs),
                            dict(counts.tx),
                            dict(counts.statements),
                            dict(counts.shapes),
                        )
                    )
                else:
                    break


def pos_kwargs(node: Any) -> dict[str, Any]:
    """What a POS client of the acquirer's node needs besides its address (API key, once the
    node asks for one): taken from the tests' own client, so the bench follows them."""
    kwargs = {}
    for name in ("api_key", "key", "credentials_token"):
        value = getattr(node, name, None)
        if isinstance(value, str):
            kwargs[name] = value
    return kwargs


@contextmanager
def spawned(target: Callable[..., None], *args: object) -> Iterator[tuple[int, Pipe, Any]]:
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    proc = ctx.Process(target=target, args=(*args, theirs), daemon=True)
    proc.start()
    try:
        if not ours.poll(600):
            raise RuntimeError(f"{target.__name__} did not start")
        yield proc.pid or 0, ours, ours.recv()
    finally:
        with suppress(OSError):
            ours.send("stop")
        proc.join(60)
        if proc.is_alive():
            proc.kill()
            proc.join()


# -- driving redemptions -----------------------------------------------------------------------


@dataclass
class Codes:
    """One-time consent codes, each used once."""

    pending: list[tuple[str, str]]
    ran_out: bool = False

    def take(self) -> tuple[str, str] | None:
        if not self.pending:
            self.ran_out = True
            return None
        return self.pending.pop()


def _fresh_codes(pipe: Pipe) -> Codes:
    pipe.send("codes")
    codes = pipe.recv()
    codes.reverse()
    return Codes(codes)


async def redeem(client: MerchantNodeClient, codes: Codes, seq: Iterator[int]) -> bool:
    taken = codes.take()
    if taken is None:
        return False
    member, code = taken
    auth = await client.authorize_cross(
        ISSUER, member, f"xo-{next(seq)}", points=POINTS, consent_code=code
    )
    await client.capture_cross(auth.authorization_id)
    return True


@dataclass
class Sample:
    """One cell: N redemptions (or echoes) in flight through a measured window."""

    concurrency: int
    seconds: float
    latencies: list[float]
    errors: Counter[str]
    cores: Cores

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile_ms(self, q: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


@dataclass(frozen=True)
class Cores:
    """Cores busy on average in the window: server processes / this process / a third group of
    processes / the rest of the machine."""

    server: float
    client: float
    third: float
    rest: float

    def __str__(self) -> str:
        return "/".join(f"{c:.2f}" for c in (self.server, self.client, self.third, self.rest))


def _cpu(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:  # ended meanwhile
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime, all threads


def _machine_busy() -> float:
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq = map(int, f.readline().split()[1:8])
    return (user + nice + system + irq + softirq) / CLK_TCK


@dataclass
class ProcMeter:
    """Whose CPU a cell counts: `server` processes, this process, `third` processes."""

    server: list[int]
    third: list[int] = field(default_factory=list)

    def snapshot(self) -> tuple[float, float, float, float, float]:
        times = os.times()
        return (
            time.perf_counter(),
            sum(_cpu(pid) for pid in self.server),
            times.user + times.system,
            sum(_cpu(pid) for pid in self.third),
            _machine_busy(),
        )

    @staticmethod
    def between(
        before: tuple[float, float, float, float, float],
        after: tuple[float, float, float, float, float],
    ) -> Cores:
        wall = after[0] - before[0]
        server, client, third, machine = (
            (a - b) / wall for a, b in zip(after[1:], before[1:], strict=True)
        )
        return Cores(server, client, third, max(machine - server - client - third, 0.0))


async def drive(
    call: Callable[[], Any], concurrency: int, warmup: float, seconds: float, meter: ProcMeter
) -> Sample:
    """`concurrency` workers call back to back. The window opens after `warmup` seconds AND once
    as many calls as workers have ended (under load a call can outlast a fixed warm-up; at most
    60 s more), and lasts `seconds` (see below); calls ending inside it count."""
    start = end = math.inf
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    ended = 0
    workers_left = concurrency

    async def worker() -> None:
        nonlocal ended, workers_left
        try:
            while time.perf_counter() < end:
                began = time.perf_counter()
                try:
                    if await call() is False:
                        return
                except grpc.aio.AioRpcError as exc:
                    error: str | None = exc.code().name
                else:
                    error = None
                now, ended = time.perf_counter(), ended + 1
                if start <= now < end:
                    if error:
                        errors[error] += 1
                    else:
                        latencies.append(now - began)
        finally:
            workers_left -= 1

    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
    await asyncio.sleep(warmup)
    give_up = time.perf_counter() + 60
    while ended < concurrency and workers_left and time.perf_counter() < give_up:
        await asyncio.sleep(0.05)
    before = meter.snapshot()
    start = before[0]
    await asyncio.sleep(seconds)
    # A window too short to see each worker finish once would measure the noise of a few
    # completions: it is stretched, up to 4× `seconds`, until as many calls ended inside it.
    while (
        len(latencies) + sum(errors.values()) < concurrency
        and workers_left
        and time.perf_counter() < start + 4 * seconds
    ):
        await asyncio.sleep(0.05)
    after = meter.snapshot()
    end = after[0]
    cores = ProcMeter.between(before, after)
    await asyncio.gather(*workers)
    return Sample(concurrency, end - start, latencies, errors, cores)


def ed25519_verify_rate(seconds: float) -> float:
    key = Ed25519PrivateKey.generate()
    message = os.urandom(200)
    signature, public = key.sign(message), key.public_key()
    count, deadline = 0, time.perf_counter() + seconds
    began = time.perf_counter()
    while time.perf_counter() < deadline:
        for _ in range(100):
            public.verify(signature, message)
        count += 100
    return count / (time.perf_counter() - began)


@dataclass
class Cell:
    db: str
    concurrency: int
    sample: Sample
    echo: Sample
    ran_out: bool


@dataclass
class PerRedemption:
    db: str
    redemptions: int
    rpcs: dict[str, int]
    tx: dict[str, int]
    statements: dict[str, int]
    shapes: dict[str, int]


@dataclass
class Results:
    cells: list[Cell] = field(default_factory=list)
    counted: list[PerRedemption] = field(default_factory=list)
    setup: dict[str, float] = field(default_factory=dict)
    verify_rate: float = 0.0
    scale: list[ScaleCell] = field(default_factory=list)


async def bench_db(db: str, args: argparse.Namespace, echo: tuple[int, int], out: Results) -> None:
    echo_pid, echo_port = echo
    with spawned(coalition_process, db, args.pg_url, args.members) as (pid, pipe, ready):
        out.setup[db] = ready["setup_seconds"]
        client = MerchantNodeClient(ready["target"], timeout=60, **ready["pos"])
        echo_client = EchoClient(echo_port, 1)
        seq = itertools.count()
        try:
            for conc in args.concurrency:
                codes = await asyncio.to_thread(_fresh_codes, pipe)
                sample = await drive(
                    lambda codes=codes: redeem(client, codes, seq),  # type: ignore[misc]
                    conc,
                    args.warmup,
                    args.seconds,
                    ProcMeter([pid]),  # four databases: PostgreSQL shows in "rest"
                )
                echo_sample = await drive(
                    echo_client, conc, args.warmup, args.seconds, ProcMeter([echo_pid])
                )
                out.cells.append(Cell(db, conc, sample, echo_sample, codes.ran_out))
                print(
                    f"  {db} conc {conc:>3}: {sample.rate:8.1f} redemptions/s "
                    f"(p99 {sample.percentile_ms(0.99) or 0:.0f} ms, errors "
                    f"{sum(sample.errors.values())}, cores {sample.cores}); "
                    f"echo {echo_sample.rate:,.0f}/s",
                    file=sys.stderr,
                    flush=True,
                )
            codes = await asyncio.to_thread(_fresh_codes, pipe)
            await asyncio.to_thread(pipe.send, "count")
            await asyncio.to_thread(pipe.recv)
            done = 0
            for _ in range(args.count):
                done += bool(await redeem(client, codes, seq))
            await asyncio.to_thread(pipe.send, "counted")
            rpcs, tx, statements, shapes = await asyncio.to_thread(pipe.recv)
            out.counted.append(PerRedemption(db, done, rpcs, tx, statements, shapes))
        finally:
            await client.close()
            await echo_client.close()


async def run(args: argparse.Namespace) -> Results:
    out = Results(verify_rate=ed25519_verify_rate(1.0 if args.quick else 3.0))
    with spawned(_echo_entry) as (echo_pid, _pipe, echo_port):
        for db in args.databases:
            print(f"{db}: coalition process, redemption and echo cells", file=sys.stderr)
            await bench_db(db, args, (echo_pid, echo_port), out)
    if "postgresql" in args.databases and args.processes:
        print(
            "postgresql: exchange served by 'coalition exchange serve --processes N'",
            file=sys.stderr,
        )
        await bench_processes(args, out)
    return out


# -- several exchange processes over PostgreSQL (--processes N) ------------------------------


def nodes_process(config: str, target: str, members: int, acquirers: int, pipe: Pipe) -> None:
    asyncio.run(_serve_nodes(config, target, members, acquirers, pipe))


async def _serve_nodes(config: str, target: str, members: int, acquirers: int, pipe: Pipe) -> None:
    """The issuer and `acquirers` acquirer nodes (SQLite files, real clock), linked to the
    exchange at `target`; sends the members' wallet secrets, then waits for "stop"."""
    import pathlib

    from coalition_kernel import rpc

    # In one process gRPC shares one connection among channels to the same address (its global
    # subchannel pool); real nodes are processes of their own, each with its own connection,
    # which SO_REUSEPORT hands to one of the exchange's processes. So each channel here keeps
    # its own connection, as it would in its own process.
    rpc.CHANNEL_OPTIONS = (*rpc.CHANNEL_OPTIONS, ("grpc.use_local_subchannel_pool", 1))
    import merchant_node.server as node_server
    from coalition.exchange.v1 import exchange_pb2_grpc
    from merchant_node.acquirer import ExchangeLink
    from tests.exchange.multi_process import RealClock, attach, start_nodes

    by_merchant: dict[str, Any] = {}

    class MovableLink(ExchangeLink):
        """A node's link to the exchange that can open a new connection on request (which
        SO_REUSEPORT may hand to another of the exchange's processes)."""

        def __init__(self, endpoint: str, signer: Any, *args: Any, **kwargs: Any) -> None:
            super().__init__(endpoint, signer, *args, **kwargs)
            self.endpoint = endpoint
            by_merchant[signer.signer_id] = self

        async def reconnect(self) -> None:
            old, self.channel = self.channel, rpc.insecure_or_secure_channel(self.endpoint)
            self.stub = exchange_pb2_grpc.ExchangeServiceStub(self.channel)
            await old.close()

    node_server.ExchangeLink = MovableLink  # type: ignore[misc]

    member_ids = [f"xp-{k:05d}" for k in range(members)]
    links = {ISSUER: 0, **{f"shop{k}": 0 for k in range(acquirers)}}
    loop = asyncio.get_running_loop()
    with tempfile.TemporaryDirectory(prefix="xchange_bench_nodes_") as tmp:

        def sqlite(name: str) -> str:
            return f"sqlite:///{os.path.join(tmp, name)}.db"

        group = attach(pathlib.Path(config), [target])
        async for nodes in start_nodes(group, sqlite, links, RealClock()):
            issuer = nodes[ISSUER]
            began = time.perf_counter()
            await _bounded([issuer.client.enroll_member(m) for m in member_ids], 32)
            await _bounded([issuer.client.earn(m, f"fund-{m}", FUND_FEN) for m in member_ids], 32)
            pipe.send(
                {
                    "setup_seconds": time.perf_counter() - began,
                    "acquirers": {
                        a: (nodes[a].target, pos_kwargs(nodes[a])) for a in links if a != ISSUER
                    },
                    "secrets": {m: issuer.wallet_secret(m) for m in member_ids},
                }
            )
            while True:
                command = await loop.run_in_executor(None, pipe.recv)
                if not (isinstance(command, tuple) and command[0] == "reconnect"):
                    break
                await by_merchant[command[1]].reconnect()
                pipe.send("reconnected")


class Spends:
    """One-time spends on the real clock: a member's code is spent once per 30-second step, and
    her wallet's codes for this step and the next are accepted. The bench holds the wallet
    secrets, so it makes each code for whichever acquirer takes the spend."""

    def __init__(self, secrets: dict[str, str]) -> None:
        self.secrets = secrets
        self.used: set[tuple[str, int]] = set()
        self.pending: list[tuple[str, int]] = []
        self.ran_out = False

    def refill(self) -> None:
        from coalition_kernel.consent import time_step

        now = time_step(datetime.now(UTC))
        self.pending = [
            (m, step)
            for step in (now + 1, now)  # popped from the end: this step's codes first
            for m in self.secrets
            if (m, step) not in self.used
        ]
        self.ran_out = False

    def code(self, acquirer: str) -> tuple[str, str] | None:
        from coalition_kernel.consent import STEP_SECONDS, spend_code

        if not self.pending:
            self.ran_out = True
            return None
        member, step = self.pending.pop()
        self.used.add((member, step))
        at = datetime.fromtimestamp(step * STEP_SECONDS, UTC)
        return member, spend_code(self.secrets[member], ISSUER, acquirer, POINTS, at)


class Acquirers:
    """The POS clients of every acquirer. Each redemption goes to the exchange process with the
    fewest redemptions in flight, through an acquirer whose connection it holds (see `place`):
    the bench measures the group with its load spread evenly, as many nodes' connections
    would spread it, not the luck of SO_REUSEPORT's hash over a few connections."""

    def __init__(self, targets: dict[str, tuple[str, dict[str, Any]]]) -> None:
        self.clients = {
            a: MerchantNodeClient(t, timeout=60, max_attempts=1, **kw)
            for a, (t, kw) in targets.items()
        }
        self.in_flight = dict.fromkeys(self.clients, 0)
        self.home: dict[str, int] = {}  # acquirer → the exchange PID holding its connection

    def pick(self) -> str:
        if not self.home:
            return min(self.in_flight, key=self.in_flight.__getitem__)
        load: Counter[int] = Counter()
        for acquirer, pid in self.home.items():
            load[pid] += self.in_flight[acquirer]
        pid = min(load, key=load.__getitem__)
        on_it = [a for a, p in self.home.items() if p == pid]
        return min(on_it, key=self.in_flight.__getitem__)

    async def redeem(self, spends: Spends, seq: Iterator[int], acquirer: str = "") -> bool:
        acquirer = acquirer or self.pick()
        taken = spends.code(acquirer)
        if taken is None:
            return False
        member, code = taken
        client = self.clients[acquirer]
        self.in_flight[acquirer] += 1
        try:
            auth = await client.authorize_cross(
                ISSUER, member, f"xp-{next(seq)}", points=POINTS, consent_code=code
            )
            await client.capture_cross(auth.authorization_id)
        finally:
            self.in_flight[acquirer] -= 1
        return True

    async def place(
        self,
        spends: Spends,
        seq: Iterator[int],
        log: Callable[[], str],
        pids: list[int],
        pipe: Pipe,
    ) -> None:
        """After a (re)start: each acquirer redeems once, retrying while its channel reconnects;
        the exchange's log tells which process answered, i.e. holds its connection. Acquirers
        are moved (a new connection) until each process holds as many as the others, ±1."""

        async def locate(acquirer: str) -> int:
            for _ in range(60):
                before = len(log())
                try:
                    await self.redeem(spends, seq, acquirer)
                except grpc.aio.AioRpcError:
                    await asyncio.sleep(0.5)
                    continue
                served = _served(log()[before:])
                if len(served) == 1:
                    return next(iter(served))
            raise RuntimeError(f"{acquirer} could not redeem through the exchange")

        self.home = {}
        for acquirer in self.clients:
            self.home[acquirer] = await locate(acquirer)
        for _ in range(10 * len(self.clients)):
            held = Counter(self.home.values())  # a process holding none: 0
            most = max(pids, key=lambda p: held[p])
            if held[most] - min(held[p] for p in pids) <= 1:
                return
            moving = next(a for a, p in self.home.items() if p == most)
            await asyncio.to_thread(pipe.send, ("reconnect", moving))
            await asyncio.to_thread(pipe.recv)
            self.home[moving] = await locate(moving)

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()


def _group_pids(parent: int, processes: int) -> list[int]:
    """The processes serving: the command itself, or the children it forked (--processes)."""
    if processes == 1:
        return [parent]
    with suppress(OSError), open(f"/proc/{parent}/task/{parent}/children") as f:
        return [int(p) for p in f.read().split()]
    return [parent]


@dataclass
class ScaleCell:
    processes: int
    concurrency: int
    sample: Sample
    served: list[int]  # Authorize calls answered OK in the window, by process
    ran_out: bool


async def bench_processes(args: argparse.Namespace, out: Results) -> None:
    """One exchange (a new PostgreSQL database) served in turn by each N of --processes, on one
    port; the nodes' process is started once, against the first group, and reconnects."""
    import pathlib

    from tests.exchange.multi_process import init_exchange_dir, serving
    from tests.test_network import free_port

    with (
        databases("postgresql", args.pg_url) as new_database,
        tempfile.TemporaryDirectory(prefix="xchange_bench_procs_") as tmp,
    ):
        async with AsyncExitStack() as stack:
            config = init_exchange_dir(pathlib.Path(tmp), new_database("exchange"))
            port, seq = free_port(), itertools.count()
            scale: tuple[int, Pipe, Acquirers, Spends] | None = None
            for n in args.processes:
                with serving(config, [port], n, tag=f"-p{n}") as group:
                    if scale is None:
                        pid, pipe, ready = stack.enter_context(
                            spawned(nodes_process, str(config), group.targets[0],
                                    args.scale_members, args.acquirers)
                        )  # fmt: skip
                        out.setup["processes"] = ready["setup_seconds"]
                        acquirers = Acquirers(ready["acquirers"])
                        stack.push_async_callback(acquirers.close)
                        scale = (pid, pipe, acquirers, Spends(ready["secrets"]))
                    nodes_pid, pipe, acquirers, spends = scale
                    pids = _group_pids(group.processes[0].pid, n)
                    spends.refill()
                    await acquirers.place(spends, seq, partial(group.log, 0), pids, pipe)
                    for conc in args.scale_concurrency:
                        spends.refill()
                        before = len(group.log(0))
                        sample = await drive(
                            lambda a=acquirers, s=spends: a.redeem(s, seq),  # type: ignore[misc]
                            conc,
                            args.warmup,
                            args.seconds,
                            ProcMeter(pids, [nodes_pid]),
                        )
                        counts = _served(group.log(0)[before:])
                        served = [counts.get(pid, 0) for pid in pids]
                        out.scale.append(ScaleCell(n, conc, sample, served, spends.ran_out))
                        print(
                            f"  {n} exchange process(es), conc {conc:>3}: {sample.rate:8.1f} "
                            f"redemptions/s (p99 {sample.percentile_ms(0.99) or 0:.0f} ms, "
                            f"errors {sum(sample.errors.values())}, served {served}, "
                            f"cores {sample.cores})",
                            file=sys.stderr,
                            flush=True,
                        )


def _served(log: str) -> Counter[int]:
    """Authorize calls answered OK, by the PID that wrote the log line."""
    counts: Counter[int] = Counter()
    for line in log.splitlines():
        if "ExchangeService/Authorize " in line and "status=OK" in line and line[:4] == "pid=":
            counts[int(line.split()[0][4:])] += 1
    return counts


def _echo_entry(pipe: Pipe) -> None:
    echo_process(pipe)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _per(counter: dict[str, int], n: int) -> str:
    total = sum(counter.values()) / n if n else 0
    parts = ", ".join(f"{k} {v / n:.1f}" for k, v in sorted(counter.items()) if n)
    return f"{total:.1f} ({parts})"


def report(results: Results) -> str:
    rows = []
    for c in results.cells:
        s, e = c.sample, c.echo
        rows.append(
            [c.db, str(c.concurrency), f"{s.rate:,.1f}", _ms(s.percentile_ms(0.5))]
            + [_ms(s.percentile_ms(0.99)), str(sum(s.errors.values())), f"{e.rate:,.0f}"]
            + [f"{s.rate / e.rate:.4f}" if e.rate else "-", str(s.cores)]
            + ["codes ran out" if c.ran_out else ""]
        )
    lines = [
        "",
        "Cross-shop redemption (authorize + capture via the acquirer's POS API); "
        "/echo = redemptions/s / gRPC echo/s, same N, back to back",
        *_table(
            ["db", "conc", "redeem/s", "p50 ms", "p99 ms", "err", "echo/s", "/echo", "cores", ""],
            rows,
            left=1,
        ),
        "cores: coalition process / this process / PostgreSQL / rest of the machine",
        f"Ed25519 verify (200 B, 1 thread, this process): {results.verify_rate:,.0f}/s",
        "",
        "Per redemption (counting pass at N = 1): RPCs answered by the coalition's servers "
        "(incl. the POS calls), DB transactions, SQL statements, by part",
    ]
    for p in results.counted:
        lines += [
            f"  {p.db} ({p.redemptions} redemptions):",
            f"    RPCs        {_per(p.rpcs, p.redemptions)}",
            f"    txns        {_per(p.tx, p.redemptions)}",
            f"    statements  {_per(p.statements, p.redemptions)}",
            "    the exchange's statements: "
            + ", ".join(
                f"{shape} {n / p.redemptions:.1f}"
                for shape, n in sorted(p.shapes.items(), key=lambda kv: -kv[1])
                if p.redemptions
            ),
        ]
    lines += scale_report(results)
    errors = [
        f"  {c.db} conc {c.concurrency}: {dict(c.sample.errors)}"
        for c in results.cells
        if c.sample.errors
    ]
    errors += [
        f"  {c.processes} exchange process(es) conc {c.concurrency}: {dict(c.sample.errors)}"
        for c in results.scale
        if c.sample.errors
    ]
    if errors:
        lines += ["", "Errors in the measured windows:", *errors]
    return "\n".join(lines)


def scale_report(results: Results) -> list[str]:
    if not results.scale:
        return []
    one = {c.concurrency: c.sample.rate for c in results.scale if c.processes == 1}
    rows = []
    for c in results.scale:
        s, base = c.sample, one.get(c.concurrency)
        total = sum(c.served)
        share = "/".join(f"{100 * k / total:.0f}%" for k in c.served) if total else "-"
        rows.append(
            [f"{c.processes} process{'es' if c.processes > 1 else ''}", str(c.concurrency)]
            + [f"{s.rate:,.1f}", _ms(s.percentile_ms(0.5)), _ms(s.percentile_ms(0.99))]
            + [str(sum(s.errors.values())), f"{s.rate / base:.2f}" if base else "-", share]
            + [str(s.cores), "codes ran out" if c.ran_out else ""]
        )
    return [
        "",
        "Exchange processes over PostgreSQL ('coalition exchange serve --processes N', one port, "
        "SO_REUSEPORT); the issuer and the acquirers are nodes on SQLite in one process, each "
        "node its own connection; each redemption goes to the acquirer with the fewest in "
        f"flight (setup {results.setup.get('processes', 0):.0f} s); /1 proc = redemptions/s / "
        "the same N with 1 process, same run",
        *_table(
            ["exchange", "conc", "redeem/s", "p50 ms", "p99 ms", "err", "/1 proc"]
            + ["Authorize by process", "cores", ""],
            rows,
            left=1,
        ),
        "cores: exchange processes / this process / nodes' process / rest of the machine "
        "(PostgreSQL included)",
    ]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--concurrency", default="1,16,64")
    parser.add_argument("--members", type=int, default=1000, help="3 redemptions each per cell")
    parser.add_argument("--count", type=int, default=20, help="redemptions in the counting pass")
    parser.add_argument("--quick", action="store_true", help="short cells, 16 in flight only")
    parser.add_argument("--pg-url", default=os.environ.get("COALITION_TEST_PG", PG_ADMIN_DEFAULT))
    parser.add_argument(
        "--processes",
        default="1,2",
        help="exchange processes to compare over PostgreSQL ('none': skip that part)",
    )
    parser.add_argument("--scale-concurrency", default="16,64")
    parser.add_argument("--acquirers", type=int, default=4, help="acquirer nodes, scaling part")
    parser.add_argument(
        "--scale-members", type=int, default=1000, help="members, scaling part (2 spends each)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.warmup, args.members, args.count = 2.0, 0.5, 150, 5
        args.scale_members = min(args.scale_members, 600)  # 2 spends each: 4 cells at ~70/s
        if args.concurrency == "1,16,64":
            args.concurrency = "16"
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    args.processes = [] if args.processes == "none" else [int(n) for n in args.processes.split(",")]
    args.scale_concurrency = [int(c) for c in args.scale_concurrency.split(",")]
    args.databases = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    args = parse_args(argv[1:])
    print(f"$ {shlex.join(['python', *argv])}")
    print(
        f"  cells: {args.warmup:g} s warm-up + {args.seconds:g} s each; concurrency "
        f"{args.concurrency}; {args.members} members at {ISSUER}, {POINTS} point each at "
        f"{ACQUIRER}; machine {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f} "
        f"(1-min), {background_load():.2f} cores busy before start",
        flush=True,
    )
    results = asyncio.run(run(args))
    print(report(results))
    print(f"  load after: {os.getloadavg()[0]:.2f} (1-min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
