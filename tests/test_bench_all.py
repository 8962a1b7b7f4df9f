"""bench/all.py's readers on output in each benchmark's own format (taken from real runs, trimmed
to what the readers look at), so a change to a bench's printing that its reader no longer
understands fails here rather than silently dropping a row from the issue's table."""

from __future__ import annotations

import importlib.util
import pathlib
import sys
from types import ModuleType

import pytest

BENCH = pathlib.Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def bench_all() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_all", BENCH / "all.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_all"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


XCHANGE = """\
Cross-shop redemption (authorize + capture via the acquirer's POS API); /echo = redemptions/s / gRPC echo/s, same N, back to back
db          conc  redeem/s  p50 ms  p99 ms  err  echo/s   /echo                cores
----------  ----  --------  ------  ------  ---  ------  ------  -------------------
sqlite        16      61.5   241.0   402.3    0   2,950  0.0208  0.93/0.21/0.00/0.80
postgresql    16      48.2   301.7   610.9    0   3,010  0.0160  0.88/0.20/0.00/0.90
cores: coalition process / this process / PostgreSQL / rest of the machine
Ed25519 verify (200 B, 1 thread, this process): 21,480/s

Per redemption (counting pass at N = 1): RPCs answered by the coalition's servers (incl. the POS calls), DB transactions, SQL statements, by part
  sqlite (5 redemptions):
    RPCs        6.0 (AuthorizeCrossRedemption 1.0, Authorize 1.0, Capture 1.0)
    txns        9.0 (exchange 3.0, noodles 3.0, tea 3.0)
    statements  60.2 (exchange 30.2, noodles 15.0, tea 15.0)
    the exchange's statements: SELECT authorizations 4.0, INSERT audit_log 2.0

Exchange processes over PostgreSQL ('coalition exchange serve --processes N', one port, SO_REUSEPORT); ...
exchange     conc  redeem/s  p50 ms  p99 ms  err  /1 proc  Authorize by process                cores
-----------  ----  --------  ------  ------  ---  -------  --------------------  -------------------
1 process      16      40.1   380.2   700.4    0     1.00  100%                  0.70/0.30/0.90/0.10
2 processes    16      52.3   290.0   520.8    0     1.30  51%/49%               0.90/0.30/0.80/0.00
"""

NODE = """\
Node through gRPC. /raw: node req/s / raw tx/s; /echo: node req/s / echo req/s (same db, op and concurrency, measured back to back)
db      op      conc  req/s  p50 ms  p99 ms  err  /raw  /echo                cores
------  ------  ----  -----  ------  ------  ---  ----  -----  -------------------
sqlite  earn      16    262   32.32  914.49    0  0.25   0.17  0.65/0.11/0.00/1.19
sqlite  redeem    16    152   88.48  240.89    0  0.62   0.05  0.60/0.05/0.00/1.35

Baselines. raw tx: the op's minimal writes, one DB-API transaction per call, N threads; echo: grpc.aio bytes echo
db      raw tx            conc   tx/s  p50 ms   p99 ms  err                cores  echo/s  p50 ms  p99 ms  err                cores
------  ----------------  ----  -----  ------  -------  ---  -------------------  ------  ------  ------  ---  -------------------
sqlite  earn (sqlite3)      16  1,037    0.68     8.03    0  0.00/0.37/0.00/1.51   1,541    8.89   58.87    0  0.54/0.42/0.00/1.01
sqlite  redeem (sqlite3)    16    244    3.94  1654.55    0  0.00/0.15/0.00/1.84   3,080    4.91   11.82    0  1.11/0.71/0.00/0.17

cores: server process / client (this process) / PostgreSQL / rest of the machine, averaged over the window
(for raw tx the server is the idle node; for echo, the echo server)

Ceiling: the raw tx behind a grpc.aio handler (own process, the node's worker count of threads, one connection each): the transport plus the minimal writes, nothing else. /raw: ceiling / raw tx; node/ceiling: the node's req/s / this
db      op      conc  req/s  p50 ms  p99 ms  err  /raw  node/ceiling                cores
------  ------  ----  -----  ------  ------  ---  ----  ------------  -------------------
sqlite  earn      16    601    4.98  433.85    0  0.50          0.59  0.75/0.22/0.00/0.65
sqlite  redeem    16    913    3.05  233.46    0  0.42          0.32  0.90/0.27/0.00/0.61
"""

FLOOR = """$ python bench/xchange_floor.py --quick   (2 cores, load 2.86)
  floor: 224.0 redemptions/s, p99 172.2 ms
  echo:  2,372 calls/s, p99 21.8 ms
floor 224.0 redemptions/s, echo 2,372/s, floor/echo 0.0944 at 16 in flight
"""

RULES = """\
1. Rule evaluation, pure engine (this process, one thread, no I/O)
rules                            evals/s  us/eval  lines/eval  points/eval
-------------------------------  -------  -------  ----------  -----------
base rate (BaseRateRules)        410,000      2.4         1.0          123
~50-rule program (ProgramRules)   21,500     46.5         9.1          402
ratio program/base: 0.052 (the program is 19x slower per evaluation)

2. Earn RPC through the real gRPC server, concurrency 16
ratio sqlite: program / base rate = 245 / 300 earns/s = 0.82
ratio postgresql: program / base rate = 180 / 250 earns/s = 0.72
"""

SETTLEMENT = """\
settlement of 40,000 clearing records among 20 merchants (+4,000 on the neighbouring days, skipped)
                                               best s  median s  peak Python MiB
baseline: SQL aggregate, GROUP BY               0.052     0.060              0.1
settle_period (everything below)                0.091     0.102              3.2
"""

EXPIRY = """\
== sqlite file: 20,000 due lots of 2,000 members (loaded in 1.2 s)
                                              seconds     lots/s
baseline: UPDATE lots SET remaining = 0          0.21     95,238
expire_due (batches of 5,000)                    0.38     52,632
ratio expire_due / baseline: 1.8x
"""

AFFINITY = """\
populated 50,000 clearing records, 40 shops in 4.5 s
window 30 days: 200 pairs, 200 shown, 0 suppressed (k 5), 200 suggestions
baseline GROUP BY (records, value): median 11 ms over 3
affinity (distinct members, lifts): median 29 ms over 3
affinity / baseline = 2.53x
"""

PROFILE = """\
== node Earn (base rate), sqlite: 16 in flight, 2.0 s windows
   unprofiled: 172/s, 0.39 cores, 2.30 ms CPU/req

Where the server's CPU goes: % of the server's CPU by component (profiled window, less the profiler's cost); req/s and CPU ms/req from the unprofiled window
path                                         req/s  ms/req  gRPC/asyncio  SQLAlchemy  DB driver  protobuf  crypto  logging/telemetry  ours  other  gRPC C threads  unseen
-------------------------------------------  -----  ------  ------------  ----------  ---------  --------  ------  -----------------  ----  -----  --------------  ------
node Earn (base rate), sqlite                  172    2.30           14%         35%        15%        1%      1%                 0%   13%    17%              5%      0%
exchange, cross-shop redemption, postgresql     32   10.94           12%         29%        15%        1%      7%                 1%   12%     9%             12%      1%
  load at end: 10.43 8.15 4.84
profiled 2 paths; largest part: node-earn sqlite SQLAlchemy 35%; exchange postgresql SQLAlchemy 29%
"""


def test_xchange_reader_reads_cells_counts_verify_rate_and_scaling(bench_all: ModuleType) -> None:
    rows = bench_all.read_xchange(XCHANGE)
    paths = [r[0] for r in rows]
    assert paths == [
        "cross-shop redemption, sqlite, 16 in flight",
        "cross-shop redemption, postgresql, 16 in flight",
        "  per redemption, sqlite",
        "  Ed25519 verify, 1 thread",
        "exchange ×2 processes, postgresql, 16 in flight",
    ]
    assert rows[0][1:4] == ("61.5/s, p50 241.0 ms, p99 402.3 ms", "gRPC echo 2,950/s", "0.0208")
    assert rows[2][1].startswith("6.0 RPCs, 9.0 txns (exchange 3.0")
    assert rows[4][2:4] == ("1 process 40.1/s", "1.30")


def test_node_reader_pairs_each_cell_with_its_raw_baseline(bench_all: ModuleType) -> None:
    rows = bench_all.read_node(NODE)
    assert [r[0] for r in rows] == [
        "node Earn, sqlite, 16 in flight",
        "node Redeem, sqlite, 16 in flight",
        "  earn ceiling (raw tx behind gRPC), sqlite",
        "  redeem ceiling (raw tx behind gRPC), sqlite",
    ]
    assert rows[0][1:4] == ("262/s, p99 914.49 ms", "raw sqlite3 earn tx 1,037/s", "0.25")
    assert rows[1][2] == "raw sqlite3 redeem tx 244/s"
    assert rows[2][1:4] == ("601/s = 0.50 of the raw tx", "node / ceiling", "0.59")


def test_floor_reader_reads_the_floor_and_its_echo(bench_all: ModuleType) -> None:
    rows = bench_all.read_floor(FLOOR)
    assert len(rows) == 1
    assert rows[0][1:4] == (
        "224.0/s (6 RPCs, 8 envelopes sealed + opened)",
        "gRPC echo 2,372/s",
        "0.0944",
    )


def test_rules_reader_reads_engine_and_rpc_ratios(bench_all: ModuleType) -> None:
    rows = bench_all.read_rules(RULES)
    assert rows[0][1:4] == ("21,500 evals/s (46.5 µs)", "base rate 410,000/s", "0.052")
    assert [r[0] for r in rows[1:]] == [
        "Earn with that program, sqlite",
        "Earn with that program, postgresql",
    ]
    assert rows[1][3] == "0.82"


def test_settlement_and_expiry_readers(bench_all: ModuleType) -> None:
    (settle,) = bench_all.read_settlement(SETTLEMENT)
    assert settle[:4] == (
        "settle 40,000 records, 20 merchants",
        "0.091 s",
        "SQL GROUP BY 0.052 s",
        "1.8×",
    )
    (expire,) = bench_all.read_expiry(EXPIRY)
    assert expire[:4] == ("expire 20,000 lots, sqlite", "0.38 s", "plain UPDATE 0.21 s", "1.8×")


def test_affinity_reader_reads_the_two_medians_and_the_ratio(bench_all: ModuleType) -> None:
    (row,) = bench_all.read_affinity(AFFINITY)
    assert row[:4] == (
        "affinity read, 50,000 records, 40 shops, 30-day window",
        "29 ms",
        "GROUP BY 11 ms",
        "2.53×",
    )


def test_profile_reader_reads_one_row_per_path_largest_component_first(
    bench_all: ModuleType,
) -> None:
    rows = bench_all.read_profile(PROFILE)
    assert [r[:3] for r in rows] == [
        ("node Earn (base rate), sqlite", "172", "2.30"),
        ("exchange, cross-shop redemption, postgresql", "32", "10.94"),
    ]
    assert (
        rows[0][3]
        == "SQLAlchemy 35%, other 17%, DB driver 15%, gRPC/asyncio 14%, ours 13%, gRPC C threads 5%"
    )


def test_readers_find_nothing_in_output_they_do_not_know(bench_all: ModuleType) -> None:
    for read in (
        bench_all.read_xchange, bench_all.read_node, bench_all.read_rules, bench_all.read_settlement,
        bench_all.read_expiry, bench_all.read_affinity, bench_all.read_profile,
        bench_all.read_floor,
    ):  # fmt: skip
        assert read("Traceback (most recent call last):\nRuntimeError: boom\n") == []


def test_registry_lists_the_new_benches_and_profile_rows_go_to_their_own_table(
    bench_all: ModuleType,
) -> None:
    by_name = {b.name: b for b in bench_all.REGISTRY}
    assert by_name["affinity_bench"].read is bench_all.read_affinity
    assert by_name["profile_paths"].profile and not by_name["xchange_bench"].profile
    for bench in bench_all.REGISTRY:
        assert (BENCH / f"{bench.name}.py").exists() or bench.name in {
            "marketing_bench", "mall_bench", "console_bench", "telemetry_bench",
        }  # fmt: skip
    text = bench_all.table(bench_all.read_profile(PROFILE), bench_all.PROFILE_HEAD)
    head, _rule, first, _second = text.splitlines()
    assert head.startswith("path (profiled)") and head.count(" | ") == 3  # the empty one dropped
    assert first.endswith("gRPC C threads 5%")
    figures = bench_all.table(bench_all.read_node(NODE))
    assert figures.splitlines()[0].split(" | ")[-1].strip() == "aim"
