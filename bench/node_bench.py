"""Earn and Redeem through the merchant node's real gRPC server, next to baselines of the same run.

For each database (a SQLite file; a fresh PostgreSQL database, dropped afterwards), operation and
client concurrency N, four cells run back to back, each a short warm-up then a measured window:

* node: the merchant node in its own spawned process (the load generator must not share its GIL),
  wired as production wires it; an asyncio client (MerchantNodeClient) keeps N calls in flight;
* raw DB tx: the minimal writes of one earn (or redeem) as one hand-written DB-API transaction,
  N threads with one connection each, on the same migrated database: psycopg2 on PostgreSQL;
  sqlite3 with the node's pragmas (WAL, synchronous=FULL) and BEGIN IMMEDIATE on SQLite;
* gRPC echo: a trivial grpc.aio unary handler (bytes in, bytes out) in its own process;
* ceiling: the raw tx behind a grpc.aio handler in its own process (the node's number of worker
  threads, one connection each): the transport and the minimal writes with nothing else, the
  most a node in this stack can serve on this machine; node/ceiling is how near the node gets.

Running the baselines next to each node cell keeps the ratios fair when the machine's background
load changes during the run.

Then, on the same database, node earn at the highest concurrency served other ways, each against
the default node of the same run: one process with group commit the other way (the default node
group-commits on SQLite only, merchant_node/server.py: here none on SQLite, 4 committers on
PostgreSQL), and on PostgreSQL N processes sharing one port
(`--processes`, as `coalition node serve --processes N`; the client opens `--process-channels`
connections of its own, since SO_REUSEPORT spreads connections, not calls), printed as a ratio
to 1 process. Last, the statements one earn and one redeem execute, counted in-process with
SQLAlchemy's before_cursor_execute (and commits), one transaction each and through a group
committer. The cores column shows where the CPU went in each window:
server process / this process (the client) / PostgreSQL (the bench database's backends and the
server's own processes) / the rest of the machine (anything else running meanwhile).

    python bench/node_bench.py --seconds 5 [--db sqlite|postgresql|both] [--concurrency 1,16,64]
        [--processes 1,2] [--process-channels 8]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import multiprocessing
import os
import platform
import shlex
import socket
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection as Pipe
from typing import Any

import grpc
import psycopg2
import sqlalchemy
from sqlalchemy.engine import URL, make_url

from coalition.merchant.v1.merchant_node_pb2_grpc import MerchantNodeServiceStub
from coalition_kernel.db import make_engine
from coalition_kernel.group_commit import GroupCommit
from merchant_node.auth.service import add_client
from merchant_node.auth.vault import WalletKeys
from merchant_node.client import MerchantNodeClient
from merchant_node.ledger.commands import Earn, Enroll, Redeem
from merchant_node.ledger.migrate import upgrade
from merchant_node.ledger.service import NodeLedger
from merchant_node.server import build_server

PG_ADMIN_DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"
ECHO_METHOD = "/bench.Echo/Echo"
ECHO_PAYLOAD = b"x" * 120  # about the size of an EarnRequest on the wire
EARN_AMOUNT_FEN = 12_345  # 123 points at the bench's 1 point per yuan
EARN_POINTS = EARN_AMOUNT_FEN // 100
FUND_AMOUNT_FEN = 100_000_000  # 1,000,000 points per redeeming member: never runs dry
REDEEM_POINTS = 1
RATE_VERSION = 1  # the first (and only) rate version configure_rate("1", "1") writes
RULE_VERSION = "base-1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
OPS = ("earn", "redeem")


# -- where the CPU goes ------------------------------------------------------------------------


def _cpu_seconds(stat: str) -> float:
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime, all threads


def _process_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        return _cpu_seconds(f.read())


def _machine_busy() -> float:
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq = map(int, f.readline().split()[1:8])
    return (user + nice + system + irq + softirq) / CLK_TCK


def _postgres_cpu(database: str) -> dict[int, float]:
    """CPU by pid of the PostgreSQL server's own processes and of the backends of `database`
    (backends of other databases, e.g. someone's tests, count as the rest of the machine)."""
    used: dict[int, float] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                stat = f.read()
            if "(postgres)" not in stat:
                continue
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                title = f.read().decode(errors="replace").split()
        except OSError:  # the process ended meanwhile
            continue
        # A backend's title is "postgres: <user> <database> <host>(<port>) <state>".
        is_backend = len(title) >= 4 and title[0] == "postgres:" and "(" in title[3]
        if not is_backend or title[2] == database:
            used[int(entry.name)] = _cpu_seconds(stat)
    return used


@dataclass(frozen=True)
class CpuSnapshot:
    wall: float
    server: float
    client: float
    postgres: dict[int, float]
    machine: float


@dataclass(frozen=True)
class Meter:
    """Whose CPU a cell counts: the server's processes, and a PostgreSQL database, if any."""

    server_pids: tuple[int, ...] = ()
    database: str | None = None

    def snapshot(self) -> CpuSnapshot:
        times = os.times()
        return CpuSnapshot(
            time.perf_counter(),
            sum(_process_cpu(pid) for pid in self.server_pids),
            times.user + times.system,
            _postgres_cpu(self.database) if self.database else {},
            _machine_busy(),
        )


@dataclass(frozen=True)
class Cores:
    """Cores busy on average: server process / this process / PostgreSQL / the rest."""

    server: float
    client: float
    postgres: float
    rest: float

    @classmethod
    def between(cls, before: CpuSnapshot, after: CpuSnapshot) -> Cores:
        wall = after.wall - before.wall
        server = (after.server - before.server) / wall
        client = (after.client - before.client) / wall
        # Processes that ended within the window are lost; those that began count in full.
        pg = after.postgres.items()
        postgres = sum(cpu - before.postgres.get(pid, 0.0) for pid, cpu in pg) / wall
        rest = (after.machine - before.machine) / wall - server - client - postgres
        return cls(server, client, postgres, max(rest, 0.0))

    def __str__(self) -> str:
        return "/".join(f"{c:.2f}" for c in (self.server, self.client, self.postgres, self.rest))


def background_load(seconds: float = 1.0) -> float:
    """Cores busy on the machine while the bench itself is idle."""
    before, started = _machine_busy(), time.perf_counter()
    time.sleep(seconds)
    return (_machine_busy() - before) / (time.perf_counter() - started)


# -- driving load ------------------------------------------------------------------------------


class Recorder:
    """Completions and failures whose end falls inside the measured window (after warm-up)."""

    def __init__(self) -> None:
        self.start = self.end = 0.0
        self.latencies: list[float] = []
        self.errors: Counter[str] = Counter()
        self._lock = threading.Lock()

    def arm(self, warmup: float, seconds: float) -> None:
        self.start = time.perf_counter() + warmup
        self.end = self.start + seconds

    def running(self) -> bool:
        return time.perf_counter() < self.end

    def done(self, began: float) -> None:
        now = time.perf_counter()
        if self.start <= now < self.end:
            self.latencies.append(now - began)

    def failed(self, reason: str) -> None:
        if self.start <= time.perf_counter() < self.end:
            with self._lock:
                self.errors[reason] += 1


@dataclass
class Sample:
    """One cell: N calls in flight for `seconds`."""

    concurrency: int
    seconds: float
    latencies: list[float]
    errors: Counter[str]
    cores: Cores

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile_ms(self, q: float) -> float | None:
        if not self.latencies:
            return None
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def drive_async(
    call: Callable[[], Awaitable[object]], concurrency: int, cfg: Settings, meter: Meter
) -> Sample:
    """N asyncio tasks, each calling `call` back to back until the window closes."""
    rec = Recorder()
    rec.arm(cfg.warmup, cfg.seconds)

    async def worker() -> None:
        while rec.running():
            began = time.perf_counter()
            try:
                await call()
            except grpc.aio.AioRpcError as exc:
                rec.failed(exc.code().name)
            else:
                rec.done(began)

    async def measure() -> Cores:
        await asyncio.sleep(rec.start - time.perf_counter())
        before = meter.snapshot()
        await asyncio.sleep(rec.end - time.perf_counter())
        return Cores.between(before, meter.snapshot())

    measuring = asyncio.create_task(measure())
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Sample(concurrency, cfg.seconds, rec.latencies, rec.errors, await measuring)


def drive_threads(
    open_tx: Callable[[], RawLedger], op: str, concurrency: int, cfg: Settings, meter: Meter
) -> Sample:
    """N threads with one DB connection each, running the raw `op` back to back."""
    rec = Recorder()
    ready = threading.Barrier(concurrency + 1, action=lambda: rec.arm(cfg.warmup, cfg.seconds))
    cannot_open: list[Exception] = []

    def worker() -> None:
        try:
            tx = open_tx()
        except Exception as exc:
            cannot_open.append(exc)
            ready.abort()  # the cell cannot run: release everyone waiting at the barrier
            return
        with tx, suppress(threading.BrokenBarrierError):
            run = getattr(tx, op)
            ready.wait()
            while rec.running():
                began = time.perf_counter()
                try:
                    run()
                except Exception as exc:  # counted and shown in the report, never hidden
                    tx.rollback()
                    rec.failed(type(exc).__name__)
                else:
                    rec.done(began)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    try:
        ready.wait()  # every connection is open: the warm-up starts now
    except threading.BrokenBarrierError:
        for thread in threads:
            thread.join()
        raise RuntimeError(
            f"raw {op} tx: cannot open {concurrency} connections: {cannot_open[0]}"
        ) from cannot_open[0]
    time.sleep(max(0.0, rec.start - time.perf_counter()))
    before = meter.snapshot()
    time.sleep(max(0.0, rec.end - time.perf_counter()))
    cores = Cores.between(before, meter.snapshot())
    for thread in threads:
        thread.join()
    return Sample(concurrency, cfg.seconds, rec.latencies, rec.errors, cores)


# -- servers in their own processes ------------------------------------------------------------


@contextmanager
def server_process(target: Callable[..., None], *args: object) -> Iterator[tuple[int, Any]]:
    """Runs `target(*args, pipe)` in a spawned process; yields (pid, what it sent once it
    listens: its port, or the node's (port, API key))."""
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    proc = ctx.Process(target=target, args=(*args, theirs), daemon=True)
    proc.start()
    theirs.close()  # so that our end sees EOF if the server dies
    try:
        if not ours.poll(120):
            raise RuntimeError(f"{target.__name__} did not start listening within 120 s")
        try:
            port = ours.recv()
        except EOFError:
            proc.join(5)
            raise RuntimeError(f"{target.__name__} exited with code {proc.exitcode}") from None
        assert proc.pid is not None  # set by start()
        yield proc.pid, port
    finally:
        with suppress(OSError):
            ours.send("stop")
        proc.join(30)
        if proc.is_alive():
            proc.kill()
            proc.join()


async def _until_told_to_stop(pipe: Pipe) -> None:
    await asyncio.get_running_loop().run_in_executor(None, pipe.recv)


def node_process(url: str, pool_size: int, workers: int, shape: NodeShape, pipe: Pipe) -> None:
    """The merchant node as production wires it: migrated engine, ledger, build_server (one of
    `shape.processes` sharing `shape.listen`'s port, as `coalition node serve --processes N`)."""

    async def serve() -> None:
        engine = make_engine(url, pool_size=pool_size)
        upgrade(engine)
        ledger = NodeLedger(engine, wallet_keys=WalletKeys.generate())
        ledger.configure_rate("1", "1")
        server, offload = build_server(
            ledger, shape.listen, workers=workers, group_commit=shape.group_commit
        )
        server.reuse_port = shape.processes > 1
        # The POS's API key, as production requires one (its check is part of what is measured).
        pipe.send((await server.start(), add_client(engine, "bench", "pos,read").key))
        await _until_told_to_stop(pipe)
        await server.stop(1)
        offload.shutdown()
        engine.dispose()

    asyncio.run(serve())


@dataclass(frozen=True)
class NodeShape:
    """How the node under test is served: its address, how many processes share it, and
    whether its earns and redeems are group-committed (the default)."""

    listen: str = "127.0.0.1:0"
    processes: int = 1
    group_commit: int | None = None  # committers; None: the server's default for the database

    def label(self) -> str:
        text = f"{self.processes} process{'es' if self.processes > 1 else ''}"
        if self.group_commit is None:
            return text
        return text + (f", {self.group_commit} committer(s)" if self.group_commit else ", no GC")


def echo_process(pipe: Pipe) -> None:
    """A trivial grpc.aio unary handler: the floor of one gRPC round trip on this machine."""

    async def echo(request: bytes, _context: grpc.aio.ServicerContext) -> bytes:
        return request

    service, method = ECHO_METHOD.strip("/").split("/")
    asyncio.run(_serve_bytes(service, {method: echo}, pipe))


async def _serve_bytes(service: str, methods: dict[str, Any], pipe: Pipe) -> None:
    """A grpc.aio server of bytes-in, bytes-out unary methods on a free port: sends the port,
    serves until told to stop."""
    handler = grpc.method_handlers_generic_handler(
        service, {name: grpc.unary_unary_rpc_method_handler(fn) for name, fn in methods.items()}
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    pipe.send(port)
    await _until_told_to_stop(pipe)
    await server.stop(1)


CEILING_METHODS = {"earn": "/bench.Ceiling/Earn", "redeem": "/bench.Ceiling/Redeem"}


def ceiling_process(
    url: str, earners: list[str], redeemers: list[str], workers: int, pipe: Pipe
) -> None:
    """The raw tx behind a grpc.aio handler: each call runs RawLedger's earn or redeem on a pool
    of `workers` threads (the node's offload), one connection each. Nothing a node does beyond
    the transport and the minimal writes: the most any node in this stack can serve here."""
    parsed = make_url(url)
    raw = (
        pg_raw(parsed)
        if parsed.drivername.startswith("postgresql")
        else sqlite_raw(str(parsed.database))
    )
    seq = itertools.count(10**9)  # order ids apart from the bench process's raw cells
    local = threading.local()
    opened: list[RawLedger] = []
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ceiling")

    def run(op: str) -> None:
        ledger = getattr(local, "ledger", None)
        if ledger is None:
            ledger = local.ledger = RawLedger(raw, earners, redeemers, seq)
            opened.append(ledger)
        try:
            getattr(ledger, op)()
        except Exception:
            ledger.rollback()
            raise

    def handler(op: str) -> Any:
        async def call(_request: bytes, _context: grpc.aio.ServicerContext) -> bytes:
            await asyncio.get_running_loop().run_in_executor(pool, run, op)
            return b"ok"

        return call

    methods = {"Earn": handler("earn"), "Redeem": handler("redeem")}
    asyncio.run(_serve_bytes("bench.Ceiling", methods, pipe))
    pool.shutdown(wait=True)
    for ledger in opened:
        ledger.__exit__()


# -- the raw DB-API baseline -------------------------------------------------------------------


@dataclass(frozen=True)
class RawDb:
    """How to open a raw DB-API connection to the bench database, and its SQL dialect."""

    label: str
    connect: Callable[[], Any]
    begin: str | None  # psycopg2 begins implicitly
    timestamp: Callable[[datetime], object]
    database: str | None  # the PostgreSQL database, for CPU accounting

    def sql(self, text: str) -> str:
        if self.label == "sqlite3":  # qmark parameters; BEGIN IMMEDIATE locks instead
            return text.replace("%s", "?").replace(" FOR UPDATE", "")
        return text


def pg_raw(url: URL) -> RawDb:
    args = url.translate_connect_args(username="user", database="dbname")
    return RawDb("psycopg2", lambda: psycopg2.connect(**args), None, lambda ts: ts, url.database)


def sqlite_raw(path: str) -> RawDb:
    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON"):
            conn.execute(f"PRAGMA {pragma}")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def timestamp(ts: datetime) -> str:  # SQLAlchemy stores SQLite datetimes as naive UTC text
        return ts.strftime("%Y-%m-%d %H:%M:%S.%f")

    return RawDb("sqlite3", connect, "BEGIN IMMEDIATE", timestamp, None)


# A stored answer about as large as the node's JSON EarnResult.
_RAW_RESPONSE = b'{"available_points": 0, "breakdown": [], "expires_at": null}' * 4
_RAW_BREAKDOWN = '[{"rule_id": "base_rate", "description": "1 point(s) per yuan", "points": 123}]'
_INSERT_TXN = """INSERT INTO journal_transactions
    (kind, member_pk, order_id, request_id, created_at, rate_version, rule_version)
    VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id"""
_INSERT_LINES = """INSERT INTO journal_lines
    (txn_id, account, member_pk, lot_id, points, rate_version, rule_version)
    VALUES (%s, %s, %s, %s, %s, %s, %s), (%s, %s, %s, %s, %s, %s, %s)"""
_INSERT_IDEMPOTENCY = """INSERT INTO idempotency
    (request_id, operation, request_hash, outcome, response, created_at)
    VALUES (%s, %s, %s, 'ok', %s, %s)"""


class RawLedger:
    """The node's writes of one earn or redeem, hand-written: one round trip per statement, no
    reads beyond the member lock (and, for redeem, choosing the lot to spend)."""

    def __init__(self, db: RawDb, earners: list[str], redeemers: list[str], seq: Iterator[int]):
        self.db, self.earners, self.redeemers, self.seq = db, earners, redeemers, seq
        self.conn = db.connect()
        self.cur = self.conn.cursor()
        sql = db.sql
        self.lock_member = sql("SELECT id, debt FROM members WHERE member_id = %s FOR UPDATE")
        self.insert_lot = sql(
            """INSERT INTO lots (member_pk, points, remaining, earned_at, expires_at,
                source_order_id, rule_id, rule_version, rate_version)
            VALUES (%s, %s, %s, %s, %s, %s, 'base_rate', %s, %s) RETURNING id"""
        )
        self.insert_earning = sql(
            """INSERT INTO earnings (order_id, member_pk, amount_fen, points, lot_id,
                refunded_fen, clawed_back, channel, breakdown, occurred_at, created_at,
                rate_version, rule_version)
            VALUES (%s, %s, %s, %s, %s, 0, 0, 'POS', %s, %s, %s, %s, %s)"""
        )
        self.update_member = sql(
            "UPDATE members SET lifetime_earned = lifetime_earned + %s WHERE id = %s"
        )
        self.pick_lot = sql(
            """SELECT id FROM lots WHERE member_pk = %s AND remaining >= %s
            ORDER BY expires_at, id LIMIT 1"""
        )
        self.take_from_lot = sql("UPDATE lots SET remaining = remaining - %s WHERE id = %s")
        self.insert_redemption = sql(
            """INSERT INTO redemptions (order_id, member_pk, points, value_fen, returned,
                created_at, rate_version)
            VALUES (%s, %s, %s, %s, 0, %s, %s) RETURNING id"""
        )
        self.insert_allocation = sql(
            """INSERT INTO allocations (redemption_id, lot_id, points, returned)
            VALUES (%s, %s, %s, 0)"""
        )
        self.insert_txn = sql(_INSERT_TXN)
        self.insert_lines = sql(_INSERT_LINES)
        self.insert_idempotency = sql(_INSERT_IDEMPOTENCY)

    def __enter__(self) -> RawLedger:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.conn.close()

    def rollback(self) -> None:
        with suppress(Exception):
            self.conn.rollback()

    def _one(self, statement: str, params: tuple[object, ...]) -> Any:
        self.cur.execute(statement, params)
        return self.cur.fetchone()[0]

    def _begin(self) -> tuple[str, object]:
        if self.db.begin:
            self.cur.execute(self.db.begin)
        request_id = str(uuid.uuid4())
        return request_id, self.db.timestamp(datetime.now(UTC))

    def _journal(
        self, head: tuple[object, ...], debit: tuple[object, ...], credit: tuple[object, ...]
    ) -> None:
        """One journal transaction (kind, member, order, request, time) and its two lines."""
        txn = self._one(self.insert_txn, (*head, RATE_VERSION, RULE_VERSION))
        versions = (RATE_VERSION, RULE_VERSION)
        self.cur.execute(self.insert_lines, (txn, *debit, *versions, txn, *credit, *versions))

    def _finish(self, operation: str, request_id: str, now: object) -> None:
        digest = hashlib.sha256(request_id.encode()).hexdigest()
        self.cur.execute(
            self.insert_idempotency, (request_id, operation, digest, _RAW_RESPONSE, now)
        )
        self.conn.commit()

    def earn(self) -> None:
        i = next(self.seq)
        member_id, order_id = self.earners[i % len(self.earners)], f"xe-{i}"
        request_id, now = self._begin()
        expires = self.db.timestamp(datetime.now(UTC) + timedelta(days=365))
        member_pk = self._one(self.lock_member, (member_id,))
        pts = EARN_POINTS
        lot = self._one(
            self.insert_lot,
            (member_pk, pts, pts, now, expires, order_id, RULE_VERSION, RATE_VERSION),
        )
        self.cur.execute(
            self.insert_earning,
            (order_id, member_pk, EARN_AMOUNT_FEN, pts, lot, _RAW_BREAKDOWN, now, now)
            + (RATE_VERSION, RULE_VERSION),
        )
        self._journal(
            ("EARN", member_pk, order_id, request_id, now),
            ("ISSUANCE", None, None, -pts),
            ("MEMBER_AVAILABLE", member_pk, lot, pts),
        )
        self.cur.execute(self.update_member, (pts, member_pk))
        self._finish("earn", request_id, now)

    def redeem(self) -> None:
        i = next(self.seq)
        member_id, order_id = self.redeemers[i % len(self.redeemers)], f"xr-{i}"
        request_id, now = self._begin()
        member_pk = self._one(self.lock_member, (member_id,))
        pts = REDEEM_POINTS
        lot = self._one(self.pick_lot, (member_pk, pts))
        self.cur.execute(self.take_from_lot, (pts, lot))
        redemption = self._one(
            self.insert_redemption, (order_id, member_pk, pts, pts, now, RATE_VERSION)
        )
        self.cur.execute(self.insert_allocation, (redemption, lot, pts))
        self._journal(
            ("REDEEM", member_pk, order_id, request_id, now),
            ("MEMBER_AVAILABLE", member_pk, lot, -pts),
            ("REDEMPTION", None, None, pts),
        )
        self._finish("redeem", request_id, now)


# -- the benchmark -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    seconds: float
    warmup: float
    concurrency: list[int]
    databases: list[str]
    members: int
    workers: int
    pool_size: int
    channels: int
    pg_admin_url: str
    processes: list[int] = field(default_factory=lambda: [1, 2])
    process_channels: int = 8

    @property
    def earners(self) -> list[str]:
        return [f"bench-earner-{k:05d}" for k in range(self.members)]

    @property
    def redeemers(self) -> list[str]:
        return [f"bench-redeemer-{k:05d}" for k in range(self.members)]


Key = tuple[str, str, int]  # (db, op, concurrency)


@dataclass
class Results:
    node: dict[Key, Sample] = field(default_factory=dict)
    raw: dict[Key, Sample] = field(default_factory=dict)
    echo: dict[Key, Sample] = field(default_factory=dict)
    # the raw tx behind a grpc.aio handler (ceiling_process), same db, op and concurrency
    ceiling: dict[Key, Sample] = field(default_factory=dict)
    raw_label: dict[str, str] = field(default_factory=dict)  # db -> DB-API module
    # (db, shape label, concurrency) -> node earn served that way, measured back to back
    shapes: dict[tuple[str, str, int], Sample] = field(default_factory=dict)
    # db -> op -> what one request executes, counted in-process
    statements: dict[str, dict[str, Counter[str]]] = field(default_factory=dict)


def progress(what: str, sample: Sample) -> None:
    print(
        f"  {what:<24} conc {sample.concurrency:>3}: {sample.rate:>8,.0f}/s  "
        f"errors {sum(sample.errors.values())}  cores {sample.cores}",
        file=sys.stderr,
        flush=True,
    )


async def bounded(coros: Iterable[Coroutine[Any, Any, object]], limit: int) -> None:
    gate = asyncio.Semaphore(limit)

    async def one(coro: Coroutine[Any, Any, object]) -> None:
        async with gate:
            await coro

    await asyncio.gather(*(one(c) for c in coros))


class EchoClient:
    """Round-robin calls of one bytes-in, bytes-out method (the echo's, or the ceiling's earn or
    redeem) over the configured number of channels."""

    def __init__(self, port: int, channels: int, method: str = ECHO_METHOD) -> None:
        self.channels = [grpc.aio.insecure_channel(f"127.0.0.1:{port}") for _ in range(channels)]
        self.calls = [ch.unary_unary(method) for ch in self.channels]
        self.turn = itertools.count()

    async def __call__(self) -> None:
        await self.calls[next(self.turn) % len(self.calls)](ECHO_PAYLOAD, timeout=10)

    async def close(self) -> None:
        for ch in self.channels:
            await ch.close()


async def bench_database(
    db: str, url: str, raw: RawDb, echo_pid: int, echo_port: int, cfg: Settings, results: Results
) -> None:
    """Node, raw tx and echo cells, back to back, for each op and concurrency on one database."""
    results.raw_label[db] = raw.label
    earners, redeemers, raw_seq = cfg.earners, cfg.redeemers, itertools.count()

    def open_raw() -> RawLedger:
        return RawLedger(raw, earners, redeemers, raw_seq)

    shape = NodeShape()
    with server_process(node_process, url, cfg.pool_size, cfg.workers, shape) as (
        pid,
        (port, key),
    ):
        clients = [
            MerchantNodeClient(f"127.0.0.1:{port}", api_key=key) for _ in range(cfg.channels)
        ]
        echo = EchoClient(echo_port, cfg.channels)
        try:
            await _enroll_and_fund(clients[0], cfg)
            calls = _node_calls(clients, cfg)
            for op in OPS:
                for conc in cfg.concurrency:
                    key = (db, op, conc)
                    meter = Meter((pid,), raw.database)
                    results.node[key] = await drive_async(calls[op], conc, cfg, meter)
                    progress(f"node {op} ({db})", results.node[key])
                    results.raw[key] = await asyncio.to_thread(
                        drive_threads, open_raw, op, conc, cfg, meter
                    )
                    progress(f"raw {op} tx ({raw.label})", results.raw[key])
                    results.echo[key] = await drive_async(echo, conc, cfg, Meter((echo_pid,)))
                    progress("gRPC echo", results.echo[key])
                    with server_process(ceiling_process, url, earners, redeemers, cfg.workers) as (
                        ceiling_pid,
                        ceiling_port,
                    ):
                        ceiling = EchoClient(ceiling_port, cfg.channels, CEILING_METHODS[op])
                        try:
                            results.ceiling[key] = await drive_async(
                                ceiling, conc, cfg, Meter((ceiling_pid,), raw.database)
                            )
                        finally:
                            await ceiling.close()
                    progress(f"raw {op} tx over gRPC", results.ceiling[key])
        finally:
            await echo.close()
            for client in clients:
                await client.close()


def _node_calls(
    clients: list[MerchantNodeClient], cfg: Settings, prefix: str = "n"
) -> dict[str, Callable[[], Awaitable[object]]]:
    """One call of each op: round robin over members and channels, unique order ids."""
    earners, redeemers = cfg.earners, cfg.redeemers
    earn_seq, redeem_seq = itertools.count(), itertools.count()

    async def earn() -> None:
        i = next(earn_seq)
        client = clients[i % len(clients)]
        await client.earn(earners[i % len(earners)], f"{prefix}e-{i}", EARN_AMOUNT_FEN)

    async def redeem() -> None:
        i = next(redeem_seq)
        client = clients[i % len(clients)]
        await client.redeem(redeemers[i % len(redeemers)], f"{prefix}r-{i}", points=REDEEM_POINTS)

    return {"earn": earn, "redeem": redeem}


async def _enroll_and_fund(client: MerchantNodeClient, cfg: Settings) -> None:
    started = time.perf_counter()
    members = cfg.earners + cfg.redeemers
    await bounded((client.enroll_member(m) for m in members), 32)
    await bounded((client.earn(m, f"fund-{m}", FUND_AMOUNT_FEN) for m in cfg.redeemers), 32)
    print(
        f"  setup: {len(members)} members enrolled, {len(cfg.redeemers)} funded "
        f"in {time.perf_counter() - started:.1f} s",
        file=sys.stderr,
        flush=True,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _own_connection(client: MerchantNodeClient, target: str) -> MerchantNodeClient:
    """The client on a connection of its own: channels to one target otherwise share one
    (gRPC's global subchannel pool), and SO_REUSEPORT spreads connections, not calls."""
    client.channel = grpc.aio.insecure_channel(
        target, options=[("grpc.use_local_subchannel_pool", 1)]
    )
    client.stub = MerchantNodeServiceStub(client.channel)
    return client


async def bench_shapes(
    db: str, url: str, raw: RawDb, shapes: list[NodeShape], cfg: Settings, results: Results
) -> None:
    """Node earn at the highest concurrency, served in each shape in turn (N processes on one
    port; without group commit), over `cfg.process_channels` connections of their own."""
    conc = max(cfg.concurrency)
    for shape in shapes:
        with ExitStack() as stack:
            pids, key, port = [], "", 0
            for _ in range(shape.processes):  # one after another: each migrates and sets rates
                pid, (port, k) = stack.enter_context(
                    server_process(node_process, url, cfg.pool_size, cfg.workers, shape)
                )
                pids.append(pid)
                key = key or k
            target = f"127.0.0.1:{port}"
            clients = [
                _own_connection(MerchantNodeClient(target, api_key=key), target)
                for _ in range(cfg.process_channels)
            ]
            try:
                earn = _node_calls(clients, cfg, prefix=f"p{len(results.shapes)}")["earn"]
                sample = await drive_async(earn, conc, cfg, Meter(tuple(pids), raw.database))
            finally:
                for client in clients:
                    await client.close()
        results.shapes[(db, shape.label(), conc)] = sample
        progress(f"node earn, {shape.label()} ({db})", sample)


def count_statements(url: str, n: int = 40) -> dict[str, Counter[str]]:
    """Statements one earn and one redeem execute (NodeLedger in this process, one
    transaction per request; then the same requests through a group committer), by kind."""
    engine = make_engine(url, pool_size=2)
    ledger = NodeLedger(engine, wallet_keys=WalletKeys.generate())
    ledger.configure_rate("1", "1")
    seen: Counter[str] = Counter()

    @sqlalchemy.event.listens_for(engine, "before_cursor_execute")
    def statement(_conn, _cursor, text, _params, _context, _many):  # type: ignore[no-untyped-def]
        seen[" ".join(text.split()[:3]).split("(")[0]] += 1

    @sqlalchemy.event.listens_for(engine, "commit")
    def commit(_conn):  # type: ignore[no-untyped-def]
        seen["COMMIT"] += 1

    tag = uuid.uuid4().hex[:6]
    members = [f"count-{tag}-{k}" for k in range(n)]
    for m in members:
        ledger.enroll(Enroll(f"ce-{m}", m))
        ledger.earn(Earn(f"cf-{m}", m, f"cf-{m}", FUND_AMOUNT_FEN, "POS", None))
    counted: dict[str, Counter[str]] = {}

    def measure(name: str, run: Callable[[str], object], threads: int = 1) -> None:
        seen.clear()
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(run, members))
        counted[name] = Counter({k: v / n for k, v in seen.items()})

    measure(
        "earn", lambda m: ledger.earn(Earn(f"ce1-{m}", m, f"ce1-{m}", EARN_AMOUNT_FEN, "POS", None))
    )
    measure("redeem", lambda m: ledger.redeem(Redeem(f"cr1-{m}", m, f"cr1-{m}", REDEEM_POINTS)))
    group = GroupCommit(engine, name="count")
    ledger.use_group_commit(group)
    try:
        measure(
            "earn, group commit (16 threads)",
            lambda m: ledger.earn(Earn(f"ce2-{m}", m, f"ce2-{m}", EARN_AMOUNT_FEN, "POS", None)),
            threads=16,
        )
    finally:
        ledger.use_group_commit()
        group.close()
    engine.dispose()
    return counted


@contextmanager
def fresh_database(db: str, pg_admin_url: str) -> Iterator[tuple[str, RawDb]]:
    """A new, empty database (SQLAlchemy URL and raw access), removed afterwards."""
    if db == "sqlite":
        with tempfile.TemporaryDirectory(prefix="node_bench_") as tmp:
            path = os.path.join(tmp, "node.db")
            yield f"sqlite:///{path}", sqlite_raw(path)
        return
    admin_url = make_url(pg_admin_url)
    name = f"node_bench_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(**admin_url.translate_connect_args(username="user", database="dbname"))
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        try:
            # SQLAlchemy 2.1 maps bare postgresql:// to psycopg 3; the node ships psycopg2.
            url = admin_url.set(drivername="postgresql+psycopg2", database=name)
            yield url.render_as_string(hide_password=False), pg_raw(url)
        finally:
            with admin.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()


async def run_all(cfg: Settings) -> Results:
    results = Results()
    with server_process(echo_process) as (echo_pid, echo_port):
        for db in cfg.databases:
            print(f"{db}: node, raw tx and echo cells", file=sys.stderr, flush=True)
            with fresh_database(db, cfg.pg_admin_url) as (url, raw):
                await bench_database(db, url, raw, echo_pid, echo_port, cfg, results)
                # The default node the other way: group-committed on PostgreSQL, not on SQLite.
                shapes = [NodeShape(group_commit=4 if db == "postgresql" else 0)]
                if db == "postgresql":  # several processes share a PostgreSQL database
                    port = _free_port()
                    shapes += [NodeShape(f"127.0.0.1:{port}", n) for n in cfg.processes if n > 0]
                await bench_shapes(db, url, raw, shapes, cfg, results)
                results.statements[db] = await asyncio.to_thread(count_statements, url)
    return results


# -- report ------------------------------------------------------------------------------------


def _postgres_version(pg_admin_url: str) -> str:
    url = make_url(pg_admin_url)
    try:
        conn = psycopg2.connect(**url.translate_connect_args(username="user", database="dbname"))
    except psycopg2.Error as exc:
        return f"unreachable ({str(exc).strip().splitlines()[0]})"
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT current_setting('server_version'), current_setting('synchronous_commit')"
            )
            version, sync = cur.fetchone()
        return f"{version.split()[0]} (synchronous_commit={sync})"
    finally:
        conn.close()


def header(cfg: Settings, argv: list[str], idle_load: float) -> str:
    dbs = set(cfg.databases)
    machine = [
        f"{os.cpu_count()} cores",
        f"Python {platform.python_version()}",
        f"grpcio {grpc.__version__}",
        f"SQLAlchemy {sqlalchemy.__version__}",
    ]
    if "sqlite" in dbs:
        machine.append(f"SQLite {sqlite3.sqlite_version} (WAL, synchronous=FULL)")
    if "postgresql" in dbs:
        machine.append(f"psycopg2 {psycopg2.__version__.split()[0]}")
        machine.append(f"PostgreSQL {_postgres_version(cfg.pg_admin_url)}")
    return "\n".join(
        [
            f"$ {shlex.join(['python', *argv])}",
            f"  cells: {cfg.warmup:g} s warm-up + {cfg.seconds:g} s measured each; "
            f"concurrency {', '.join(map(str, cfg.concurrency))}; db {', '.join(cfg.databases)}",
            f"  node: own process, build_server(workers={cfg.workers}), "
            f"make_engine(pool_size={cfg.pool_size}); {cfg.members} earning members "
            f"(round robin, {EARN_AMOUNT_FEN} fen per earn); {cfg.members} redeeming members "
            f"({REDEEM_POINTS} point per redeem, pre-funded {FUND_AMOUNT_FEN // 100:,} points)",
            f"  client: this process, grpc.aio, {cfg.channels} channel(s), MerchantNodeClient "
            "for the node; raw tx: threads, one connection each",
            f"  machine: {'; '.join(machine)}",
            f"  background load before start: {idle_load:.2f} cores busy",
        ]
    )


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _ratio(num: Sample, den: Sample | None) -> str:
    if den is None or not den.rate:
        return "-"
    return f"{num.rate / den.rate:.2f}"


def _errors(sample: Sample) -> str:
    return str(sum(sample.errors.values()))


def _table(head: list[str], rows: list[list[str]], left: int) -> list[str]:
    """Fixed-width columns: the first `left` left-aligned, the rest right-aligned."""
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    return [line(head), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def report(results: Results) -> str:
    rows = []
    for key, s in results.node.items():
        raw, echo = results.raw.get(key), results.echo.get(key)
        p50, p99 = s.percentile_ms(0.50), s.percentile_ms(0.99)
        rows.append(
            [*key[:2], str(key[2]), f"{s.rate:,.0f}", _ms(p50), _ms(p99), _errors(s)]
            + [_ratio(s, raw), _ratio(s, echo), str(s.cores)]
        )
    out = [
        "",
        "Node through gRPC. /raw: node req/s / raw tx/s; /echo: node req/s / echo req/s "
        "(same db, op and concurrency, measured back to back)",
        *_table(
            ["db", "op", "conc", "req/s", "p50 ms", "p99 ms", "err", "/raw", "/echo", "cores"],
            rows,
            left=2,
        ),
    ]
    rows = []
    for key, raw in results.raw.items():
        echo = results.echo[key]
        rows.append(
            [key[0], f"{key[1]} ({results.raw_label[key[0]]})", str(key[2])]
            + [f"{raw.rate:,.0f}", _ms(raw.percentile_ms(0.5)), _ms(raw.percentile_ms(0.99))]
            + [_errors(raw), str(raw.cores)]
            + [f"{echo.rate:,.0f}", _ms(echo.percentile_ms(0.5)), _ms(echo.percentile_ms(0.99))]
            + [_errors(echo), str(echo.cores)]
        )
    out += [
        "",
        "Baselines. raw tx: the op's minimal writes, one DB-API transaction per call, N threads; "
        "echo: grpc.aio bytes echo",
        *_table(
            ["db", "raw tx", "conc", "tx/s", "p50 ms", "p99 ms", "err", "cores"]
            + ["echo/s", "p50 ms", "p99 ms", "err", "cores"],
            rows,
            left=2,
        ),
        "",
        "cores: server process / client (this process) / PostgreSQL / rest of the machine, "
        "averaged over the window",
        "(for raw tx the server is the idle node; for echo, the echo server)",
    ]
    out += _ceiling_report(results)
    out += _shapes_report(results) + _statements_report(results)
    failures = [
        f"  {kind} {key}: {dict(s.errors)}"
        for kind, samples in (
            ("node", results.node),
            ("raw", results.raw),
            ("echo", results.echo),
            ("ceiling", results.ceiling),
        )
        for key, s in samples.items()
        if s.errors
    ]
    if failures:
        out += ["", "Errors in the measured windows (not counted in the rates):", *failures]
    return "\n".join(out)


def _ceiling_report(results: Results) -> list[str]:
    """The raw tx served over gRPC: what the node's transport plus its minimal writes allow."""
    if not results.ceiling:
        return []
    rows = []
    for key, s in results.ceiling.items():
        node = results.node.get(key)
        rows.append(
            [*key[:2], str(key[2]), f"{s.rate:,.0f}", _ms(s.percentile_ms(0.5))]
            + [_ms(s.percentile_ms(0.99)), _errors(s), _ratio(s, results.raw.get(key))]
            + [_ratio(node, s) if node else "-", str(s.cores)]
        )
    return [
        "",
        "Ceiling: the raw tx behind a grpc.aio handler (own process, the node's worker count of "
        "threads, one connection each): the transport plus the minimal writes, nothing else. "
        "/raw: ceiling / raw tx; node/ceiling: the node's req/s / this",
        *_table(
            ["db", "op", "conc", "req/s", "p50 ms", "p99 ms", "err", "/raw", "node/ceiling"]
            + ["cores"],
            rows,
            left=2,
        ),
    ]


def _shapes_report(results: Results) -> list[str]:
    """Node earn served in other shapes, each against the 1-process node of the same run."""
    if not results.shapes:
        return []
    rows = []
    for (db, label, conc), s in results.shapes.items():
        if "," in label:  # group commit the other way than the default node above
            versus, ratio = "this / node", _ratio(s, results.node.get((db, "earn", conc)))
        else:
            one = results.shapes.get((db, NodeShape(processes=1).label(), conc))
            versus, ratio = "this / 1 process", _ratio(s, one)
        rows.append(
            [db, label, str(conc), f"{s.rate:,.0f}", _ms(s.percentile_ms(0.5))]
            + [_ms(s.percentile_ms(0.99)), _errors(s), versus, ratio, str(s.cores)]
        )
    return [
        "",
        "Node earn served other ways, measured back to back: group commit the other way than "
        "the default node (GC: group commit; N committers), or N processes on one port "
        "(SO_REUSEPORT; each client channel its own connection)",
        *_table(
            ["db", "node", "conc", "req/s", "p50 ms", "p99 ms", "err", "ratio", "", "cores"],
            rows,
            left=2,
        ),
    ]


def _statements_report(results: Results) -> list[str]:
    """What one request executes, counted by SQLAlchemy's before_cursor_execute (and commits)."""
    if not results.statements:
        return []
    out = [
        "",
        "Statements per request (NodeLedger in the bench process, counted with SQLAlchemy's "
        "before_cursor_execute; COMMIT from its commit event; BEGIN IMMEDIATE is a statement "
        "on SQLite)",
    ]
    for db, ops in results.statements.items():
        for op, counts in ops.items():
            total = sum(v for k, v in counts.items() if k != "COMMIT")
            kinds = ", ".join(f"{k} {v:.2g}" for k, v in counts.most_common())
            out.append(f"  {db:<10} {op:<32} {total:5.1f} statements  ({kinds})")
    return out


def parse_args(argv: list[str]) -> Settings:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per cell")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per cell")
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--concurrency", default="1,16,64", help="comma-separated calls in flight")
    parser.add_argument("--members", type=int, default=1000, help="members per op (spread load)")
    parser.add_argument("--workers", type=int, default=16, help="node's blocking-work threads")
    parser.add_argument("--pool-size", type=int, default=16, help="node's DB connection pool")
    parser.add_argument("--channels", type=int, default=1, help="client gRPC channels")
    parser.add_argument(
        "--processes",
        default="1,2",
        help="node processes sharing one port, each measured on PostgreSQL (earn, highest "
        "concurrency); '' for none",
    )
    parser.add_argument(
        "--process-channels",
        type=int,
        default=8,
        help="client connections in the processes cells (the kernel spreads connections)",
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("COALITION_TEST_PG", PG_ADMIN_DEFAULT),
        help="admin URL of a PostgreSQL server; the bench creates and drops its own database",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a short run for bench/all.py: 16 in flight, 2 s cells"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.warmup, args.members = 1.5, 0.5, 200
        args.concurrency = "16" if args.concurrency == "1,16,64" else args.concurrency
    try:
        concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    except ValueError:
        concurrency = []
    if not concurrency or min(concurrency) < 1:
        parser.error("--concurrency takes positive integers, e.g. 1,16,64")
    if max(concurrency) > args.members:
        parser.error("--members must be at least the highest concurrency (one row lock each)")
    return Settings(
        seconds=args.seconds,
        warmup=args.warmup,
        concurrency=concurrency,
        databases=["sqlite", "postgresql"] if args.db == "both" else [args.db],
        members=args.members,
        workers=args.workers,
        pool_size=args.pool_size,
        channels=args.channels,
        pg_admin_url=args.pg_url,
        processes=[int(p) for p in args.processes.split(",") if p.strip()],
        process_channels=args.process_channels,
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    cfg = parse_args(argv[1:])
    print(header(cfg, argv, background_load()), flush=True)
    results = asyncio.run(run_all(cfg))
    print(report(results), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
