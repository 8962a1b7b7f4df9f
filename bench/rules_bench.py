"""What a realistic ~50-rule earning program costs, next to the base rate, in one run.

1. Engine: `ProgramRules(program).evaluate(...)` of a ~50-rule program (one spend_brackets, 22
   category and 15 SKU multipliers, a tier multiplier, a first-purchase bonus, a birthday
   multiplier, 8 time windows, caps, budget pools, exclusions) on purchases of 10 line items,
   against `BaseRateRules().evaluate(...)` on the same purchases. Pure Python, this process,
   no I/O; the two are timed in alternating slices so a change of machine load hits both.
2. Earn RPC: the merchant node's real gRPC server in its own spawned process (the client must
   not share its GIL), wired as production wires it, on a fresh database each cell: once with
   the program applied, once without (base rate alone), on SQLite and on PostgreSQL. An asyncio
   client (MerchantNodeClient, one channel) keeps N earns in flight, spread round robin over the
   members, every order id unique. Before the warm-up each member earns once (not measured), so
   the measured earns are returning members' (no first-purchase bonus, tier already set).

Every purchase is dated at the same local wall-clock time (by default the latest Saturday 19:30
in the program's time zone), so the same time windows fire whenever the bench runs.

    python bench/rules_bench.py [--seconds 5] [--warmup 1] [--concurrency 16] [--members 500]
        [--db sqlite|postgresql|both] [--only engine|rpc] [--profile 25]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import itertools
import multiprocessing
import os
import platform
import pstats
import random
import shlex
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from multiprocessing.connection import Connection as Pipe
from zoneinfo import ZoneInfo

import grpc
import psycopg2
import sqlalchemy
from sqlalchemy.engine import make_url

from coalition.merchant.v1 import merchant_node_pb2 as pb
from coalition_kernel.db import make_engine
from coalition_kernel.points import Rate
from merchant_node.auth.service import add_client
from merchant_node.auth.vault import WalletKeys
from merchant_node.client import MerchantNodeClient
from merchant_node.ledger.commands import Enroll
from merchant_node.ledger.migrate import upgrade
from merchant_node.ledger.service import NodeLedger
from merchant_node.rules.base import BaseRateRules, LineItem, Purchase
from merchant_node.rules.engine import MemberContext, ProgramRules
from merchant_node.rules.program import Program, load_program
from merchant_node.server import build_server

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PG_ADMIN_DEFAULT = "postgresql://postgres@127.0.0.1:5432/postgres"
TIMEZONE = "Asia/Shanghai"
RATE = Rate(1, Fraction(1), Fraction(1))  # what configure_rate("1", "1") makes: version 1
CLK_TCK = os.sysconf("SC_CLK_TCK")
BASKETS = 64  # distinct purchases, cycled
ITEMS_PER_BASKET = 10
CAP_PER_ORDER = 200_000  # far above what a bench basket earns: the caps are computed, not cut
CAP_PER_DAY = 5_000_000
BASE, PROGRAM = "base rate", "program"
POOL_BUDGET = 10**12  # never runs dry within a run: every pooled line is granted in full

# -- the program -------------------------------------------------------------------------------

# 20 category rules of one category each (one paused) and 2 over four categories each; 15 SKU
# rules promoting 1-3 SKUs each (30 SKUs in all).
# fmt: off
CATEGORIES = [
    "produce", "dairy", "bakery", "meat", "seafood", "frozen", "snacks", "beverages", "coffee",
    "tea", "wine", "household", "personal_care", "baby", "pet", "stationery", "electronics",
    "apparel", "toys", "health",
]
# fmt: on
UNPROMOTED = ["grocery", "kitchenware", "deli", "cereal"]  # categories no rule names
EXCLUDED_CATEGORIES = ["gift_card", "tobacco"]
MULTIPLIERS = ["1.2", "1.5", "2", "3/2", "1.25", "3", "1.1", "2.5"]
SKU_RULES = 15
SKU_GROUPS = [[f"SKU-P{r:02d}{k}" for k in range(1 + r % 3)] for r in range(SKU_RULES)]
PROMOTED_SKUS = [sku for group in SKU_GROUPS for sku in group]


def program_yaml(day: datetime) -> str:
    """The ~50-rule program, as a merchant writes it. `day` is the local date the bench's
    purchases fall on: the campaign dates are set around it, so what fires does not drift."""
    d = day.date()
    lines = [
        "base: {rounding: floor}",
        f"timezone: {TIMEZONE}",
        "exclusions:",
        f"  categories: [{', '.join(EXCLUDED_CATEGORIES)}]",
        "  skus: [SKU-DEPOSIT, SKU-BAG]",
        "  exclude_points_paid: true",
        "pending_days: 7",
        "rules:",
        "  - id: spend_tiers",
        "    type: spend_brackets",
        "    mode: marginal",
        "    brackets:",
        '      - {up_to_yuan: 500, points_per_yuan: "1"}',
        '      - {up_to_yuan: 2000, points_per_yuan: "1.5"}',
        '      - {points_per_yuan: "2"}',
    ]
    for i, category in enumerate(CATEGORIES):
        pool = ", budget_pool: category_pool" if i < 3 else ""
        off = ", enabled: false" if category == "electronics" else ""  # a promotion paused
        lines.append(
            f"  - {{id: cat_{category}, type: category_multiplier, categories: [{category}], "
            f'multiplier: "{MULTIPLIERS[i % len(MULTIPLIERS)]}"{pool}{off}}}'
        )
    lines += [  # two promotions over several categories each
        "  - {id: fresh_week, type: category_multiplier, categories: [produce, meat, seafood, "
        'dairy], multiplier: "1.5", budget_pool: category_pool}',
        "  - {id: drinks_festival, type: category_multiplier, categories: [beverages, coffee, "
        'tea, wine], multiplier: "2"}',
    ]
    for r, group in enumerate(SKU_GROUPS):
        pool = ", budget_pool: sku_pool" if r < 2 else ""
        lines.append(
            f"  - {{id: sku_promo_{r:02d}, type: sku_multiplier, skus: [{', '.join(group)}], "
            f'multiplier: "{MULTIPLIERS[(r + 3) % len(MULTIPLIERS)]}"{pool}}}'
        )
    later = [(d + timedelta(days=k)).isoformat() for k in (14, 15)]
    window = (day - timedelta(days=10)).isoformat(), (day + timedelta(days=20)).isoformat()
    lines += [
        '  - {id: member_tier, type: tier_multiplier, tiers: {silver: "1.1", gold: "1.5", '
        'platinum: "2"}}',
        "  - {id: first_order, type: first_purchase_bonus, points: 100}",
        '  - {id: birthday_double, type: birthday_multiplier, multiplier: "2"}',
        # The eight time windows; at the bench's Saturday 19:30 the 1st, 3rd, 5th and 7th fire.
        '  - {id: weekend_double, type: time_window, multiplier: "2", days_of_week: [sat, sun], '
        "budget_pool: weekend_pool}",
        "  - {id: weekday_lunch, type: time_window, bonus_points: 20, "
        'days_of_week: [mon, tue, wed, thu, fri], hours: {from: "11:30", to: "13:30"}}',
        '  - {id: evening_happy_hour, type: time_window, multiplier: "1.5", '
        'hours: {from: "19:00", to: "21:00"}}',
        '  - {id: night_owl, type: time_window, bonus_points: 10, hours: {from: "22:00", '
        'to: "02:00"}}',
        '  - {id: member_month, type: time_window, multiplier: "1.2", '
        f"starts_at: {window[0]}, ends_at: {window[1]}, budget_pool: campaign_pool}}",
        f"  - {{id: holiday_evenings, type: time_window, bonus_points: 50, dates: [{later[0]}, "
        f'{later[1]}], hours: {{from: "18:00", to: "22:00"}}, budget_pool: holiday_pool}}',
        f'  - {{id: flash_sale, type: time_window, multiplier: "3", dates: [{d.isoformat()}], '
        'hours: {from: "19:00", to: "20:00"}, budget_pool: flash_pool}',
        "  - {id: national_day, type: time_window, enabled: false, bonus_points: 88, "
        f"dates: [{later[0]}], budget_pool: holiday_pool}}",
        f"caps: {{per_order: {CAP_PER_ORDER}, per_member_per_day: {CAP_PER_DAY}}}",
        "budget_pools:",
    ]
    for pool in ("category_pool", "sku_pool", "weekend_pool", "campaign_pool", "holiday_pool"):
        lines.append(f"  - {{id: {pool}, points: {POOL_BUDGET}}}")
    lines += [
        f"  - {{id: flash_pool, points: {POOL_BUDGET}}}",
        "engagement:",
        "  check_in: {points: 5, streak_bonuses: {7: 30}, cycle_days: 7}",
        "  review: {points: 20, daily_limit: 1}",
        "tiers:",
        "  measure: spend_12m",
        "  levels:",
        "    - {id: silver, threshold: 0}",
        "    - {id: gold, threshold: 2000000, upgrade_cost_points: 1000}",
        "    - {id: platinum, threshold: 10000000}",
    ]
    return "\n".join(lines) + "\n"


def rule_mix(program: Program) -> str:
    kinds = Counter(type(rule).__name__ for rule in program.rules)
    enabled = sum(rule.enabled for rule in program.rules)
    return (
        f"{len(program.rules)} rules ({enabled} enabled): "
        + ", ".join(f"{n} {kind}" for kind, n in kinds.items())
        + f"; {len(program.budget_pools)} pools; caps; exclusions"
    )


# -- purchases ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Basket:
    items: tuple[LineItem, ...]

    @property
    def amount_fen(self) -> int:
        return sum(item.quantity * item.unit_price_fen for item in self.items)

    def proto(self) -> list[pb.LineItem]:
        return [
            pb.LineItem(
                sku=i.sku, category=i.category, quantity=i.quantity, unit_price_fen=i.unit_price_fen
            )
            for i in self.items
        ]


def baskets(count: int, seed: int = 20260314) -> list[Basket]:
    """10 items each: 3 promoted SKUs, 5 in promoted categories, 1 in a category no rule names,
    1 excluded (a gift card or a deposit); 5-100 yuan a unit, 1-3 units."""
    rnd = random.Random(seed)
    made = []
    for _ in range(count):
        items = []
        for _ in range(3):
            items.append((rnd.choice(PROMOTED_SKUS), rnd.choice(CATEGORIES + UNPROMOTED)))
        for _ in range(5):
            items.append((f"SKU-{rnd.randrange(10_000):04d}", rnd.choice(CATEGORIES)))
        items.append((f"SKU-{rnd.randrange(10_000):04d}", rnd.choice(UNPROMOTED)))
        items.append(rnd.choice([("SKU-GC-100", "gift_card"), ("SKU-DEPOSIT", "deli")]))
        made.append(
            Basket(
                tuple(
                    LineItem(sku, category, rnd.randint(1, 3), rnd.randrange(500, 10_000, 10))
                    for sku, category in items[:ITEMS_PER_BASKET]
                )
            )
        )
    return made


def bench_moment(now: datetime | None = None) -> datetime:
    """The latest Saturday 19:30 in the program's zone at least 10 minutes ago, in UTC."""
    local = (now or datetime.now(UTC)).astimezone(ZoneInfo(TIMEZONE))
    moment = local.replace(hour=19, minute=30, second=0, microsecond=0)
    moment -= timedelta(days=(moment.weekday() - 5) % 7)
    if moment > local - timedelta(minutes=10):
        moment -= timedelta(days=7)
    return moment.astimezone(UTC)


# -- 1. the engine -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    purchase: Purchase
    member: MemberContext


def engine_cases(moment: datetime) -> list[Case]:
    month = moment.astimezone(ZoneInfo(TIMEZONE)).month
    other = month % 12 + 1
    members = [  # a returning silver member is the common case; a few of each other kind
        MemberContext("silver", False, other, 0),
        MemberContext("silver", False, None, 4_000),
        MemberContext("gold", False, month, 9_000),  # birthday month
        MemberContext("platinum", False, other, 20_000),
        MemberContext("silver", True, None, 0),  # first purchase
        MemberContext(None, False, None, 0),  # no tier yet
        MemberContext("gold", False, other, CAP_PER_DAY - 3_000),  # the daily cap cuts
        MemberContext("silver", False, other, 1_000),
    ]
    return [
        Case(
            Purchase(f"m{k}", f"o{k}", basket.amount_fen, "POS", moment, basket.items),
            members[k % len(members)],
        )
        for k, basket in enumerate(baskets(BASKETS))
    ]


def _run_for(evaluate: Callable[[Case], object], cases: list[Case], budget: float) -> int:
    count, deadline = 0, time.perf_counter() + budget
    while time.perf_counter() < deadline:
        for case in cases:
            evaluate(case)
        count += len(cases)
    return count


@dataclass
class EngineResult:
    base_rate: float
    program_rate: float
    base_lines: float
    program_lines: float
    program_points: float
    base_points: float
    load_program_ms: float
    digest_ms: float
    cut_by_cap: int
    pool_draws: float
    load: tuple[float, float]


def bench_engine(text: str, cases: list[Case], seconds: float, rounds: int = 5) -> EngineResult:
    started = time.perf_counter()
    for _ in range(20):
        program = load_program(text)
    load_ms = (time.perf_counter() - started) / 20 * 1000
    started = time.perf_counter()
    for _ in range(20):
        rules = ProgramRules(program)  # no version given: computes the program's digest
    digest_ms = (time.perf_counter() - started) / 20 * 1000
    base = BaseRateRules()

    def program_eval(case: Case) -> object:
        return rules.evaluate(case.purchase, RATE, case.member)

    def base_eval(case: Case) -> object:
        return base.evaluate(case.purchase, RATE)

    program_results = [rules.evaluate(c.purchase, RATE, c.member) for c in cases]
    base_results = [base.evaluate(c.purchase, RATE) for c in cases]
    _run_for(program_eval, cases, 0.3)  # warm-up
    _run_for(base_eval, cases, 0.3)
    load_before = os.getloadavg()[0]
    counts, spent = {"base": 0, "program": 0}, {"base": 0.0, "program": 0.0}
    for _ in range(rounds):  # alternate slices: a change in machine load hits both alike
        for name, fn in (("base", base_eval), ("program", program_eval)):
            began = time.perf_counter()
            counts[name] += _run_for(fn, cases, seconds / 2 / rounds)
            spent[name] += time.perf_counter() - began
    n = len(cases)
    return EngineResult(
        base_rate=counts["base"] / spent["base"],
        program_rate=counts["program"] / spent["program"],
        base_lines=sum(len(r.breakdown) for r in base_results) / n,
        program_lines=sum(len(r.breakdown) for r in program_results) / n,
        program_points=sum(r.points for r in program_results) / n,
        base_points=sum(r.points for r in base_results) / n,
        load_program_ms=load_ms,
        digest_ms=digest_ms,
        cut_by_cap=sum(
            any(x.rule_id.startswith("cap_") for x in r.breakdown) for r in program_results
        ),
        pool_draws=sum(len(r.pool_draws) for r in program_results) / n,
        load=(load_before, os.getloadavg()[0]),
    )


def profile_engine(text: str, cases: list[Case], top: int, repeat: int = 50) -> str:
    rules = ProgramRules(load_program(text))
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(repeat):
        for case in cases:
            rules.evaluate(case.purchase, RATE, case.member)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return f"cProfile of {repeat * len(cases):,} program evaluations\n" + out.getvalue()


# -- 2. the Earn RPC ---------------------------------------------------------------------------


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
    """CPU by pid of the PostgreSQL server's own processes and of `database`'s backends."""
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
        except OSError:
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

    @classmethod
    def take(cls, server_pid: int, database: str | None) -> CpuSnapshot:
        times = os.times()
        return cls(
            time.perf_counter(),
            _process_cpu(server_pid),
            times.user + times.system,
            _postgres_cpu(database) if database else {},
            _machine_busy(),
        )


def cores_between(before: CpuSnapshot, after: CpuSnapshot) -> tuple[float, ...]:
    """Cores busy on average: server process / this process / PostgreSQL / rest of machine."""
    wall = after.wall - before.wall
    server = (after.server - before.server) / wall
    client = (after.client - before.client) / wall
    pg = sum(cpu - before.postgres.get(pid, 0.0) for pid, cpu in after.postgres.items()) / wall
    rest = max(0.0, (after.machine - before.machine) / wall - server - client - pg)
    return server, client, pg, rest


@dataclass
class Sample:
    db: str
    variant: str
    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    rule_ids: Counter[str] = field(default_factory=Counter)
    lines: int = 0
    points: int = 0
    cores: tuple[float, ...] = ()
    round: int = 1
    load: tuple[float, float] = (0.0, 0.0)
    setup_seconds: float = 0.0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    @property
    def cores_text(self) -> str:
        return "/".join(f"{c:.2f}" for c in self.cores) or "-"

    @property
    def server_ms_per_earn(self) -> str:
        """CPU the server process spent per earn (all its threads)."""
        return f"{self.cores[0] * 1000 / self.rate:.1f}" if self.cores and self.rate else "-"

    def ms(self, q: float) -> str:
        if not self.latencies:
            return "-"
        ordered = sorted(self.latencies)
        return f"{ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000:.1f}"


@dataclass(frozen=True)
class Settings:
    seconds: float
    warmup: float
    concurrency: int
    members: int
    databases: list[str]
    pool_size: int
    pg_admin_url: str
    engine_seconds: float
    only: str | None
    profile: int
    rounds: int

    @property
    def member_ids(self) -> list[str]:
        return [f"bench-member-{k:04d}" for k in range(self.members)]


async def _until_told_to_stop(pipe: Pipe) -> None:
    await asyncio.get_running_loop().run_in_executor(None, pipe.recv)


def node_process(
    url: str, program: str | None, members: list[str], pool_size: int, pipe: Pipe
) -> None:
    """The node as production wires it, members enrolled through the ledger beforehand."""

    async def serve() -> None:
        engine = make_engine(url, pool_size=pool_size)
        upgrade(engine)
        ledger = NodeLedger(engine, wallet_keys=WalletKeys.generate())
        ledger.configure_rate("1", "1")
        if program is not None:
            ledger.apply_program(program, "bench")
        for k, member in enumerate(members):  # one member in 12 has a birthday this month
            ledger.enroll(Enroll(f"enroll-{member}", member, birth_month=k % 12 + 1))
        server, offload = build_server(ledger, "127.0.0.1:0", workers=pool_size)
        # The POS's API key, as production requires one.
        pipe.send((await server.start(), add_client(engine, "bench", "pos,read").key))
        await _until_told_to_stop(pipe)
        await server.stop(1)
        offload.shutdown()
        engine.dispose()

    asyncio.run(serve())


@contextmanager
def server_process(*args: object) -> Iterator[tuple[int, tuple[int, str]]]:
    """Runs node_process(*args, pipe) in a spawned process; yields (pid, (port, API key)) once
    it listens."""
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    proc = ctx.Process(target=node_process, args=(*args, theirs), daemon=True)
    proc.start()
    theirs.close()
    try:
        if not ours.poll(300):
            raise RuntimeError("the node did not start listening within 300 s")
        try:
            port = ours.recv()
        except EOFError:
            proc.join(5)
            raise RuntimeError(f"the node exited with code {proc.exitcode}") from None
        assert proc.pid is not None
        yield proc.pid, port
    finally:
        with suppress(OSError):
            ours.send("stop")
        proc.join(30)
        if proc.is_alive():
            proc.kill()
            proc.join()


@contextmanager
def fresh_database(db: str, pg_admin_url: str) -> Iterator[tuple[str, str | None]]:
    """A new, empty database: (SQLAlchemy URL, PostgreSQL database name or None); dropped after."""
    if db == "sqlite":
        with tempfile.TemporaryDirectory(prefix="rules_bench_") as tmp:
            yield f"sqlite:///{os.path.join(tmp, 'node.db')}", None
        return
    admin_url = make_url(pg_admin_url)
    name = f"rules_bench_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(**admin_url.translate_connect_args(username="user", database="dbname"))
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        try:
            url = admin_url.set(drivername="postgresql+psycopg2", database=name)
            yield url.render_as_string(hide_password=False), name
        finally:
            with admin.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()


async def run_cell(
    db: str,
    variant: str,
    program: str | None,
    cfg: Settings,
    moment: datetime,
    carts: list[Basket],
) -> Sample:
    sample = Sample(db, variant, cfg.seconds)
    members = cfg.member_ids
    items = [cart.proto() for cart in carts]
    tag = uuid.uuid4().hex[:6]
    with (
        fresh_database(db, cfg.pg_admin_url) as (url, database),
        server_process(url, program, members, cfg.pool_size) as (pid, (port, key)),
    ):
        client = MerchantNodeClient(f"127.0.0.1:{port}", api_key=key)
        try:
            began = time.perf_counter()
            gate = asyncio.Semaphore(cfg.concurrency)

            async def first(k: int, member: str) -> None:
                async with gate:
                    cart = carts[k % len(carts)]
                    await client.earn(
                        member,
                        f"first-{tag}-{k}",
                        cart.amount_fen,
                        line_items=items[k % len(carts)],
                        occurred_at=moment,
                    )

            await asyncio.gather(*(first(k, m) for k, m in enumerate(members)))
            sample.setup_seconds = time.perf_counter() - began
            await _drive(client, sample, cfg, moment, carts, items, pid, database, tag)
        finally:
            await client.close()
    return sample


async def _drive(
    client: MerchantNodeClient,
    sample: Sample,
    cfg: Settings,
    moment: datetime,
    carts: list[Basket],
    items: list[list[pb.LineItem]],
    pid: int,
    database: str | None,
    tag: str,
) -> None:
    """N tasks earning back to back; what ends inside the window after the warm-up counts."""
    members, seq = cfg.member_ids, itertools.count()
    start = time.perf_counter() + cfg.warmup
    end = start + cfg.seconds

    async def worker() -> None:
        while time.perf_counter() < end:
            i = next(seq)
            cart = i % len(carts)
            began = time.perf_counter()
            try:
                res = await client.earn(
                    members[i % len(members)],
                    f"o-{tag}-{i}",
                    carts[cart].amount_fen,
                    line_items=items[cart],
                    occurred_at=moment,
                )
            except grpc.aio.AioRpcError as exc:
                if start <= time.perf_counter() < end:
                    sample.errors[exc.code().name] += 1
                continue
            now = time.perf_counter()
            if start <= now < end:
                sample.latencies.append(now - began)
                sample.rule_ids.update(line.rule_id for line in res.breakdown)
                sample.lines += len(res.breakdown)
                sample.points += res.points_earned

    async def measure() -> None:
        await asyncio.sleep(start - time.perf_counter())
        before, load = CpuSnapshot.take(pid, database), os.getloadavg()[0]
        await asyncio.sleep(end - time.perf_counter())
        sample.cores = cores_between(before, CpuSnapshot.take(pid, database))
        sample.load = (load, os.getloadavg()[0])

    measuring = asyncio.create_task(measure())
    await asyncio.gather(*(worker() for _ in range(cfg.concurrency)))
    await measuring


async def bench_rpc(cfg: Settings, program: str, moment: datetime) -> list[Sample]:
    """Per database and round: the base-rate cell, then the program's, back to back."""
    carts, samples = baskets(BASKETS), []
    for db in cfg.databases:
        for round_ in range(1, cfg.rounds + 1):
            for variant, text in ((BASE, None), (PROGRAM, program)):
                sample = await run_cell(db, variant, text, cfg, moment, carts)
                sample.round = round_
                samples.append(sample)
                print(
                    f"  {db:<10} {variant:<9} {sample.rate:>7,.0f} earns/s  p50 {sample.ms(0.5)}"
                    f" ms  errors {sum(sample.errors.values())}  cores {sample.cores_text}"
                    f"  load {sample.load[0]:.2f}->{sample.load[1]:.2f}",
                    file=sys.stderr,
                    flush=True,
                )
    return samples


# -- report ------------------------------------------------------------------------------------


def _table(head: list[str], rows: list[list[str]], left: int) -> list[str]:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [line(head), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def _postgres_version(pg_admin_url: str) -> str:
    url = make_url(pg_admin_url)
    try:
        conn = psycopg2.connect(**url.translate_connect_args(username="user", database="dbname"))
    except psycopg2.Error as exc:
        return f"unreachable ({str(exc).strip().splitlines()[0]})"
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_setting('server_version')")
            return cur.fetchone()[0].split()[0]
    finally:
        conn.close()


def _code_version() -> str:
    def git(*args: str) -> str:
        run = subprocess.run(["git", *args], capture_output=True, text=True, cwd=REPO)
        return run.stdout.strip()

    changed = len(git("status", "--porcelain", "--untracked-files=no").splitlines())
    return f"{git('rev-parse', '--short', 'HEAD') or '?'} + {changed} modified tracked file(s)"


def header(cfg: Settings, argv: Sequence[str], program: Program, moment: datetime) -> str:
    carts = baskets(BASKETS)
    machine = [
        f"{os.cpu_count()} cores",
        f"Python {platform.python_version()}",
        f"grpcio {grpc.__version__}",
        f"SQLAlchemy {sqlalchemy.__version__}",
        f"SQLite {sqlite3.sqlite_version}",
        f"psycopg2 {psycopg2.__version__.split()[0]}",
        f"PostgreSQL {_postgres_version(cfg.pg_admin_url)}",
    ]
    local = moment.astimezone(ZoneInfo(TIMEZONE))
    return "\n".join(
        [
            f"$ {shlex.join(['python', *argv])}",
            f"  program: {rule_mix(program)}",
            f"  purchases: {BASKETS} baskets of {ITEMS_PER_BASKET} line items "
            f"(3 promoted SKUs, 5 promoted categories, 1 other, 1 excluded), "
            f"avg {sum(c.amount_fen for c in carts) / len(carts) / 100:,.2f} yuan; "
            f"dated {local:%a %Y-%m-%d %H:%M} {TIMEZONE}",
            f"  engine: {cfg.engine_seconds:g} s in all, base and program in alternating "
            "slices; 8 member contexts cycled (tiers, birthday, first purchase, a capped day)",
            f"  rpc: {cfg.warmup:g} s warm-up + {cfg.seconds:g} s measured per cell, "
            f"{cfg.rounds} round(s) of base rate then program per db; "
            f"concurrency {cfg.concurrency}; {cfg.members} members (round robin, one earn each "
            f"before the warm-up); make_engine(pool_size={cfg.pool_size}); "
            f"build_server(workers={cfg.pool_size}); a fresh database per cell; "
            f"db {', '.join(cfg.databases)}",
            f"  machine: {'; '.join(machine)}; code {_code_version()}",
            f"  load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        ]
    )


def engine_report(r: EngineResult) -> list[str]:
    rows = [
        [
            "base rate (BaseRateRules)",
            f"{r.base_rate:,.0f}",
            f"{1e6 / r.base_rate:.1f}",
            f"{r.base_lines:.1f}",
            f"{r.base_points:,.0f}",
        ],
        [
            "~50-rule program (ProgramRules)",
            f"{r.program_rate:,.0f}",
            f"{1e6 / r.program_rate:.1f}",
            f"{r.program_lines:.1f}",
            f"{r.program_points:,.0f}",
        ],
    ]
    return [
        "",
        "1. Rule evaluation, pure engine (this process, one thread, no I/O)",
        *_table(["rules", "evals/s", "us/eval", "lines/eval", "points/eval"], rows, left=1),
        f"ratio program/base: {r.program_rate / r.base_rate:.3f} "
        f"(the program is {r.base_rate / r.program_rate:.0f}x slower per evaluation)",
        f"program: {r.pool_draws:.1f} pool draws/eval; {r.cut_by_cap} of {BASKETS} cases cut "
        f"by a cap; one-off costs: load_program {r.load_program_ms:.1f} ms, "
        f"ProgramRules() without a version (digest) {r.digest_ms:.2f} ms",
        f"load average (1 min) {r.load[0]:.2f} before, {r.load[1]:.2f} after",
    ]


def rpc_report(samples: list[Sample], cfg: Settings) -> list[str]:
    rows = []
    for s in samples:
        fired = len(s.latencies) or 1
        rows.append(
            [s.db, s.variant, str(s.round), f"{s.rate:,.0f}", s.ms(0.5), s.ms(0.99)]
            + [str(sum(s.errors.values())), f"{s.lines / fired:.1f}", f"{s.points / fired:,.0f}"]
            + [s.server_ms_per_earn, s.cores_text, f"{s.load[0]:.2f}-{s.load[1]:.2f}"]
        )
    head = ["db", "program", "round", "earns/s", "p50 ms", "p99 ms", "err", "lines", "points"]
    head += ["srv cpu ms/earn", "cores", "load1"]
    out = [
        "",
        f"2. Earn RPC through the real gRPC server, concurrency {cfg.concurrency}",
        *_table(head, rows, left=2),
    ]
    for db in cfg.databases:
        base = [s for s in samples if s.db == db and s.variant == BASE]
        prog = [s for s in samples if s.db == db and s.variant == PROGRAM]
        base_rate = sum(len(s.latencies) for s in base) / (sum(s.seconds for s in base) or 1)
        prog_rate = sum(len(s.latencies) for s in prog) / (sum(s.seconds for s in prog) or 1)
        if base_rate:
            out.append(
                f"ratio {db}: {PROGRAM} / {BASE} = {prog_rate:,.0f} / {base_rate:,.0f} earns/s "
                f"= {prog_rate / base_rate:.2f}"
                + (f" (all {len(base)} rounds pooled)" if len(base) > 1 else "")
            )
    out += [
        "lines, points: breakdown lines and points per earn; srv cpu ms/earn: the server "
        "process's CPU per earn; cores: server process / client (this process) / PostgreSQL / "
        "rest of the machine, averaged over the window; load1: 1-minute load average at the "
        "window's start-end",
    ]
    for s in samples:
        if s.variant == PROGRAM and s.rule_ids:
            cut = sorted(r for r in s.rule_ids if r.startswith(("cap_", "budget_pool:")))
            out.append(
                f"{s.db} round {s.round}: {len(s.rule_ids)} distinct breakdown lines fired; "
                f"cut by caps or pools: {', '.join(cut) or 'none'}; "
                f"setup (one earn per member) {s.setup_seconds:.1f} s"
            )
    failures = [
        f"  {s.db} {s.variant} round {s.round}: {dict(s.errors)}" for s in samples if s.errors
    ]
    if failures:
        out += ["Errors in the measured windows (not counted in the rates):", *failures]
    return out


def parse_args(argv: list[str]) -> Settings:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per cell")
    parser.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per cell")
    parser.add_argument("--concurrency", type=int, default=16, help="earns in flight")
    parser.add_argument("--members", type=int, default=500, help="members earns are spread over")
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--pool-size", type=int, default=16, help="DB pool and worker threads")
    parser.add_argument("--rounds", type=int, default=1, help="base/program cell pairs per db")
    parser.add_argument("--engine-seconds", type=float, default=4.0, help="engine bench, in all")
    parser.add_argument("--only", choices=["engine", "rpc"], help="run one part only")
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="also print the top N functions of a cProfile of the program's evaluation",
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("COALITION_TEST_PG", PG_ADMIN_DEFAULT),
        help="admin URL of a PostgreSQL server; the bench creates and drops its own databases",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a short run for bench/all.py: 2 s cells"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.warmup, args.engine_seconds, args.members = 2.0, 0.5, 2.0, 100
    if args.concurrency < 1 or args.members < args.concurrency:
        parser.error("--concurrency must be at least 1 and at most --members")
    return Settings(
        seconds=args.seconds,
        warmup=args.warmup,
        concurrency=args.concurrency,
        members=args.members,
        databases=["sqlite", "postgresql"] if args.db == "both" else [args.db],
        pool_size=args.pool_size,
        pg_admin_url=args.pg_url,
        engine_seconds=args.engine_seconds,
        only=args.only,
        profile=args.profile,
        rounds=args.rounds,
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv if argv is None else argv
    cfg = parse_args(argv[1:])
    moment = bench_moment()
    text = program_yaml(moment.astimezone(ZoneInfo(TIMEZONE)))
    program = load_program(text)
    print(header(cfg, argv, program, moment), flush=True)
    out: list[str] = []
    cases = engine_cases(moment)
    if cfg.only != "rpc":
        print("engine ...", file=sys.stderr, flush=True)
        out += engine_report(bench_engine(text, cases, cfg.engine_seconds))
        print("\n".join(out), flush=True)
    if cfg.only != "engine":
        print("rpc cells ...", file=sys.stderr, flush=True)
        rpc = rpc_report(asyncio.run(bench_rpc(cfg, text, moment)), cfg)
        print("\n".join(rpc), flush=True)
    if cfg.profile:
        print("", profile_engine(text, cases, cfg.profile), sep="\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
