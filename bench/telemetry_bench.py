"""What metrics and tracing cost: Earn throughput through the node's real gRPC server with
telemetry off, then on (Prometheus counters and latency histograms, a SERVER span per call
exported by a BatchSpanProcessor to a JSON-lines file, /metrics served), alternating in the same
run so the machine's background load hits both alike. Each round is a node in its own spawned
process (telemetry is configured per process, by its environment) over a fresh database;
this process keeps N earns in flight with MerchantNodeClient.

    python bench/telemetry_bench.py [--seconds 5] [--rounds 3] [--concurrency 16]
                                    [--db sqlite|postgresql] [--quick]

Besides throughput it reports the server process's CPU time per earn in each mode (steadier
than throughput on a shared machine). The last line is the verdict: on / off earns per second
(aim: ≥ 0.90, a cost of ≤ 10 %).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import uuid
from multiprocessing.connection import Connection as Pipe
from typing import Any

import sqlalchemy

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from merchant_node.client import MerchantNodeClient  # noqa: E402

PG_ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
MEMBERS = 200
ON = {"COALITION_TELEMETRY": "on", "COALITION_TRACING": "on", "COALITION_METRICS_PORT": "0"}
METRICS = {"COALITION_TELEMETRY": "on", "COALITION_TRACING": "off", "COALITION_METRICS_PORT": "0"}
OFF = {"COALITION_TELEMETRY": "off"}
MODES = (("off", OFF), ("metrics", METRICS), ("on", ON))


def node_process(url: str, env: dict[str, str], pipe: Pipe) -> None:
    os.environ.update(env)

    from coalition_kernel.db import make_engine
    from merchant_node.auth.service import add_client
    from merchant_node.auth.vault import WalletKeys
    from merchant_node.ledger.commands import Enroll
    from merchant_node.ledger.earning import EarnPolicy
    from merchant_node.ledger.migrate import upgrade
    from merchant_node.ledger.service import NodeLedger
    from merchant_node.server import build_server

    async def serve() -> None:
        engine = make_engine(url, pool_size=16)
        upgrade(engine)
        ledger = NodeLedger(
            engine, policy=EarnPolicy(points_ttl_days=365), wallet_keys=WalletKeys.generate()
        )
        ledger.configure_rate("1", "1")
        for i in range(MEMBERS):
            ledger.enroll(Enroll(f"enroll-{i}", f"m-{i}"))
        server, offload = build_server(ledger, "127.0.0.1:0", workers=16)
        port = await server.start()
        pipe.send((port, add_client(engine, "bench", "pos").key))
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, pipe.recv)  # "mark": the measured window starts
        started = time.process_time()
        await loop.run_in_executor(None, pipe.recv)  # "stop"
        pipe.send(time.process_time() - started)  # this server's CPU seconds in the window
        await server.stop(1)
        offload.shutdown()
        engine.dispose()

    asyncio.run(serve())


async def drive(target: str, key: str, seconds: float, concurrency: int, mark) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    """Earns per second over `seconds`, after a one-second warm-up, and how many."""
    async with MerchantNodeClient(target, api_key=key, max_attempts=1) as pos:
        done = 0
        counting = False
        stop_at = time.monotonic() + 1 + seconds

        async def worker(w: int) -> None:
            nonlocal done
            i = 0
            while time.monotonic() < stop_at:
                member = f"m-{(w * 7919 + i) % MEMBERS}"
                await pos.earn(member, f"o-{w}-{i}-{uuid.uuid4().hex[:8]}", 1_000)
                i += 1
                if counting:
                    done += 1

        tasks = [asyncio.ensure_future(worker(w)) for w in range(concurrency)]
        await asyncio.sleep(1)
        mark()
        counting, started = True, time.monotonic()
        await asyncio.gather(*tasks)
        return done / (time.monotonic() - started), done


def fresh_database(kind: str, folder: str, name: str) -> tuple[str, Any]:
    if kind == "sqlite":
        return f"sqlite:///{folder}/{name}.db", None
    admin = sqlalchemy.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    db = f"cpx_bench_tel_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{db}"')

    def drop() -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        admin.dispose()

    return admin.url.set(database=db).render_as_string(hide_password=False), drop


def one_round(kind: str, folder: str, name: str, env: dict[str, str], args) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(earns per second, the server's CPU milliseconds per earn) of one node process."""
    url, drop = fresh_database(kind, folder, name)
    env = {**env, "COALITION_TRACE_FILE": f"{folder}/{name}-spans.jsonl"} if env is ON else env
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=node_process, args=(url, env, child))
    process.start()
    try:
        port, key = parent.recv()
        rate, done = asyncio.run(
            drive(f"127.0.0.1:{port}", key, args.seconds, args.concurrency,
                  lambda: parent.send("mark"))
        )  # fmt: skip
        parent.send("stop")
        cpu = parent.recv()
        return rate, 1000 * cpu / max(done, 1)
    finally:
        process.join(30)
        if drop is not None:
            drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--quick", action="store_true", help="2 rounds of 2 s (bench/all.py)")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rounds = 2.0, 2
    print(
        f"Earn through build_server, {args.concurrency} in flight, {args.seconds:.0f} s a round, "
        f"{args.rounds} rounds of off/metrics/on, {args.db}"
    )
    rates: dict[str, list[float]] = {mode: [] for mode, _ in MODES}
    cpu: dict[str, list[float]] = {mode: [] for mode, _ in MODES}
    with tempfile.TemporaryDirectory() as folder:
        for r in range(args.rounds):
            # The order turns every round: a cell's place in a round must not favour it.
            for mode, env in MODES[r % 3 :] + MODES[: r % 3]:
                rate, ms = one_round(args.db, folder, f"{mode}-{r}", env, args)
                rates[mode].append(rate)
                cpu[mode].append(ms)
                print(
                    f"round {r + 1} telemetry {mode:7}: {rate:8.1f} earns/s, "
                    f"server CPU {ms:.3f} ms/earn",
                    flush=True,
                )
    off, on = statistics.median(rates["off"]), statistics.median(rates["on"])
    metrics = statistics.median(rates["metrics"])
    print(f"metrics only / off = {metrics:.1f} / {off:.1f} earns/s = {metrics / off:.2f}")
    c_off, c_met, c_on = (statistics.median(cpu[m]) for m in ("off", "metrics", "on"))
    # CPU per call is what telemetry adds; it is steadier than throughput on a busy machine.
    print(
        f"server CPU per earn: off {c_off:.3f} ms, metrics {c_met:.3f} ms "
        f"(+{100 * (c_met / c_off - 1):.1f} %), metrics + tracing {c_on:.3f} ms "
        f"(+{100 * (c_on / c_off - 1):.1f} %)"
    )
    ratio = on / off if off else 0.0
    verdict = "ok" if ratio >= 0.90 else "over the aim"
    print(
        f"telemetry on / off = {on:.1f} / {off:.1f} earns/s = {ratio:.2f} "
        f"(cost {100 * (1 - ratio):.1f} %; aim ≤ 10 %: {verdict})"
    )


if __name__ == "__main__":
    main()
