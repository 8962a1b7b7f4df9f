"""`coalition mall …`: a merchant's points mall — catalog, orders, lotteries, report, member
tokens — through the node's MallAdminService (docs/mall.md).

Items and lotteries are files in the proto's JSON form (the same JSON the HTTP API speaks):
  coalition mall put item.json --config node.toml
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pathlib
import secrets
import sys

import grpc
from google.protobuf import json_format

from coalition.merchant.v1 import mall_pb2 as pb
from coalition.merchant.v1 import mall_pb2_grpc


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    mall = sub.add_parser("mall", help="a merchant's points mall").add_subparsers(
        dest="mall_command", required=True
    )

    def command(name: str, help_: str, action) -> argparse.ArgumentParser:  # type: ignore[no-untyped-def]
        p = mall.add_parser(name, help=help_)
        p.add_argument("--config", type=pathlib.Path, help="the node's config (address, token)")
        p.add_argument("--target", help="the node's gRPC address (overrides --config)")
        p.add_argument("--credential", help="the node's admin credential (overrides --config)")
        p.set_defaults(run=lambda a: _remote(a, action))
        return p

    command("items", "every item with its stock", _items)
    command("put", "create or replace an item from a JSON file", _put).add_argument(
        "file", type=pathlib.Path
    )
    command("retire", "take an item off sale", _retire).add_argument("item_id")
    token = command("token", "a member token for the member API", _token)
    token.add_argument("member_id")
    token.add_argument("--ttl-seconds", type=int, default=0)
    fulfil = command("fulfil", "mark an order picked up or shipped", _fulfil)
    fulfil.add_argument("order_id")
    fulfil.add_argument("--note", default="")
    command("refund", "refund a paid order", _refund).add_argument("order_id")
    command("sweep", "lapse unpaid orders past their deadline", _sweep)
    command("report", "items sold, points and cash taken, coupons, liability", _report)
    district = mall.add_parser("district-report", help="the sum of several nodes' mall reports")
    district.add_argument(
        "--node",
        action="append",
        required=True,
        metavar="TARGET=CREDENTIAL",
        help="a node's gRPC address and its admin credential (repeat per node)",
    )
    district.set_defaults(run=_district)
    shelves = mall.add_parser(
        "district-items", help="every merchant's items on sale, one district mall"
    )
    shelves.add_argument("--node", action="append", required=True, metavar="TARGET=CREDENTIAL")
    shelves.set_defaults(run=_district_items)
    lottery = command("lottery-create", "create a lottery from a JSON file (commits)", _create)
    lottery.add_argument("file", type=pathlib.Path)
    reveal = command("lottery-reveal", "publish a closed lottery's seed", _reveal)
    reveal.add_argument("lottery_id")
    reveal.add_argument("--seed", default="", help="hex; default: the one kept since creation")


def _request_id() -> str:
    return f"cli-{secrets.token_hex(8)}"


def _remote(args: argparse.Namespace, action) -> int:  # type: ignore[no-untyped-def]
    from coalition_kernel.errors import error_info_of

    target, credential = args.target, args.credential
    if args.config is not None and not (target and credential):
        from merchant_node.config import NodeConfig

        config = NodeConfig.load(args.config)
        target, credential = target or config.listen, credential or config.admin_token
    if not target:
        print("coalition mall: give --config or --target", file=sys.stderr)
        return 2

    async def go() -> int:
        async with grpc.aio.insecure_channel(target) as channel:
            stub = mall_pb2_grpc.MallAdminServiceStub(channel)
            auth = (("authorization", f"Bearer {credential or ''}"),)
            try:
                return await action(stub, auth, args)
            except grpc.aio.AioRpcError as err:
                info = error_info_of(err)
                reason = info.reason if info else ""
                print(
                    f"coalition mall: {err.code().name} {reason}: {err.details()}", file=sys.stderr
                )
                return 1

    try:
        return asyncio.run(go())
    except (OSError, json_format.ParseError) as err:
        print(f"coalition mall: {err}", file=sys.stderr)
        return 2


def _show(message) -> int:  # type: ignore[no-untyped-def]
    print(json_format.MessageToJson(message, indent=2, ensure_ascii=False))
    return 0


async def _items(stub, auth, _args) -> int:  # type: ignore[no-untyped-def]
    items = (await stub.ListItems(pb.ListItemsRequest(), metadata=auth)).items
    for i in items:
        state = "on sale" if i.active else "retired"
        print(
            f"{i.item_id:24} {pb.ItemKind.Name(i.kind).removeprefix('ITEM_KIND_'):12} "
            f"{i.price_points:>8} pts + {i.price_fen:>6} fen  stock {i.stock_left}/{i.stock_total}"
            f"  {state}  {i.title}"
        )
    return 0


async def _put(stub, auth, args) -> int:  # type: ignore[no-untyped-def]
    item = json_format.Parse(args.file.read_text(), pb.Item())
    req = pb.UpsertItemRequest(request_id=_request_id(), item=item)
    return _show((await stub.UpsertItem(req, metadata=auth)).item)


async def _retire(stub, auth, args) -> int:  # type: ignore[no-untyped-def]
    req = pb.RetireItemRequest(request_id=_request_id(), item_id=args.item_id)
    return _show((await stub.RetireItem(req, metadata=auth)).item)


async def _token(stub, auth, args) -> int:  # type: ignore[no-untyped-def]
    req = pb.IssueMemberTokenRequest(member_id=args.member_id, ttl_seconds=args.ttl_seconds)
    res = await stub.IssueMemberToken(req, metadata=auth)
    print(res.token)
    return 0


async def _fulfil(stub, auth, args) -> int:  # type: ignore[no-untyped-def]
    req = pb.FulfilOrderRequest(request_id=_request_id(), order_id=args.order_id, note=args.note)
    return _show((await stub.FulfilOrder(req, metadata=auth)).order)


async def _refund(stub, auth, args) -> int:  # type: ignore[no-untyped-def]
    req = pb.RefundOrderRequest(request_id=_request_id(), order_id=args.order_id)
    return _show((await stub.RefundOrder(req, metadata=auth)).order)


async def _sweep(stub, auth, _args) -> int:  # type: ignore[no-untyped-def]
    res = await stub.SweepLapsedOrders(pb.SweepLapsedOrdersRequest(), metadata=auth)
    print(f"{res.lapsed} order(s) lapsed")
    return 0


async def _report(stub, auth, _args) -> int:  # type: ignore[no-untyped-def]
    return _show(await stub.GetMallReport(pb.GetMallReportRequest(), metadata=auth))


def _district(args: argparse.Namespace) -> int:
    from coalition_kernel.errors import error_info_of
    from merchant_node.mall.report import district

    async def one(spec: str) -> pb.GetMallReportResponse:
        target, _, credential = spec.partition("=")
        async with grpc.aio.insecure_channel(target) as channel:
            stub = mall_pb2_grpc.MallAdminServiceStub(channel)
            auth = (("authorization", f"Bearer {credential}"),)
            report = await stub.GetMallReport(pb.GetMallReportRequest(), metadata=auth)
            report.merchant_id = report.merchant_id or target
            return report

    async def go() -> int:
        try:
            reports = await asyncio.gather(*(one(spec) for spec in args.node))
        except grpc.aio.AioRpcError as err:
            info = error_info_of(err)
            print(
                f"coalition mall: {err.code().name} {info.reason if info else ''}: {err.details()}",
                file=sys.stderr,
            )
            return 1
        return _show(district(list(reports)))

    return asyncio.run(go())


def _district_items(args: argparse.Namespace) -> int:
    async def one(spec: str) -> tuple[str, list[pb.Item]]:
        target, _, credential = spec.partition("=")
        async with grpc.aio.insecure_channel(target) as channel:
            stub = mall_pb2_grpc.MallAdminServiceStub(channel)
            auth = (("authorization", f"Bearer {credential}"),)
            report = await stub.GetMallReport(pb.GetMallReportRequest(), metadata=auth)
            items = (await stub.ListItems(pb.ListItemsRequest(), metadata=auth)).items
            return report.merchant_id or target, [i for i in items if i.active and i.stock_left]

    async def go() -> int:
        try:
            shops = await asyncio.gather(*(one(spec) for spec in args.node))
        except grpc.aio.AioRpcError as err:
            print(f"coalition mall: {err.code().name}: {err.details()}", file=sys.stderr)
            return 1
        for merchant, items in shops:
            for i in items:
                cash = f" + {i.price_fen} fen" if i.price_fen else ""
                print(f"{merchant:16} {i.item_id:24} {i.price_points:>8} pts{cash}  {i.title}")
        return 0

    return asyncio.run(go())


async def _create(stub, auth, args) -> int:  # type: ignore[no-untyped-def]
    spec = json_format.Parse(args.file.read_text(), pb.Lottery())
    req = pb.CreateLotteryRequest(request_id=_request_id(), lottery=spec)
    made = (await stub.CreateLottery(req, metadata=auth)).lottery
    print(json.dumps({"lottery_id": made.lottery_id, "commitment": made.commitment}))
    return 0


async def _reveal(stub, auth, args) -> int:  # type: ignore[no-untyped-def]
    req = pb.RevealLotteryRequest(
        request_id=_request_id(), lottery_id=args.lottery_id, seed=args.seed
    )
    return _show((await stub.RevealLottery(req, metadata=auth)).lottery)
