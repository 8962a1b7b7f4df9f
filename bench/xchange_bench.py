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

    python bench/xchange_bench.py [--seconds 5] [--warmup 1] [--db sqlite|postgresql|both]
        [--concurrency 1,16,64] [--members 1000] [--count 20] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import multiprocessing
import os
import shlex
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import timedelta
from multiprocessing.connection import Connection as Pipe
from typing import Any

import grpc
import psycopg2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import event
from sqlalchemy.engine import make_url

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [p for p in (REPO, os.path.join(REPO, "bench")) if p not in sys.path]

from node_bench import (  # noqa: E402
    EchoClient,
    Meter,
    Recorder,
    Sample,
    _table,
    background_load,
    echo_process,
)

from merchant_node.client import MerchantNodeClient  # noqa: E402

PG_ADMIN_DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"
ISSUER, ACQUIRER = "tea", "noodles"
FUND_FEN = 1_000_000  # 10,000 points a member at 1 point per yuan: never runs dry
POINTS = 1
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

    def listen(self, name: str, engine: Any) -> None:
        def statement(_conn: object, _cursor: object, sql: str, *_args: object) -> None:
            if self.on:
                self.statements[name] += 1
                if name == "exchange":
                    self.shapes[_shape(sql)] += 1

        def begin(*_args: object) -> None:
            if self.on:
                self.tx[name] += 1

        event.listen(engine, "before_cursor_execute", statement)
        event.listen(engine, "begin", begin)


def _shape(sql: str) -> str:
    """A statement's kind and table: SELECT authorizations, INSERT audit_log, SAVEPOINT, ..."""
    words = sql.split()
    upper = [w.upper() for w in words]
    verb = upper[0] if upper else "?"
    marker = {"SELECT": "FROM", "DELETE": "FROM", "INSERT": "INTO", "UPDATE": "UPDATE"}.get(verb)
    if marker in upper and upper.index(marker) + 1 < len(words):
        return f"{verb} {words[upper.index(marker) + 1]}"
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
            counts.listen("exchange", coalition.exchange.engine)
            for node in coalition.nodes.values():
                counts.listen(node.merchant_id, node.ledger.engine)
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
                    counts.rpcs.clear(), counts.tx.clear(), counts.statements.clear()
                    counts.shapes.clear()
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


async def drive(
    call: Callable[[], Any], concurrency: int, warmup: float, seconds: float, meter: Meter
) -> Sample:
    rec = Recorder()
    rec.arm(warmup, seconds)

    async def worker() -> None:
        while rec.running():
            began = time.perf_counter()
            try:
                if await call() is False:
                    return
            except grpc.aio.AioRpcError as exc:
                rec.failed(exc.code().name)
            else:
                rec.done(began)

    async def measure() -> Any:
        from node_bench import Cores

        await asyncio.sleep(max(0.0, rec.start - time.perf_counter()))
        before = meter.snapshot()
        await asyncio.sleep(max(0.0, rec.end - time.perf_counter()))
        return Cores.between(before, meter.snapshot())

    measuring = asyncio.create_task(measure())
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Sample(concurrency, seconds, rec.latencies, rec.errors, await measuring)


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


async def bench_db(db: str, args: argparse.Namespace, echo: tuple[int, int], out: Results) -> None:
    echo_pid, echo_port = echo
    with spawned(coalition_process, db, args.pg_url, args.members) as (pid, pipe, ready):
        out.setup[db] = ready["setup_seconds"]
        pg_database = None  # four databases: PostgreSQL's CPU shows in "rest of the machine"
        client = MerchantNodeClient(ready["target"], timeout=60, **ready["pos"])
        echo_client = EchoClient(echo_port, 1)
        seq = itertools.count()
        try:
            for conc in args.concurrency:
                codes = await asyncio.to_thread(_fresh_codes, pipe)
                sample = await drive(
                    lambda codes=codes: redeem(client, codes, seq),
                    conc,
                    args.warmup,
                    args.seconds,
                    Meter(pid, pg_database),
                )
                echo_sample = await drive(
                    echo_client, conc, args.warmup, args.seconds, Meter(echo_pid)
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
    return out


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
    errors = [f"  {c.db} conc {c.concurrency}: {dict(c.sample.errors)}" for c in results.cells]
    if any(c.sample.errors for c in results.cells):
        lines += ["", "Errors in the measured windows:", *errors]
    return "\n".join(lines)


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
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.warmup, args.members, args.count = 2.0, 0.5, 300, 10
        if args.concurrency == "1,16,64":
            args.concurrency = "16"
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
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
