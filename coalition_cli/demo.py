"""`coalition demo`: a local node on SQLite, a short story over real gRPC, then a clean stop."""

from __future__ import annotations

import pathlib
import tempfile

import grpc

from coalition_kernel.errors import error_info_of
from merchant_node.client import MerchantNodeClient
from merchant_node.config import NodeConfig
from merchant_node.runtime import init_node, open_ledger
from merchant_node.server import build_server


def _yuan(fen: int) -> str:
    return f"¥{fen // 100}.{fen % 100:02d}"


async def run_demo() -> int:
    with tempfile.TemporaryDirectory(prefix="coalition-demo-") as tmp:
        directory = pathlib.Path(tmp) / "tea-house"
        config_path = init_node(
            directory,
            NodeConfig(
                merchant_id="tea-house",
                database_url=f"sqlite:///{directory / 'node.db'}",
                points_per_yuan="1",
                fen_per_point="1",
            ),
        )
        ledger = open_ledger(NodeConfig.load(config_path))
        server, offload = build_server(ledger, "127.0.0.1:0")
        port = await server.start()
        print(f"merchant node 'tea-house' on 127.0.0.1:{port} (SQLite: {directory / 'node.db'})")
        print("rate: 1 point per yuan spent; 100 points = ¥1.00\n")
        try:
            async with MerchantNodeClient(f"127.0.0.1:{port}") as node:
                await _story(node)
        finally:
            await server.stop(2)
            offload.shutdown()
            ledger.engine.dispose()
    print("\nnode stopped; demo database removed.")
    return 0


async def _story(node: MerchantNodeClient) -> None:
    members = {"m-lin": "Lin", "m-chen": "Chen", "m-wang": "Wang"}
    for member_id, name in members.items():
        res = await node.enroll_member(member_id, display_name=name)
        print(f"enrolled {name:<5} ({member_id}), referral code {res.member.referral_code}")

    for n, (member_id, fen) in enumerate([("m-lin", 12850), ("m-chen", 36800), ("m-wang", 5990)]):
        res = await node.earn(member_id, f"order-{n + 1}", fen)
        why = "; ".join(f"{b.rule_id}: {b.points} ({b.description})" for b in res.breakdown)
        print(f"{member_id} spent {_yuan(fen)} → +{res.points_earned} points [{why}]")

    res = await node.redeem("m-chen", "order-4", points=200)
    print(f"m-chen redeemed {res.points_redeemed} points for {_yuan(res.value_fen)} off order-4")
    res = await node.redeem("m-lin", "order-5", amount_fen=99)
    print(f"m-lin paid {_yuan(res.value_fen)} of order-5 with {res.points_redeemed} points")

    retry_id = "demo-retry-1"
    first = await node.earn("m-wang", "order-6", 2000, request_id=retry_id)
    again = await node.earn("m-wang", "order-6", 2000, request_id=retry_id)
    print(
        f"m-wang's earn sent twice with one request id: +{first.points_earned}, then the same "
        f"answer again (+{again.points_earned}), credited once"
    )

    try:
        await node.redeem("m-wang", "order-7", points=10_000)
    except grpc.aio.AioRpcError as err:
        info = error_info_of(err)
        print(
            f"m-wang tried to redeem 10000 points: {err.code().name} / "
            f"{info.reason if info else '?'}: {err.details()}"
        )

    res = await node.refund("order-2", full=True)
    print(
        f"order-2 refunded: {res.points_clawed_back} points clawed back from m-chen, "
        f"{res.points_added_to_debt} already spent → debt {res.debt_points}"
    )

    print("\nbalances")
    print(f"{'member':<8} {'available':>9} {'held':>5} {'debt':>5} {'lifetime':>8} {'value':>8}")
    for member_id in members:
        b = await node.get_balance(member_id)
        print(
            f"{member_id:<8} {b.available_points:>9} {b.held_points:>5} {b.debt_points:>5} "
            f"{b.lifetime_earned_points:>8} {_yuan(b.available_value_fen):>8}"
        )
