"""Flash-sale purchases through the mall next to the node's plain earn rate, same run, same node.

One fresh PostgreSQL database; the merchant node as production wires it (build_server) with the
mall attached (merchant_node/mall/node.py), in its own spawned process so the load generator does
not share its GIL. Members are enrolled and funded first. Then, in rounds:

* earn: N concurrent Earn calls (one per member, a new order each) through MerchantNodeService;
* flash sale: a new item with S in stock and a limit of one per member; N concurrent BuyItem
  calls (one per member) through MallService: S sell, N - S are refused OUT_OF_STOCK.

Printed per round: calls/s over the wall time of the burst, p50/p99 latency, and the ratio of
the mall's calls/s to the earn calls/s measured just before it. Ratios, not absolute figures,
are what compare across machines and loads.

    python bench/mall_bench.py [--buyers 1000] [--stock 100] [--rounds 3] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import multiprocessing
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

import grpc
import sqlalchemy as sa
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from coalition.merchant.v1 import mall_pb2 as mpb  # noqa: E402
from coalition.merchant.v1 import (
    mall_pb2_grpc,  # noqa: E402
    merchant_node_pb2_grpc,  # noqa: E402
)
from coalition.merchant.v1 import merchant_node_pb2 as pb  # noqa: E402
from coalition_kernel.db import make_engine  # noqa: E402
from merchant_node.ledger.commands import Earn, Enroll  # noqa: E402
from merchant_node.ledger.migrate import upgrade  # noqa: E402
from merchant_node.ledger.service import NodeLedger  # noqa: E402
from merchant_node.mall.api import TokenStaffAuth  # noqa: E402
from merchant_node.mall.node import MallNode  # noqa: E402
from merchant_node.mall.service import Mall, MallSettings  # noqa: E402
from merchant_node.server import build_server  # noqa: E402
from tests.conftest import open_test_ledger  # noqa: E402

PG_ADMIN_DEFAULT = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
TOKEN_KEY = b"bench-mall-token-key-32-bytes!!!"
ADMIN = "bench-admin"


def node_process(url: str, pipe: Pipe) -> None:
    """The node (build_server, open to the bench's calls) with the mall mounted on it."""

    async def serve() -> None:
        engine = make_engine(url, pool_size=16)
        ledger = NodeLedger(engine)
        ledger.configure_rate("1", "1")
        params = inspect.signature(build_server).parameters
        extra: dict[str, Any] = {"insecure_no_auth": True} if "insecure_no_auth" in params else {}
        server, offload = build_server(ledger, "127.0.0.1:0", workers=16, **extra)
        mall = MallNode(
            Mall(ledger, MallSettings(token_key=TOKEN_KEY)),
            offload,
            TokenStaffAuth(ADMIN),
            sweep_every=None,
        )
        mall.attach(server)
        port = await server.start()
        await mall.start()
        pipe.send(port)
        await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
        await server.stop(1)
        offload.shutdown()
        engine.dispose()

    asyncio.run(serve())


@contextmanager
def spawned(url: str) -> Iterator[int]:
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    proc = ctx.Process(target=node_process, args=(url, theirs), daemon=True)
    proc.start()
    theirs.close()
    try:
        if not ours.poll(120):
            raise RuntimeError("the node did not start within 120 s")
        yield ours.recv()
    finally:
        with suppress(OSError):
            ours.send("stop")
        proc.join(30)
        if proc.is_alive():
            proc.kill()


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    name = f"mall_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class Burst:
    calls: int
    seconds: float
    latencies: list[float]
    outcomes: dict[str, int]

    @property
    def rate(self) -> float:
        return self.calls / self.seconds

    def pct(self, q: float) -> float:
        return statistics.quantiles(self.latencies, n=100)[int(q) - 1] * 1000


async def burst(calls) -> Burst:  # type: ignore[no-untyped-def]
    latencies: list[float] = []
    outcomes: dict[str, int] = {}

    async def one(call) -> None:  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            await call()
            key = "ok"
        except grpc.aio.AioRpcError as err:
            key = err.code().name
        latencies.append(time.perf_counter() - started)
        outcomes[key] = outcomes.get(key, 0) + 1

    started = time.perf_counter()
    await asyncio.gather(*(one(c) for c in calls))
    return Burst(len(calls), time.perf_counter() - started, latencies, outcomes)


async def run(url: str, port: int, buyers: int, stock: int, rounds: int) -> list[str]:
    # Members are enrolled as the tests enroll them (open_test_ledger knows the node's wallet key
    # arrangement of the day); the served node never enrolls here.
    ledger = open_test_ledger(url, pool_size=4)
    engine = ledger.engine
    mall = Mall(ledger, MallSettings(token_key=TOKEN_KEY))
    members = [f"fan-{n:05d}" for n in range(buyers)]
    tokens = {}
    for m in members:
        ledger.enroll(Enroll(f"enr-{m}", m))
        ledger.earn(Earn(f"fund-{m}", m, f"fund-{m}", 10_000_000, "POS", None))
        tokens[m] = (("authorization", f"Bearer {mall.issue_token(m, 3600)[0]}"),)
    staff = (("authorization", f"Bearer {ADMIN}"),)
    lines = []
    options = [("grpc.max_concurrent_streams", 10_000)]
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
        node = merchant_node_pb2_grpc.MerchantNodeServiceStub(channel)
        shop = mall_pb2_grpc.MallServiceStub(channel)
        admin = mall_pb2_grpc.MallAdminServiceStub(channel)
        for r in range(rounds):
            earn = await burst(
                [
                    lambda m=m, r=r: node.Earn(
                        pb.EarnRequest(
                            request_id=f"e{r}-{m}",
                            member_id=m,
                            order_id=f"o{r}-{m}",
                            amount_fen=12_345,
                        ),
                        timeout=300,
                    )
                    for m in members
                ]
            )
            item_id = f"flash-{r}"
            item = mpb.Item(
                item_id=item_id,
                kind=mpb.ITEM_KIND_COUPON,
                title="Flash",
                price_points=500,
                stock_total=stock,
                per_member_limit=1,
                coupon_value_fen=500,
                coupon_valid_days=30,
            )
            await admin.UpsertItem(
                mpb.UpsertItemRequest(request_id=f"up-{r}", item=item), metadata=staff
            )
            sale = await burst(
                [
                    lambda m=m, r=r, item_id=item_id: shop.BuyItem(
                        mpb.BuyItemRequest(request_id=f"b{r}", item_id=item_id),
                        metadata=tokens[m],
                        timeout=300,
                    )
                    for m in members
                ]
            )
            sold = sale.outcomes.get("ok", 0)
            assert sold == stock, sale.outcomes  # the bench is also a check: exactly S sold
            lines.append(
                f"round {r + 1}: earn {earn.rate:7.0f}/s p50 {earn.pct(50):6.0f} ms p99 "
                f"{earn.pct(99):6.0f} ms | flash sale {sale.rate:7.0f} buys/s p50 "
                f"{sale.pct(50):6.0f} ms p99 {sale.pct(99):6.0f} ms ({sold} sold, "
                f"{sale.calls - sold} refused) | mall/earn {sale.rate / earn.rate:.2f}x"
            )
            print(lines[-1], flush=True)
    engine.dispose()
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buyers", type=int, default=1000, help="concurrent buyers (and earns)")
    parser.add_argument("--stock", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_DEFAULT)
    parser.add_argument("--quick", action="store_true", help="200 buyers, 20 in stock, 1 round")
    args = parser.parse_args(argv)
    if args.quick:
        args.buyers, args.stock, args.rounds = 200, 20, 1
    print(
        f"mall_bench: PostgreSQL, {args.buyers} concurrent buyers, {args.stock} in stock, "
        f"{args.rounds} round(s); node in its own process (build_server + mall)",
        flush=True,
    )
    with fresh_database(args.pg_admin_url) as url:
        upgrade_engine = make_engine(url)
        upgrade(upgrade_engine)
        upgrade_engine.dispose()
        with spawned(url) as port:
            asyncio.run(run(url, port, args.buyers, args.stock, args.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
