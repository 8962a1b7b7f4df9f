"""Where each hot path's server CPU goes, by component: the profile issue 12 asks for next to
every aim not met.

For each path the real server runs in its own spawned process, started by the bench that
measures that path (imported, not copied), on a fresh database (SQLite file; PostgreSQL
database dropped afterwards), under load from this process (grpc.aio, N calls in flight), twice
on the same database: first unprofiled (its rate and CPU per request: the figures), then
profiled (where that CPU goes):

* node-earn, node-redeem: the merchant node as bench/node_bench.py serves it (node_process);
* rules-earn: Earn with bench/rules_bench.py's ~50-rule program applied (its node_process,
  its baskets of 10 line items, its purchase moment);
* exchange: the exchange's own process (ExchangeApp.from_config, as `coalition exchange serve`
  runs it, INFO logging as the CLI sets it), with the issuer and acquirer nodes in another
  process (bench/xchange_bench.py's nodes_process): authorize + capture of cross-shop
  redemptions, spread over the acquirers; only the exchange's process is profiled.

In the server process every Python thread is profiled with cProfile, timed by the thread's own
CPU clock (time.thread_time: time blocked on a lock, a socket or fsync costs nothing): the
event loop's thread from the start, every thread started later (the node's and exchange's
worker pools, group committers) through threading.setprofile. Stats are read twice, at the
start and at the end of a fixed window after a warm-up, and the difference is the window's.
Each function's own time (tottime) is grouped by component from its file (or, for built-ins,
the type or module it belongs to):

    gRPC/asyncio       grpc (incl. its Cython core's calls), asyncio, selectors, contextvars
    SQLAlchemy         sqlalchemy (incl. its Cython extensions)
    DB driver          psycopg2, sqlite3
    protobuf           google.protobuf (upb), generated *_pb2.py
    crypto             cryptography, hashlib/hmac
    logging/telemetry  logging, prometheus_client, opentelemetry
    ours: <package>    coalition_kernel, merchant_node, exchange, settlement (and others of ours)
    other              everything else (stdlib, builtins, threads and queues, json, ...)
    gRPC C threads     the CPU of the process's threads that run no Python (gRPC's core
                       threads; from /proc, by thread, named in the path's report)
    unseen             Python threads' CPU the profiler did not attribute (functions still
                       running at the window's end; clock-tick rounding)

cProfile slows Python code: each call and return reads the thread's CPU clock (a system call),
about 1.4 µs a call on this machine against some 35 ns for the call itself, and that time lands
in the callee's own time and the caller's. So the server process calibrates it at the window's
start (a loop of calls to an empty function, profiled and not: the cost per call to the callee
and to the caller), and each function's own time is shown less calls × the callee's share and
calls it made × the caller's. Shares are of the server's CPU so corrected: the process's CPU in
the window (from /proc) less the profiler's; CPU ms per request by component is that share of
the unprofiled window's CPU per request. The correction is an estimate (the calibration loop is
the cheapest of calls; what is left over shows as "~N ms/req left" next to the unprofiled
figure), and a profiled server is slower, so batching (group commit) differs: read shares.

    python bench/profile_paths.py [--quick] [--only node-earn,exchange]
        [--db sqlite|postgresql|both] [--seconds 5] [--warmup 2] [--concurrency 16] [--top 10]

The last line is a one-line summary (bench/all.py shows it; its reader takes the summary table).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import itertools
import logging
import multiprocessing
import os
import pathlib
import re
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from multiprocessing.connection import Connection as Pipe
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [p for p in (REPO, os.path.join(REPO, "bench")) if p not in sys.path]

import grpc  # noqa: E402
import node_bench  # noqa: E402
import rules_bench  # noqa: E402
import xchange_bench  # noqa: E402

from merchant_node.client import MerchantNodeClient  # noqa: E402

PATHS = ("node-earn", "node-redeem", "rules-earn", "exchange")
TITLES = {
    "node-earn": "node Earn (base rate)",
    "node-redeem": "node Redeem",
    "rules-earn": "Earn, ~50-rule program",
    "exchange": "exchange, cross-shop redemption",
}
OURS = ("coalition_kernel", "merchant_node", "exchange", "settlement", "coalition_cli", "console")
COMPONENTS = (
    "gRPC/asyncio",
    "SQLAlchemy",
    "DB driver",
    "protobuf",
    "crypto",
    "logging/telemetry",
    "ours",
    "other",
    "gRPC C threads",
    "unseen",
)
CLK_TCK = os.sysconf("SC_CLK_TCK")

# A built-in's top-level module (from cProfile's label) → component.
BUILTIN_MODULES = {
    "grpc": "gRPC/asyncio",
    "_asyncio": "gRPC/asyncio",
    "asyncio": "gRPC/asyncio",
    "_contextvars": "gRPC/asyncio",
    "select": "gRPC/asyncio",
    "sqlalchemy": "SQLAlchemy",
    "psycopg2": "DB driver",
    "sqlite3": "DB driver",
    "_sqlite3": "DB driver",
    "google": "protobuf",
    "cryptography": "crypto",
    "_cffi_backend": "crypto",
    "_hashlib": "crypto",
    "_sha256": "crypto",
    "_blake2": "crypto",
    "_hmac": "crypto",
    "prometheus_client": "logging/telemetry",
    "opentelemetry": "logging/telemetry",
}
# A file path fragment → component (first match wins; our packages are matched after these).
FILE_FRAGMENTS = (
    ("_pb2_grpc.py", "gRPC/asyncio"),
    ("_pb2.py", "protobuf"),
    ("/grpc/", "gRPC/asyncio"),
    ("/asyncio/", "gRPC/asyncio"),
    ("/selectors.py", "gRPC/asyncio"),
    ("/sqlalchemy/", "SQLAlchemy"),
    ("/psycopg2/", "DB driver"),
    ("/sqlite3/", "DB driver"),
    ("/google/protobuf/", "protobuf"),
    ("/cryptography/", "crypto"),
    ("/hashlib.py", "crypto"),
    ("/hmac.py", "crypto"),
    ("/logging/", "logging/telemetry"),
    ("/prometheus_client/", "logging/telemetry"),
    ("/opentelemetry/", "logging/telemetry"),
)
Key = tuple[str, int, str]  # (file or "~" for a built-in, first line, name): as pstats labels


# -- in the server process ---------------------------------------------------------------------


NATIVE = "[C] "  # a thread that runs no Python: its name (comm) after this, in `threads`


def _tasks() -> dict[int, tuple[str, float]]:
    """This process's threads: native id → (kernel name, CPU seconds so far)."""
    found = {}
    for entry in os.scandir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{entry.name}/stat") as f:
                head, tail = f.read().rsplit(")", 1)
        except OSError:  # the thread ended
            continue
        fields = tail.split()
        cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
        found[int(entry.name)] = (head.split("(", 1)[1], cpu)
    return found


class ThreadProfiles:
    """A cProfile per Python thread of this process, each timed by its thread's CPU clock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.profiles: list[tuple[str, int, cProfile.Profile]] = []
        self.unprofiled: set[int] = set()  # native ids of the profiler's own threads

    def start_here(self) -> None:
        profile = cProfile.Profile(time.thread_time)
        with self.lock:
            thread = threading.current_thread()
            self.profiles.append((thread.name, threading.get_native_id(), profile))
        profile.enable()  # replaces the hook below for this thread

    def hook(self, _frame: object, _event: str, _arg: object) -> None:
        """threading.setprofile's hook: runs once, at a new thread's first call."""
        self.start_here()

    def snapshot(self) -> tuple[dict[Key, list[float]], dict[str, float]]:
        """By function over every thread so far: [calls, own time, calls it made]; and thread
        CPU by name (Python's thread name; the kernel's, after NATIVE, for threads that run no
        Python, e.g. gRPC's core)."""
        functions: dict[Key, list[float]] = defaultdict(lambda: [0, 0.0, 0])
        threads: dict[str, float] = defaultdict(float)
        with self.lock:
            profiles = list(self.profiles)
        tasks = _tasks()
        python = {native_id: name for name, native_id, _profile in profiles}
        for native_id, (comm, cpu) in tasks.items():
            if native_id in self.unprofiled:
                continue
            name = python.get(native_id, NATIVE + comm)
            threads[re.sub(r"[_-]?\d+$", "_N", name)] += cpu
        for _name, _native_id, profile in profiles:
            for entry in profile.getstats():  # a read: safe from another thread (the GIL)
                totals = functions[_key(entry.code)]
                totals[0] += entry.callcount
                totals[1] += entry.inlinetime
                totals[2] += sum(sub.callcount for sub in entry.calls or ())
        return dict(functions), dict(threads)


def _key(code: Any) -> Key:
    if isinstance(code, str):
        return ("~", 0, code)
    return (code.co_filename, code.co_firstlineno, code.co_qualname)


def _empty() -> None:
    pass


def _loop(calls: int) -> None:
    for _ in range(calls):
        _empty()


def calibrate(calls: int = 20_000) -> tuple[float, float]:
    """What cProfile (thread CPU clock) adds per call, in CPU seconds: to the callee's own time
    and to the caller's; from a loop of calls to an empty function, profiled and not (the least
    of three tries)."""
    tries = []
    for _ in range(3):
        began = time.thread_time()
        _loop(calls)
        plain = time.thread_time() - began
        profile = cProfile.Profile(time.thread_time)
        profile.enable()
        _loop(calls)
        profile.disable()
        own = {_key(e.code)[2]: e.inlinetime for e in profile.getstats()}
        caller = max(own.get("_loop", 0.0) - plain, 0.0)
        tries.append((own.get("_empty", 0.0) / calls, caller / calls))
    return min(tries, key=sum)


def _control(profiles: ThreadProfiles, ctl: Pipe) -> None:
    """Answers the bench: "start" marks the window's start, "stop" sends the window's stats:
    by function (calls, own time, calls made), thread CPU by name, the profiler's cost per call
    (callee, caller) and the CPU this thread spent meanwhile (reading stats, calibrating)."""
    profiles.unprofiled.add(threading.get_native_id())
    before: tuple[dict[Key, list[float]], dict[str, float]] = ({}, {})
    spent, bias = 0.0, (0.0, 0.0)
    while True:
        try:
            command = ctl.recv()
        except (EOFError, OSError):
            return
        began = time.thread_time()
        if command == "start":
            bias = calibrate()
            before = profiles.snapshot()
            spent = time.thread_time() - began
            ctl.send("started")
        elif command == "stop":
            functions, threads = profiles.snapshot()
            window = []
            for key, (calls, own, made) in functions.items():
                was = before[0].get(key, (0, 0.0, 0))
                if own - was[1] > 0 or calls - was[0] > 0:
                    window.append((key, int(calls - was[0]), own - was[1], int(made - was[2])))
            by_thread = {n: max(cpu - before[1].get(n, 0.0), 0.0) for n, cpu in threads.items()}
            spent += time.thread_time() - began
            ctl.send((window, by_thread, bias, spent))


def profiled(ctl: Pipe, target: Callable[..., None], *args: object) -> None:
    """Spawned-process entry: `target(*args)` (a bench's server entry; its last argument is the
    pipe the bench's server_process appends) with every Python thread profiled."""
    profiles = ThreadProfiles()
    threading.Thread(target=_control, args=(profiles, ctl), daemon=True, name="profiler").start()
    threading.setprofile(profiles.hook)  # threads started from now on (not the one above)
    profiles.start_here()
    target(*args)


def exchange_process(config: str, listen: str, pipe: Pipe) -> None:
    """The exchange as `coalition exchange serve --config CONFIG` runs it (one process), on
    `listen`; its INFO log (a line per call, as the CLI logs) formatted and dropped."""
    from exchange.runtime import ExchangeApp, ExchangeConfig

    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=open(os.devnull, "w"),  # noqa: SIM115 (for the process's life)
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    os.environ["COALITION_EXCHANGE__LISTEN"] = listen

    async def serve() -> None:
        app = ExchangeApp.from_config(ExchangeConfig.load(pathlib.Path(config)))
        pipe.send(await app.start())
        await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
        await app.stop(1)
        app.engine.dispose()

    asyncio.run(serve())


# -- in the bench process ----------------------------------------------------------------------


Function = tuple[Key, int, float, int]  # (function, calls, own CPU s, calls it made)


@dataclass
class Drive:
    """N calls in flight; what ended inside a window after a warm-up, and the server's CPU."""

    seconds: float = 0.0
    requests: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    process_cpu: float = 0.0  # seconds, the whole server process (from /proc)
    ran_out: bool = False

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def ms_per_request(self) -> float:
        return self.process_cpu * 1000 / self.requests if self.requests else 0.0

    def describe(self) -> str:
        errors = sum(self.errors.values())
        return (
            f"{self.rate:,.0f}/s, {self.process_cpu / self.seconds if self.seconds else 0:.2f} "
            f"cores, {self.ms_per_request:.2f} ms CPU/req"
            + (f", {errors} errors ({', '.join(self.errors)})" if errors else "")
            + (" (ran out of work)" if self.ran_out else "")
        )


@dataclass
class Window:
    """One path: a window unprofiled (its own server process, same database and load), then
    one profiled."""

    path: str
    db: str
    concurrency: int
    plain: Drive = field(default_factory=Drive)
    profiled: Drive = field(default_factory=Drive)
    functions: list[Function] = field(default_factory=list)
    threads: dict[str, float] = field(default_factory=dict)
    bias: tuple[float, float] = (0.0, 0.0)  # the profiler's CPU per call: callee's, caller's
    bookkeeping: float = 0.0  # CPU the profiler's control thread spent in the window

    @property
    def title(self) -> str:
        return f"{TITLES[self.path]}, {self.db}"

    def own(self, f: Function) -> float:
        """A function's own CPU less what the profiler added to it (at least 0)."""
        _key, calls, own, made = f
        return max(own - calls * self.bias[0] - made * self.bias[1], 0.0)

    @property
    def overhead(self) -> float:
        """The profiler's cost in the window: per call and return timed, and its bookkeeping."""
        return sum(f[2] - self.own(f) for f in self.functions) + self.bookkeeping

    @property
    def server_cpu(self) -> float:
        """The profiled server process's CPU less the profiler's (estimated)."""
        return max(self.profiled.process_cpu - self.overhead, 0.0)

    def by_component(self) -> dict[str, float]:
        """Own CPU seconds by component; "ours" split by package (as "ours: <package>")."""
        found: dict[str, float] = defaultdict(float)
        for f in self.functions:
            found[component(f[0])] += self.own(f)
        found["gRPC C threads"] = sum(
            cpu for name, cpu in self.threads.items() if name.startswith(NATIVE)
        )
        found["unseen"] = max(self.server_cpu - sum(found.values()), 0.0)
        return dict(found)

    def other_modules(self) -> dict[str, float]:
        """The "other" component's own CPU by module (or built-in type)."""
        found: dict[str, float] = defaultdict(float)
        for f in self.functions:
            if component(f[0]) == "other":
                found[module_of(f[0])] += self.own(f)
        return dict(found)

    def share(self, cpu: float) -> float:
        """% of the server's CPU (profiled, less the profiler's)."""
        return 100 * cpu / self.server_cpu if self.server_cpu else 0.0

    def ms(self, cpu: float) -> float:
        """That share of the unprofiled server's CPU per request, in ms."""
        return self.share(cpu) / 100 * self.plain.ms_per_request


def _builtin_module(name: str) -> str:
    """The dotted owner of a built-in, from cProfile's label: "<method 'execute' of
    'sqlite3.Cursor' objects>" → sqlite3.Cursor; "<built-in method time.sleep>" → time.sleep."""
    found = re.search(r"of '([\w.]+)' objects|<built-in method ([\w.]+)", name)
    return (found[1] or found[2]) if found else name


def _site_root(filename: str) -> str:
    """The longest sys.path entry (or the repository) `filename` lies under."""
    roots = [p for p in sys.path if p and filename.startswith(p.rstrip("/") + "/")]
    if filename.startswith(REPO + "/"):
        roots.append(REPO)
    return max(roots, key=len, default="")


def component(key: Key) -> str:
    filename, _line, name = key
    if filename == "~":
        return BUILTIN_MODULES.get(_builtin_module(name).split(".")[0], "other")
    path = filename.replace(os.sep, "/")
    for fragment, found in FILE_FRAGMENTS:
        if fragment in path:
            return found
    if path.startswith(REPO + "/") and _site_root(path) in (REPO, os.path.join(REPO, "gen")):
        package = path[len(REPO) + 1 :].split("/")[0]
        return f"ours: {package}"
    return "other"


def module_of(key: Key) -> str:
    filename, _line, name = key
    if filename == "~":
        owner = _builtin_module(name)
        return owner.rsplit(".", 1)[0] if "." in owner else "builtins"
    root = _site_root(filename)
    relative = filename[len(root) + 1 :] if root else filename
    return relative.split("/")[0].removesuffix(".py")


def label(key: Key) -> str:
    filename, line, name = key
    if filename == "~":
        return name
    root = _site_root(filename)
    return f"{filename[len(root) + 1 :] if root else filename}:{line}({name})"


class Control:
    """The bench's end of the server's profiler: window start and stop."""

    def __init__(self, pipe: Pipe) -> None:
        self.pipe = pipe

    def ask(self, command: str) -> Any:
        self.pipe.send(command)
        if not self.pipe.poll(120):
            raise RuntimeError(f"the server's profiler did not answer {command!r}")
        return self.pipe.recv()


@contextmanager
def serve(
    profile: bool, target: Callable[..., None], *args: object
) -> Iterator[tuple[int, Any, Control | None]]:
    """`target(*args, pipe)` in a process of its own (node_bench.server_process), profiled or
    not: yields (pid, what it sent once listening, the profiler's control or None)."""
    if not profile:
        with node_bench.server_process(target, *args) as (pid, ready):
            yield pid, ready, None
        return
    ours, theirs = multiprocessing.get_context("spawn").Pipe()
    try:
        with node_bench.server_process(profiled, theirs, target, *args) as (pid, ready):
            yield pid, ready, Control(ours)
    finally:
        ours.close()
        theirs.close()


async def drive(
    call: Callable[[], Awaitable[object]],
    concurrency: int,
    pid: int,
    warmup: float,
    seconds: float,
    control: Control | None = None,
) -> tuple[Drive, Any]:
    """`concurrency` calls in flight; after `warmup`, a `seconds` window (profiled, if
    `control`): what ended in it, the server's CPU, and the profiler's stats (or None)."""
    out, stats = Drive(), None
    measuring, stopping = False, False

    async def worker() -> None:
        nonlocal measuring
        while not stopping:
            try:
                went = await call()
            except grpc.aio.AioRpcError as exc:
                if measuring:
                    out.errors[exc.code().name] += 1
                await asyncio.sleep(0.05)  # e.g. a peer reconnecting: do not spin
                continue
            if went is False:  # no more work (the exchange: consent codes ran out)
                out.ran_out = True
                return
            if measuring:
                out.requests += 1

    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
    try:
        await asyncio.sleep(warmup)
        cpu = node_bench._process_cpu(pid)
        if control:
            await asyncio.to_thread(control.ask, "start")
        measuring, began = True, time.perf_counter()
        await asyncio.sleep(seconds)
        measuring = False
        out.seconds = time.perf_counter() - began
        out.process_cpu = node_bench._process_cpu(pid) - cpu
        if control:
            stats = await asyncio.to_thread(control.ask, "stop")
    finally:
        stopping = True
        await asyncio.gather(*workers, return_exceptions=True)
    return out, stats


def _record(window: Window, profile: bool, result: tuple[Drive, Any]) -> None:
    drove, stats = result
    if profile:
        window.profiled = drove
        window.functions, window.threads, window.bias, window.bookkeeping = stats
    else:
        window.plain = drove
    print(
        f"  {window.title}, {'profiled' if profile else 'unprofiled'}: {drove.describe()}",
        file=sys.stderr,
        flush=True,
    )


@dataclass(frozen=True)
class Settings:
    paths: list[str]
    databases: list[str]
    seconds: float
    warmup: float
    concurrency: int
    members: int
    exchange_members: int  # two redemptions each per window (this 30-second step and the next)
    top: int
    pg_admin_url: str


def _node_settings(cfg: Settings) -> node_bench.Settings:
    """node_bench's own settings (its defaults: 16 workers, pool of 16, one channel) for our
    members, concurrency and PostgreSQL server."""
    return node_bench.parse_args(
        ["--members", str(cfg.members), "--concurrency", str(cfg.concurrency)]
        + ["--pg-url", cfg.pg_admin_url, "--processes", ""]
    )


async def node_paths(db: str, cfg: Settings) -> list[Window]:
    """node-earn and node-redeem, the node served as node_bench serves it: once unprofiled,
    then once profiled, on the same database."""
    wanted = [p for p in ("node-earn", "node-redeem") if p in cfg.paths]
    if not wanted:
        return []
    ncfg = _node_settings(cfg)
    windows = {path: Window(path, db, cfg.concurrency) for path in wanted}
    with node_bench.fresh_database(db, cfg.pg_admin_url) as (url, _raw):
        for profile in (False, True):
            args = (url, ncfg.pool_size, ncfg.workers, node_bench.NodeShape())
            with serve(profile, node_bench.node_process, *args) as (pid, (port, key), control):
                client = MerchantNodeClient(f"127.0.0.1:{port}", api_key=key)
                try:
                    if not profile:
                        await node_bench._enroll_and_fund(client, ncfg)
                    calls = node_bench._node_calls([client], ncfg, prefix=f"prof{int(profile)}")
                    for path, window in windows.items():
                        call = calls[path.split("-")[1]]
                        result = await drive(
                            call, cfg.concurrency, pid, cfg.warmup, cfg.seconds, control
                        )
                        _record(window, profile, result)
                finally:
                    await client.close()
    return list(windows.values())


async def rules_path(db: str, cfg: Settings) -> list[Window]:
    """Earn with rules_bench's ~50-rule program, served as rules_bench serves it (members
    enrolled by the server process; each earns once first, unmeasured, as there: the measured
    earns are returning members'), unprofiled then profiled, each on a fresh database."""
    from zoneinfo import ZoneInfo

    moment = rules_bench.bench_moment()
    program = rules_bench.program_yaml(moment.astimezone(ZoneInfo(rules_bench.TIMEZONE)))
    carts = rules_bench.baskets(rules_bench.BASKETS)
    items = [cart.proto() for cart in carts]
    members = [f"bench-member-{k:04d}" for k in range(cfg.members)]
    seq = itertools.count()
    window = Window("rules-earn", db, cfg.concurrency)
    for profile in (False, True):  # a database each: the server enrolls with keys of its own
        with (
            node_bench.fresh_database(db, cfg.pg_admin_url) as (url, _raw),
            serve(profile, rules_bench.node_process, url, program, members, 16) as (
                pid,
                (port, key),
                control,
            ),
        ):
            client = MerchantNodeClient(f"127.0.0.1:{port}", api_key=key)

            async def earn(client: MerchantNodeClient = client) -> None:
                i = next(seq)
                cart = i % len(carts)
                await client.earn(
                    members[i % len(members)],
                    f"prof-{i}",
                    carts[cart].amount_fen,
                    line_items=items[cart],
                    occurred_at=moment,
                )

            try:
                await node_bench.bounded((earn() for _ in members), cfg.concurrency)
                result = await drive(earn, cfg.concurrency, pid, cfg.warmup, cfg.seconds, control)
                _record(window, profile, result)
            finally:
                await client.close()
    return [window]


async def exchange_path(db: str, cfg: Settings) -> list[Window]:
    """The exchange in its own process over `db` on a fixed port, unprofiled then profiled; the
    issuer and 4 acquirer nodes (SQLite, real clock) in xchange_bench's nodes process, started
    once (their links reconnect to the second exchange process); this process redeems through
    the acquirers, each member once per 30-second step."""
    from tests.exchange.multi_process import init_exchange_dir

    listen = f"127.0.0.1:{node_bench._free_port()}"
    window = Window("exchange", db, cfg.concurrency)
    with (
        xchange_bench.databases(db, cfg.pg_admin_url) as new_database,
        tempfile.TemporaryDirectory(prefix="profile_paths_") as tmp,
    ):
        config = str(init_exchange_dir(pathlib.Path(tmp), new_database("exchange")))
        async with AsyncExitStack() as stack:
            seq = itertools.count()
            acquirers: Any = None
            spends: Any = None
            for profile in (False, True):
                with serve(profile, exchange_process, config, listen) as (pid, _port, control):
                    if acquirers is None:  # once the first exchange listens
                        _nodes, _pipe, ready = stack.enter_context(
                            xchange_bench.spawned(
                                xchange_bench.nodes_process, config, listen,
                                cfg.exchange_members, 4,
                            )
                        )  # fmt: skip
                        acquirers = xchange_bench.Acquirers(ready["acquirers"])
                        stack.push_async_callback(acquirers.close)
                        spends = xchange_bench.Spends(ready["secrets"])
                    spends.refill()
                    result = await drive(
                        partial(acquirers.redeem, spends, seq),
                        cfg.concurrency,
                        pid,
                        cfg.warmup,
                        cfg.seconds,
                        control,
                    )
                    _record(window, profile, result)
    return [window]


async def run(cfg: Settings) -> tuple[list[Window], list[str]]:
    """Every path asked for; one that fails (e.g. its server does not start) is reported and
    the others still run."""
    windows: list[Window] = []
    failed: list[str] = []
    for db in cfg.databases:
        print(f"{db} ...", file=sys.stderr, flush=True)
        for name, profile_db in (
            ("node-earn/node-redeem", node_paths),
            ("rules-earn", rules_path),
            ("exchange", exchange_path),
        ):
            if not any(p in cfg.paths for p in name.split("/")):
                continue
            try:
                windows += await profile_db(db, cfg)
            except Exception as exc:  # shown in the report, and the exit status
                traceback.print_exc()
                first = (str(exc).strip().splitlines() or [""])[0]
                failed.append(f"{name}, {db}: {type(exc).__name__}: {first}")
    return windows, failed


# -- report ------------------------------------------------------------------------------------


def _table(head: list[str], rows: list[list[str]], left: int, right: int = 0) -> list[str]:
    """Fixed-width columns: the first `left` left-aligned, the next ones right-aligned, and
    (if `right`) from column `right` on left-aligned again."""
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < left or (right and i >= right) else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [line(head), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def path_report(w: Window, top: int) -> list[str]:
    parts = w.by_component()
    rows = [
        [name, f"{w.share(cpu):.1f}%", f"{w.ms(cpu):.3f}"]
        for name, cpu in sorted(parts.items(), key=lambda kv: -kv[1])
    ]
    rows.append(["server, all", "100%", f"{w.plain.ms_per_request:.3f}"])
    other = sorted(w.other_modules().items(), key=lambda kv: -kv[1])[:6]
    functions = sorted(w.functions, key=lambda f: -w.own(f))[:top]
    frows = [
        [
            f"{w.share(w.own(f)):.1f}%",
            f"{w.ms(w.own(f)):.3f}",
            f"{f[1] / w.profiled.requests if w.profiled.requests else 0:.1f}",
            component(f[0]),
            label(f[0]),
        ]
        for f in functions
    ]
    threads = ", ".join(
        f"{name} {cpu * 1000:.0f}"
        for name, cpu in sorted(w.threads.items(), key=lambda t: -t[1])
        if cpu > 0
    )
    p = w.profiled
    return [
        "",
        f"== {w.title}: {w.concurrency} in flight, {p.seconds:.1f} s windows",
        f"   unprofiled: {w.plain.describe()}",
        f"   profiled:   {p.describe()}; of its {p.process_cpu * 1000:.0f} ms the profiler's "
        f"~{w.overhead * 1000:.0f} ms ({w.bias[0] * 1e9:.0f}+{w.bias[1] * 1e9:.0f} ns a call): "
        f"~{w.server_cpu * 1000 / p.requests if p.requests else 0:.2f} ms/req left",
        f"   threads, CPU ms ({NATIVE.strip()} runs no Python; the others include the profiler's "
        f"cost): {threads}",
        "   % of the server's CPU (profiled, less the profiler's); ms/req: that share of the "
        "unprofiled CPU per request",
        *("   " + line for line in _table(["component", "% CPU", "ms/req"], rows, left=1)),
        "   other, by module: " + ", ".join(f"{name} {w.share(cpu):.1f}%" for name, cpu in other),
        f"   top {top} functions by own CPU (tottime less the profiler's per-call cost)",
        *(
            "   " + line
            for line in _table(
                ["% CPU", "ms/req", "calls/req", "component", "function"], frows, left=0, right=3
            )
        ),
    ]


def summary(windows: list[Window]) -> list[str]:
    """One row per path: % of server CPU by component (ours summed over packages)."""
    rows = []
    for w in windows:
        parts: dict[str, float] = defaultdict(float)
        for name, cpu in w.by_component().items():
            parts["ours" if name.startswith("ours") else name] += cpu
        rows.append(
            [w.title, f"{w.plain.rate:,.0f}", f"{w.plain.ms_per_request:.2f}"]
            + [f"{w.share(parts.get(c, 0.0)):.0f}%" for c in COMPONENTS]
        )
    return [
        "",
        "Where the server's CPU goes: % of the server's CPU by component (profiled window, "
        "less the profiler's cost); req/s and CPU ms/req from the unprofiled window",
        *_table(["path", "req/s", "ms/req", *COMPONENTS], rows, left=1),
    ]


def one_line(windows: list[Window]) -> str:
    tops = []
    for w in windows:
        parts = {k: v for k, v in w.by_component().items() if k != "unseen"}
        if parts:
            name, cpu = max(parts.items(), key=lambda kv: kv[1])
            tops.append(f"{w.path} {w.db} {name} {w.share(cpu):.0f}%")
    return f"profiled {len(windows)} paths; largest part: " + "; ".join(tops)


def parse_args(argv: list[str]) -> Settings:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="profiled window per path")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up before the window")
    parser.add_argument("--concurrency", type=int, default=16, help="calls in flight")
    parser.add_argument("--members", type=int, default=300, help="members the load spreads over")
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--only", default="", help=f"comma-separated paths of {', '.join(PATHS)}")
    parser.add_argument(
        "--exchange-members", type=int, default=1000, help="members redeeming at the exchange"
    )
    parser.add_argument("--top", type=int, default=10, help="functions shown per path")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("COALITION_TEST_PG", node_bench.PG_ADMIN_DEFAULT),
        help="admin URL of a PostgreSQL server; databases are created and dropped",
    )
    parser.add_argument("--quick", action="store_true", help="2 s windows after 1 s warm-up")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.warmup, args.members, args.exchange_members = 2.0, 1.0, 150, 400
    paths = [p.strip() for p in args.only.split(",") if p.strip()] or list(PATHS)
    unknown = sorted(set(paths) - set(PATHS))
    if unknown:
        parser.error(f"unknown path(s) {', '.join(unknown)}; known: {', '.join(PATHS)}")
    if args.concurrency < 1 or args.members < args.concurrency:
        parser.error("--concurrency must be at least 1 and at most --members")
    return Settings(
        paths=paths,
        databases=["sqlite", "postgresql"] if args.db == "both" else [args.db],
        seconds=args.seconds,
        warmup=args.warmup,
        concurrency=args.concurrency,
        members=args.members,
        exchange_members=args.exchange_members,
        top=args.top,
        pg_admin_url=args.pg_url,
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    cfg = parse_args(argv[1:])
    print(
        f"$ python {' '.join(argv)}\n"
        f"  {cfg.warmup:g} s warm-up + {cfg.seconds:g} s window per path, unprofiled then "
        "profiled, "
        f"{cfg.concurrency} in flight, {cfg.members} members; {os.cpu_count()} cores, load "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} at start\n"
        "  cProfile in the server process, every Python thread, timed by its thread's CPU "
        "clock; own times less the profiler's per-call cost (calibrated in the server)",
        flush=True,
    )
    windows, failed = asyncio.run(run(cfg))
    for w in windows:
        print("\n".join(path_report(w, cfg.top)), flush=True)
    print("\n".join(summary(windows)))
    if failed:
        print("\nFAILED (traceback on stderr):", *(f"  {f}" for f in failed), sep="\n")
    print(f"  load at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(one_line(windows) + (f"; {len(failed)} FAILED" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
