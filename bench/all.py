"""Every benchmark, briefly, and one table of where each path stands against its baseline.

Each benchmark in REGISTRY runs as its own process (`python bench/<name>.py --quick`), one after
another, its full output kept in a log directory. Its figures are read back from that output
(each bench prints its baseline next to itself, measured in the same run) into one table: path,
now, baseline of the same run, ratio, aim. A benchmark that is not there (e.g. one another change
has yet to add) is listed as missing; one whose output this file does not know how to read is
shown with its exit status and the last line it printed. Then, after that table, a second one
from bench/profile_paths.py: for each hot path its rate and CPU per request, and where the
server's CPU goes by component.

    python bench/all.py --quick [--full-size] [--only xchange_bench,rules_bench] [--logs DIR]

--quick is the only mode: the long runs are the benches themselves, without --quick.
--full-size runs settlement and expiry at the issue's sizes (1,000,000 records, 300,000 lots)
instead of their quick sizes; everything else stays quick.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

BENCH = os.path.dirname(os.path.abspath(__file__))
Row = tuple[str, str, str, str, str]  # path, now, baseline (same run), ratio, aim
Reader = Callable[[str], list[Row]]


def _num(text: str) -> float:
    return float(text.replace(",", ""))


def read_xchange(out: str) -> list[Row]:
    rows = []
    for m in re.finditer(
        r"^(sqlite|postgresql)\s+(\d+)\s+([\d,.]+)\s+([\d.-]+)\s+([\d.-]+)\s+\d+\s+([\d,]+)\s+"
        r"([\d.-]+)",
        out,
        re.M,
    ):
        db, conc, rate, p50, p99, echo, ratio = m.groups()
        aim = "≥ 0.1, p99 < 100 ms" if db == "postgresql" else "≥ 0.1"
        rows.append(
            (
                f"cross-shop redemption, {db}, {conc} in flight",
                f"{rate}/s, p50 {p50} ms, p99 {p99} ms",
                f"gRPC echo {echo}/s",
                ratio,
                aim,
            )
        )
    counted = re.findall(
        r"^  (sqlite|postgresql) \(\d+ redemptions\):\n\s+RPCs\s+([\d.]+).*\n\s+txns\s+"
        r"([\d.]+)(.*)\n\s+statements\s+([\d.]+)",
        out,
        re.M,
    )
    for db, rpcs, txns, by_part, statements in counted:
        rows.append(
            (
                f"  per redemption, {db}",
                f"{rpcs} RPCs, {txns} txns{by_part}, {statements} statements",
                "-",
                "-",
                "3-5 txns",
            )
        )
    verify = re.search(r"Ed25519 verify .*?: ([\d,]+)/s", out)
    if verify:
        rows.append(("  Ed25519 verify, 1 thread", f"{verify[1]}/s", "-", "-", "-"))
    # Scaling: `coalition exchange serve --processes N` over PostgreSQL, against 1 process.
    cells = re.findall(
        r"^(\d+) process(?:es)?\s+(\d+)\s+([\d,.]+)\s+[\d.-]+\s+([\d.-]+)\s+\d+\s+([\d.-]+)\s+"
        r"(\S+)",
        out,
        re.M,
    )
    one = {conc: rate for n, conc, rate, *_ in cells if n == "1"}
    for n, conc, rate, p99, ratio, share in cells:
        if n != "1":
            rows.append(
                (
                    f"exchange ×{n} processes, postgresql, {conc} in flight",
                    f"{rate}/s, p99 {p99} ms, Authorize by process {share}",
                    f"1 process {one.get(conc, '?')}/s",
                    ratio,
                    f"→ {n} (cores permitting)",
                )
            )
    return rows


def read_floor(out: str) -> list[Row]:
    m = re.search(
        r"^floor ([\d,.]+) redemptions/s, echo ([\d,]+)/s, floor/echo ([\d.]+) at (\d+) in flight",
        out,
        re.M,
    )
    if not m:
        return []
    return [
        (
            f"  redemption floor, no database, one process, {m[4]} in flight",
            f"{m[1]}/s (6 RPCs, 8 envelopes sealed + opened)",
            f"gRPC echo {m[2]}/s",
            m[3],
            "the most ≥ 0.1 can reach",
        )
    ]


def read_node(out: str) -> list[Row]:
    main, _, rest = out.partition("\nBaselines.")
    ceiling = rest.partition("\nCeiling:")[2].partition("\n\n")[0]
    raw = {
        (m[1], m[2], m[4]): (m[3], m[5])
        for m in re.finditer(
            r"^(sqlite|postgresql)\s+(earn|redeem) \((\w+)\)\s+(\d+)\s+([\d,]+)", out, re.M
        )
    }
    rows = []
    for m in re.finditer(
        r"^(sqlite|postgresql)\s+(earn|redeem)\s+(\d+)\s+([\d,]+)\s+([\d.-]+)\s+([\d.-]+)\s+\d+\s+"
        r"([\d.-]+)",
        main,
        re.M,
    ):
        db, op, conc, rate, _p50, p99, ratio = m.groups()
        module, raw_rate = raw.get((db, op, conc), ("raw", "?"))
        aim = ("≥ 1.0, p99 < 25 ms" if db == "postgresql" else "≥ 0.5") if op == "earn" else "-"
        rows.append(
            (
                f"node {op.title()}, {db}, {conc} in flight",
                f"{rate}/s, p99 {p99} ms",
                f"raw {module} {op} tx {raw_rate}/s",
                ratio,
                aim,
            )
        )
    # The raw tx served over gRPC: the most a node in this stack could serve here.
    for m in re.finditer(
        r"^(sqlite|postgresql)\s+(earn|redeem)\s+(\d+)\s+([\d,]+)\s+[\d.-]+\s+[\d.-]+\s+\d+\s+"
        r"([\d.-]+)\s+([\d.-]+)",
        ceiling,
        re.M,
    ):
        db, op, conc, rate, of_raw, node = m.groups()
        rows.append(
            (
                f"  {op} ceiling (raw tx behind gRPC), {db}",
                f"{rate}/s = {of_raw} of the raw tx",
                "node / ceiling",
                node,
                "-",
            )
        )
    return rows


def read_rules(out: str) -> list[Row]:
    rows = []
    base = re.search(r"^base rate \(BaseRateRules\)\s+([\d,]+)\s+([\d.]+)", out, re.M)
    prog = re.search(r"^~50-rule program \(ProgramRules\)\s+([\d,]+)\s+([\d.]+)", out, re.M)
    if base and prog:
        rows.append(
            (
                "~50-rule program, engine alone",
                f"{prog[1]} evals/s ({prog[2]} µs)",
                f"base rate {base[1]}/s",
                f"{_num(prog[1]) / _num(base[1]):.3f}",
                "≥ 20,000 evals/s",
            )
        )
    for m in re.finditer(
        r"^ratio (\w+): program / base rate = ([\d,]+) / ([\d,]+) earns/s = ([\d.]+)", out, re.M
    ):
        rows.append(
            (
                f"Earn with that program, {m[1]}",
                f"{m[2]} earns/s",
                f"base rate {m[3]} earns/s",
                m[4],
                "≥ 0.8",
            )
        )
    return rows


def read_settlement(out: str) -> list[Row]:
    size = re.search(r"settlement of ([\d,]+) clearing records among (\d+) merchants", out)
    base = re.search(r"^baseline: SQL aggregate, GROUP BY\s+([\d.]+)", out, re.M)
    settle = re.search(r"^settle_period \(everything below\)\s+([\d.]+)", out, re.M)
    if not (size and base and settle):
        return []
    ratio = _num(settle[1]) / _num(base[1])
    return [
        (
            f"settle {size[1]} records, {size[2]} merchants",
            f"{settle[1]} s",
            f"SQL GROUP BY {base[1]} s",
            f"{ratio:.1f}×",
            "≤ 2×",
        )
    ]


def read_expiry(out: str) -> list[Row]:
    rows = []
    for m in re.finditer(
        r"^== (\S+) [^:]*: ([\d,]+) due lots.*?\n.*?\nbaseline: UPDATE lots SET remaining = 0\s+"
        r"([\d.]+).*?\nexpire_due \(batches of [\d,]+\)\s+([\d.]+)",
        out,
        re.M | re.S,
    ):
        db, lots, base, timed = m.groups()
        rows.append(
            (
                f"expire {lots} lots, {db}",
                f"{timed} s",
                f"plain UPDATE {base} s",
                f"{_num(timed) / _num(base):.1f}×",
                "≤ 2×",
            )
        )
    return rows


def read_affinity(out: str) -> list[Row]:
    size = re.search(r"^populated ([\d,]+) clearing records, (\d+) shops", out, re.M)
    window = re.search(r"^window (\d+) days: (\d+) pairs", out, re.M)
    base = re.search(r"^baseline GROUP BY .*: median (\d+) ms", out, re.M)
    read = re.search(r"^affinity \(.*\): median (\d+) ms", out, re.M)
    ratio = re.search(r"^affinity / baseline = ([\d.]+)x", out, re.M)
    if not (size and window and base and read and ratio):
        return []
    return [
        (
            f"affinity read, {size[1]} records, {size[2]} shops, {window[1]}-day window",
            f"{read[1]} ms",
            f"GROUP BY {base[1]} ms",
            f"{ratio[1]}×",
            "-",
        )
    ]


# The profile table: path, CPU ms per request (estimated without the profiler), where it goes.
PROFILE_HEAD = ("path (profiled)", "req/s", "CPU ms/req", "% of the server's CPU, parts ≥ 5%", "")


def read_profile(out: str) -> list[Row]:
    """profile_paths' summary table: one row per path, its largest components first."""
    lines = out.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("Where the server")), None)
    if start is None or start + 2 >= len(lines):
        return []
    head = re.split(r"\s{2,}", lines[start + 1].strip())
    rows = []
    for line in lines[start + 3 :]:
        cells = re.split(r"\s{2,}", line.strip())
        if not line.strip() or line.startswith(" ") or len(cells) != len(head):
            break
        shares = sorted(
            ((name, int(cell.rstrip("%"))) for name, cell in zip(head[3:], cells[3:], strict=True)),
            key=lambda kv: -kv[1],
        )
        parts = ", ".join(f"{name} {share}%" for name, share in shares if share >= 5)
        rows.append((cells[0], cells[1], cells[2], parts, ""))
    return rows


@dataclass(frozen=True)
class Bench:
    name: str  # bench/<name>.py
    args: tuple[str, ...] = ("--quick",)
    read: Reader | None = None  # None: shown by exit status and last line
    profile: bool = False  # its rows go to the profile table, after the figures
    full: tuple[str, ...] | None = None  # with --full-size: these arguments, at the size


# The order of the table. Benchmarks other changes add are picked up once their file
# exists; each must accept --quick.
REGISTRY: tuple[Bench, ...] = (
    Bench("xchange_bench", read=read_xchange),
    Bench("xchange_floor", read=read_floor),
    Bench("node_bench", read=read_node),
    Bench("rules_bench", read=read_rules),
    Bench("settlement_bench", read=read_settlement, full=("--records", "1000000", "--repeat", "3")),
    Bench(
        "expiry_bench",
        ("--quick", "--sqlite"),
        read=read_expiry,
        full=("--lots", "300000", "--sqlite"),
    ),
    Bench("marketing_bench"),
    Bench("mall_bench"),
    Bench("console_bench"),
    Bench("telemetry_bench"),
    Bench("affinity_bench", read=read_affinity),
    Bench("profile_paths", read=read_profile, profile=True),
)


def registered() -> list[Bench]:
    """REGISTRY, plus any other bench/marketing_*.py the marketing change adds."""
    known = {b.name for b in REGISTRY}
    extra = sorted(
        f[:-3]
        for f in os.listdir(BENCH)
        if f.startswith("marketing_") and f.endswith(".py") and f[:-3] not in known
    )
    return [*REGISTRY, *(Bench(name) for name in extra)]


def run(bench: Bench, logs: str, full_size: bool = False) -> tuple[list[Row], str]:
    path = os.path.join(BENCH, f"{bench.name}.py")
    if not os.path.exists(path):
        return [(bench.name, "not present", "-", "-", "-")], "missing"
    log = os.path.join(logs, f"{bench.name}.log")
    began = time.perf_counter()
    load = os.getloadavg()[0]
    with open(log, "w") as f:
        done = subprocess.run(
            [sys.executable, path, *(bench.full if full_size and bench.full else bench.args)],
            stdout=subprocess.PIPE,
            stderr=f,
            text=True,
        )
        f.write(done.stdout)
    took = f"{time.perf_counter() - began:.0f} s, load {load:.1f}→{os.getloadavg()[0]:.1f}"
    rows = bench.read(done.stdout) if bench.read and done.returncode == 0 else []
    if not rows:
        last = (done.stdout.strip().splitlines() or ["(no output)"])[-1][:60]
        status = "ran" if done.returncode == 0 else f"FAILED (exit {done.returncode})"
        rows = [(bench.name, f"{status}: {last}", "-", "-", "-")]
    return rows, f"{took}; log {log}"


FIGURES_HEAD = ("path", "now", "baseline (same run)", "ratio now", "aim")


def table(rows: list[Row], head: Row = FIGURES_HEAD) -> str:
    """Columns joined by " | "; a column with no heading and no cells is left out."""
    keep = [i for i in range(5) if head[i] or any(r[i] for r in rows)]
    widths = {i: max(len(r[i]) for r in [head, *rows]) for i in keep}
    lines = [
        " | ".join(r[i].ljust(widths[i]) for i in keep).rstrip()
        for r in [head, tuple("-" * widths.get(i, 0) for i in range(5)), *rows]
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", required=True)
    parser.add_argument("--only", default="", help="comma-separated bench names")
    parser.add_argument("--logs", default="", help="where each bench's output is kept")
    parser.add_argument(
        "--full-size",
        action="store_true",
        help="settlement (1,000,000 records) and expiry (300,000 lots) at the issue's sizes",
    )
    args = parser.parse_args(argv)
    logs = args.logs or tempfile.mkdtemp(prefix="bench_all_")
    os.makedirs(logs, exist_ok=True)
    wanted = {n.strip() for n in args.only.split(",") if n.strip()}
    rows: list[Row] = []
    profiles: list[Row] = []
    print(
        f"$ python bench/all.py --quick{' --full-size' if args.full_size else ''}   "
        f"({os.cpu_count()} cores, load "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} at start)",
        flush=True,
    )
    for bench in registered():
        if wanted and bench.name not in wanted:
            continue
        print(f"  {bench.name} ...", end=" ", flush=True)
        found, how = run(bench, logs, args.full_size)
        print(how, flush=True)
        if bench.profile:
            profiles += found
        else:
            rows += found
    if rows:
        print()
        print(table(rows))
    if profiles:
        print()
        print(table(profiles, PROFILE_HEAD))
    print(f"\nload at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; logs in {logs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
