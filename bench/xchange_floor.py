"""The floor of a cross-shop redemption: its RPCs and signed envelopes with no database at all.

bench/xchange_bench.py measures redemptions through a real coalition and divides by a gRPC echo.
This bench measures what no implementation of the protocol in this stack can go below: the same
calls, made the same way, doing nothing but what the protocol itself requires.

In one spawned process (as xchange_bench's coalition: one GIL), three grpc.aio servers built as
the real ones are (coalition_kernel.rpc.Server with its options, its guarded handlers and its
telemetry; the call log off, as in xchange_bench's measured cells), serving the real
services' descriptors:

* the acquirer's MerchantNodeService: AuthorizeCrossRedemption / CaptureCrossRedemption seal an
  AuthorizeCommand / CaptureCommand for the exchange, call it, and open its signed answer;
* the ExchangeService: Authorize / Capture open the acquirer's envelope, seal a PlaceHoldCommand /
  PostHoldCommand for the issuer, call it, open its answer and seal their own;
* the issuer's IssuerService: PlaceHold / PostHold open the exchange's envelope and seal a
  HoldReceipt.

That is 6 RPCs served, 4 made between servers, 8 envelopes sealed and 8 opened (Ed25519, the
header checks, protobuf) per redemption, as in the real coalition; no database, no ledger, no
idempotency, no audit log. This process keeps N redemptions in flight (authorize, then capture)
and, back to back, N gRPC echo calls (bench/node_bench.py's echo process).

    python bench/xchange_floor.py [--seconds 5] [--concurrency 16] [--quick]

The last line is the one bench/all.py reads: floor redemptions/s, echo/s and their ratio, the
most `redemptions/s ÷ echo/s` a coalition served from one process can reach on this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import time
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection as Pipe
from typing import Any

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [p for p in (REPO, os.path.join(REPO, "bench")) if p not in sys.path]

from node_bench import EchoClient, echo_process  # noqa: E402

from coalition.exchange.v1 import exchange_pb2 as xpb  # noqa: E402
from coalition.issuer.v1 import issuer_pb2 as ipb  # noqa: E402
from coalition.merchant.v1 import merchant_node_pb2 as pb  # noqa: E402
from coalition_kernel.envelope import Signer, StaticKeys, Verifier, open_answer  # noqa: E402
from coalition_kernel.errors import FailedPrecondition  # noqa: E402
from coalition_kernel.rpc import Server, generic_handler  # noqa: E402

ISSUER, ACQUIRER, EXCHANGE = "tea", "noodles", "exchange"
NODE = pb.DESCRIPTOR.services_by_name["MerchantNodeService"]
ISSUING = ipb.DESCRIPTOR.services_by_name["IssuerService"]
XCHG = xpb.DESCRIPTOR.services_by_name["ExchangeService"]


def _handlers(service: Any, given: dict[str, Callable[..., Awaitable[Any]]]) -> Any:
    async def absent(_request: Any, _context: Any) -> Any:
        raise FailedPrecondition("NOT_IN_FLOOR", "not part of the floor")

    return generic_handler(service, {m.name: given.get(m.name, absent) for m in service.methods})


def _call(channel: grpc.aio.Channel, service: Any, method: str, response: type) -> Any:
    return channel.unary_unary(
        f"/{service.full_name}/{method}",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response.FromString,
    )


async def _serve(pipe: Pipe) -> None:
    keys = {name: Ed25519PrivateKey.generate() for name in (ISSUER, ACQUIRER, EXCHANGE)}
    public = StaticKeys({name: key.public_key() for name, key in keys.items()})
    sign = {name: Signer(name, key) for name, key in keys.items()}
    opens = {name: Verifier(name, public) for name in keys}

    # The issuer: opens the exchange's command, seals a receipt.
    async def hold(request: Any, _context: Any, command: type) -> Any:
        cmd = opens[ISSUER].open(request.envelope, command, sender=EXCHANGE)
        receipt = ipb.HoldReceipt(hold_id=cmd.hold_id, status=ipb.HOLD_STATUS_PENDING, points=1)
        answer = sign[ISSUER].seal(
            receipt, audience=EXCHANGE, request_id=cmd.header.request_id, answering=request.envelope
        )
        return ipb.PlaceHoldResponse(envelope=answer)

    issuer = Server(
        [
            (
                ISSUING,
                _handlers(
                    ISSUING,
                    {
                        "PlaceHold": lambda r, c: hold(r, c, ipb.PlaceHoldCommand),
                        "PostHold": lambda r, c: hold(r, c, ipb.PostHoldCommand),
                    },
                ),
            )
        ]
    )
    issuer_port = await issuer.start()
    to_issuer = grpc.aio.insecure_channel(f"127.0.0.1:{issuer_port}")
    place = _call(to_issuer, ISSUING, "PlaceHold", ipb.PlaceHoldResponse)
    post = _call(to_issuer, ISSUING, "PostHold", ipb.PostHoldResponse)

    # The exchange: opens the acquirer's command, asks the issuer, seals its own answer.
    async def authorize(request: Any, _context: Any) -> Any:
        cmd = opens[EXCHANGE].open(request.envelope, xpb.AuthorizeCommand)
        rid = cmd.header.request_id
        ask = sign[EXCHANGE].seal(
            ipb.PlaceHoldCommand(hold_id=f"a-{rid}", member_id=cmd.member_id, points=cmd.points),
            audience=ISSUER,
            request_id=f"a-{rid}:hold",
        )
        got = await place(ipb.PlaceHoldRequest(envelope=ask), timeout=10)
        open_answer(opens[EXCHANGE], got.envelope, ipb.HoldReceipt, ask, ISSUER)
        receipt = xpb.AuthorizeReceipt(authorization_id=f"a-{rid}", issuer_id=cmd.issuer_id)
        answer = sign[EXCHANGE].seal(
            receipt, audience=ACQUIRER, request_id=rid, answering=request.envelope
        )
        return xpb.AuthorizeResponse(envelope=answer)

    async def capture(request: Any, _context: Any) -> Any:
        cmd = opens[EXCHANGE].open(request.envelope, xpb.CaptureCommand)
        ask = sign[EXCHANGE].seal(
            ipb.PostHoldCommand(hold_id=cmd.authorization_id),
            audience=ISSUER,
            request_id=f"{cmd.authorization_id}:post",
        )
        got = await post(ipb.PostHoldRequest(envelope=ask), timeout=10)
        open_answer(opens[EXCHANGE], got.envelope, ipb.HoldReceipt, ask, ISSUER)
        receipt = xpb.CaptureReceipt(record=xpb.ClearingRecord(clearing_id="c-1"))
        answer = sign[EXCHANGE].seal(
            receipt, audience=ACQUIRER, request_id=cmd.header.request_id, answering=request.envelope
        )
        return xpb.CaptureResponse(envelope=answer)

    exchange = Server([(XCHG, _handlers(XCHG, {"Authorize": authorize, "Capture": capture}))])
    exchange_port = await exchange.start()
    to_exchange = grpc.aio.insecure_channel(f"127.0.0.1:{exchange_port}")
    x_authorize = _call(to_exchange, XCHG, "Authorize", xpb.AuthorizeResponse)
    x_capture = _call(to_exchange, XCHG, "Capture", xpb.CaptureResponse)

    # The acquirer's node: seals for the exchange, opens its answer.
    async def pos_authorize(request: Any, _context: Any) -> Any:
        command = xpb.AuthorizeCommand(
            issuer_id=request.issuer_id,
            member_id=request.member_id,
            order_id=request.order_id,
            points=request.points,
            consent_code=request.consent_code,
        )
        ask = sign[ACQUIRER].seal(command, audience=EXCHANGE, request_id=request.request_id)
        got = await x_authorize(xpb.AuthorizeRequest(envelope=ask), timeout=10)
        receipt = open_answer(opens[ACQUIRER], got.envelope, xpb.AuthorizeReceipt, ask, EXCHANGE)
        return pb.AuthorizeCrossRedemptionResponse(authorization_id=receipt.authorization_id)

    async def pos_capture(request: Any, _context: Any) -> Any:
        ask = sign[ACQUIRER].seal(
            xpb.CaptureCommand(authorization_id=request.authorization_id),
            audience=EXCHANGE,
            request_id=request.request_id,
        )
        got = await x_capture(xpb.CaptureRequest(envelope=ask), timeout=10)
        receipt = open_answer(opens[ACQUIRER], got.envelope, xpb.CaptureReceipt, ask, EXCHANGE)
        return pb.CaptureCrossRedemptionResponse(clearing_id=receipt.record.clearing_id)

    node = Server(
        [
            (
                NODE,
                _handlers(
                    NODE,
                    {
                        "AuthorizeCrossRedemption": pos_authorize,
                        "CaptureCrossRedemption": pos_capture,
                    },
                ),
            )
        ]
    )
    pipe.send(await node.start())
    await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
    for server in (node, exchange, issuer):
        await server.stop(1)
    await to_exchange.close()
    await to_issuer.close()


def floor_process(pipe: Pipe) -> None:
    asyncio.run(_serve(pipe))


async def _drive(call: Callable[[int], Awaitable[None]], n: int, warmup: float, seconds: float):  # type: ignore[no-untyped-def]
    """Completions/s and latencies (ms) of `call` with n in flight, after a warm-up."""
    start = time.perf_counter() + warmup
    end = start + seconds
    latencies: list[float] = []
    turn = iter(range(10**9))

    async def worker() -> None:
        while time.perf_counter() < end:
            began = time.perf_counter()
            await call(next(turn))
            done = time.perf_counter()
            if began >= start and done <= end:
                latencies.append((done - began) * 1000)

    await asyncio.gather(*(worker() for _ in range(n)))
    latencies.sort()
    rate = len(latencies) / seconds
    p99 = latencies[int(0.99 * (len(latencies) - 1))] if latencies else float("nan")
    return rate, p99


async def _measure(floor_port: int, echo_port: int, n: int, warmup: float, seconds: float):  # type: ignore[no-untyped-def]
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{floor_port}") for _ in range(4)]
    authorize = [
        _call(ch, NODE, "AuthorizeCrossRedemption", pb.AuthorizeCrossRedemptionResponse)
        for ch in channels
    ]
    capture = [
        _call(ch, NODE, "CaptureCrossRedemption", pb.CaptureCrossRedemptionResponse)
        for ch in channels
    ]

    async def redeem(i: int) -> None:
        at = i % len(channels)
        got = await authorize[at](
            pb.AuthorizeCrossRedemptionRequest(
                request_id=f"r-{i}",
                issuer_id=ISSUER,
                member_id="m-1",
                order_id=f"o-{i}",
                points=1,
                consent_code="123456",
            ),
            timeout=10,
        )
        await capture[at](
            pb.CaptureCrossRedemptionRequest(
                request_id=f"c-{i}", authorization_id=got.authorization_id
            ),
            timeout=10,
        )

    floor = await _drive(redeem, n, warmup, seconds)
    for ch in channels:
        await ch.close()
    echo_client = EchoClient(echo_port, 4)
    echo = await _drive(lambda _i: echo_client(), n, warmup, seconds)
    await echo_client.close()
    return floor, echo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="2 s windows")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.warmup = 2.0, 0.5
    ctx = multiprocessing.get_context("spawn")
    mine, theirs = ctx.Pipe()
    floor = ctx.Process(target=floor_process, args=(theirs,), daemon=True)
    floor.start()
    echo_mine, echo_theirs = ctx.Pipe()
    echo = ctx.Process(target=echo_process, args=(echo_theirs,), daemon=True)
    echo.start()
    try:
        floor_port, echo_port = mine.recv(), echo_mine.recv()
        print(
            f"$ python bench/xchange_floor.py{' --quick' if args.quick else ''}   "
            f"({os.cpu_count()} cores, load {os.getloadavg()[0]:.2f})"
        )
        print(
            "The protocol's floor: a cross-shop redemption's 6 RPCs (4 between servers) and 8 "
            "signed envelopes sealed and opened, no database, acquirer + exchange + issuer in one "
            f"process (coalition_kernel.rpc.Server), {args.concurrency} in flight"
        )
        (rate, p99), (echo_rate, echo_p99) = asyncio.run(
            _measure(floor_port, echo_port, args.concurrency, args.warmup, args.seconds)
        )
    finally:
        mine.send("stop")
        echo_mine.send("stop")
        floor.join(10)
        echo.join(10)
    print(f"  floor: {rate:,.1f} redemptions/s, p99 {p99:.1f} ms")
    print(f"  echo:  {echo_rate:,.0f} calls/s, p99 {echo_p99:.1f} ms")
    print(
        f"floor {rate:,.1f} redemptions/s, echo {echo_rate:,.0f}/s, "
        f"floor/echo {rate / echo_rate:.4f} at {args.concurrency} in flight"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
