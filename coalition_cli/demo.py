"""`coalition demo`: a whole local coalition on SQLite — an exchange and three merchant nodes,
each a real gRPC server — runs a short story of members earning at one shop and spending at
another, shows that every record matches and every signature checks, then stops everything."""

from __future__ import annotations

import pathlib
import tempfile
from dataclasses import dataclass

import grpc
import pyotp
import sqlalchemy as sa

from coalition_kernel.db import run_in_transaction
from coalition_kernel.envelope import OPERATOR_ID, Signer
from coalition_kernel.errors import error_info_of
from coalition_kernel.keys import load_private_key, load_public_key
from coalition_kernel.rpc import Offload, Server
from exchange import audit
from exchange.operator_client import OperatorClient
from exchange.runtime import ExchangeApp, ExchangeConfig, init_exchange
from exchange.schema import clearing_records
from merchant_node.acquirer import ExchangeLink
from merchant_node.audit_slice import fetch_and_verify
from merchant_node.client import MerchantNodeClient
from merchant_node.config import NodeConfig
from merchant_node.ledger.schema import cross_redemptions, holds
from merchant_node.ledger.service import NodeLedger
from merchant_node.runtime import coalition_link, init_node, open_ledger, raw_public_key
from merchant_node.server import build_server

SHOPS = {"tea-house": "Tea House", "noodle-bar": "Noodle Bar", "hair-salon": "Hair Salon"}


def _refusal(err: grpc.aio.AioRpcError) -> str:
    info = error_info_of(err)
    return f"{err.code().name} / {info.reason if info else '?'}"


def _verdict(problems: list[str], good: str) -> str:
    return "; ".join(problems) if problems else good


def _yuan(fen: int) -> str:
    return f"¥{fen // 100}.{fen % 100:02d}"


@dataclass
class Shop:
    config: NodeConfig
    ledger: NodeLedger
    server: Server
    offload: Offload
    client: MerchantNodeClient


async def run_demo() -> int:
    with tempfile.TemporaryDirectory(prefix="coalition-demo-") as tmp:
        root = pathlib.Path(tmp)
        exchange_path = init_exchange(
            root / "exchange",
            ExchangeConfig(
                database_url=f"sqlite:///{root / 'exchange' / 'exchange.db'}", listen="127.0.0.1:0"
            ),
        )
        exchange = ExchangeApp.from_config(ExchangeConfig.load(exchange_path))
        port = await exchange.start()
        exchange_target = f"127.0.0.1:{port}"
        print(f"exchange on {exchange_target} (SQLite, audit log hash-chained)")
        operator = OperatorClient(
            exchange_target,
            Signer(OPERATOR_ID, load_private_key(root / "exchange" / "operator_ed25519.pem")),
            exchange.public_key,
        )
        shops: dict[str, Shop] = {}
        try:
            for merchant_id, name in SHOPS.items():
                shops[merchant_id] = await _open_shop(root, merchant_id, exchange_target)
                shop = shops[merchant_id]
                await operator.onboard(
                    merchant_id,
                    name,
                    raw_public_key(shop.config),
                    shop.config.listen,
                    fen_per_point="1",
                    fee_bps=150,
                )
                print(f"node {merchant_id:<11} on {shop.config.listen}, onboarded by the operator")
            print("point value: 100 points = ¥1.00 at every shop; operator fee 1.5% of value\n")
            await _story(shops)
            await _proof(exchange, shops)
        finally:
            for shop in shops.values():
                await shop.client.close()
                await shop.server.stop(2)
                shop.offload.shutdown()
                shop.ledger.engine.dispose()
            await operator.close()
            await exchange.stop(2)
            exchange.engine.dispose()
    print("\nexchange and nodes stopped; demo databases removed.")
    return 0


async def _open_shop(root: pathlib.Path, merchant_id: str, exchange_target: str) -> Shop:
    directory = root / merchant_id
    path = init_node(
        directory,
        NodeConfig(
            merchant_id=merchant_id,
            database_url=f"sqlite:///{directory / 'node.db'}",
            exchange_endpoint=exchange_target,
            exchange_public_key_file=str(root / "exchange" / "exchange_ed25519.pub.pem"),
        ),
    )
    config = NodeConfig.load(path)
    ledger = open_ledger(config, pool_size=4)
    server, offload = build_server(ledger, "127.0.0.1:0", coalition=coalition_link(config))
    port = await server.start()
    config = NodeConfig(**{**config.__dict__, "listen": f"127.0.0.1:{port}"})
    return Shop(config, ledger, server, offload, MerchantNodeClient(config.listen))


async def _story(shops: dict[str, Shop]) -> None:
    tea, noodles, salon = shops["tea-house"], shops["noodle-bar"], shops["hair-salon"]
    wallets: dict[str, pyotp.TOTP] = {}
    for member_id, name in (("m-lin", "Lin"), ("m-chen", "Chen")):
        enrolled = await tea.client.enroll_member(member_id, display_name=name)
        wallets[member_id] = pyotp.TOTP(enrolled.wallet_secret)
        print(f"{name} enrolls at tea-house; the wallet app gets a one-time-code secret")
    await tea.client.earn("m-lin", "tea-1", 68_800)
    await tea.client.earn("m-chen", "tea-2", 25_600)
    await salon.client.enroll_member("m-lin")
    await salon.client.earn("m-lin", "salon-1", 12_000)
    print("m-lin spends ¥688.00 at tea-house (+688) and ¥120.00 at hair-salon (+120)")
    print("m-chen spends ¥256.00 at tea-house (+256)")
    local = await tea.client.redeem("m-chen", "tea-3", points=56)
    print(
        f"m-chen pays {_yuan(local.value_fen)} of a tea at tea-house "
        f"with {local.points_redeemed} points"
    )
    refund = await tea.client.refund("tea-3", full=True)
    print(f"  the tea is refunded: {refund.points_returned} points back to m-chen\n")

    portfolio = await noodles.client.get_portfolio("m-lin")
    lines = ", ".join(
        f"{p.issuer_id} {p.available_points} pts ({_yuan(p.value_fen)})" for p in portfolio.lines
    )
    print(f"at noodle-bar, m-lin's portfolio: {lines}; total {_yuan(portfolio.total_value_fen)}")

    quote = await noodles.client.quote_cross("tea-house", amount_fen=450)
    print(
        f"noodle-bar quotes a ¥4.50 bowl in tea-house points: {quote.points} points, "
        f"fee {_yuan(quote.fee_fen)}, valid until {quote.expires_at.ToDatetime():%H:%M:%S}"
    )
    try:
        await noodles.client.authorize_cross(
            "tea-house", "m-lin", "bowl-1", amount_fen=450, consent_code="123456"
        )
    except grpc.aio.AioRpcError as err:
        print(f"  without the member's code: {_refusal(err)}")
    auth = await noodles.client.authorize_cross(
        "tea-house", "m-lin", "bowl-1", quote_id=quote.quote_id, consent_code=wallets["m-lin"].now()
    )
    balance = await tea.client.get_balance("m-lin")
    print(
        f"  with m-lin's one-time code: authorized {auth.authorization_id[:10]}…, tea-house holds "
        f"{balance.held_points} points (available {balance.available_points})"
    )
    captured = await noodles.client.capture_cross(auth.authorization_id)
    print(
        f"  captured: tea-house owes noodle-bar {_yuan(captured.value_fen)} "
        f"(fee {_yuan(captured.fee_fen)}), period {captured.settlement_period}"
    )

    code = wallets["m-chen"].now()
    auth2 = await salon.client.authorize_cross(
        "tea-house", "m-chen", "cut-1", points=200, consent_code=code
    )
    await salon.client.void_cross(auth2.authorization_id)
    print("m-chen authorizes 200 tea-house points at hair-salon, then the salon voids it: released")
    try:
        await noodles.client.authorize_cross(
            "tea-house", "m-chen", "bowl-2", points=50, consent_code=code
        )
    except grpc.aio.AioRpcError as err:
        print(f"noodle-bar replays m-chen's used code: {_refusal(err)}")

    print("\nbalances at tea-house")
    for member_id in wallets:
        b = await tea.client.get_balance(member_id)
        print(
            f"  {member_id:<7} available {b.available_points:>4}  held {b.held_points}  "
            f"lifetime {b.lifetime_earned_points}"
        )


async def _proof(exchange: ExchangeApp, shops: dict[str, Shop]) -> None:
    print("\nchecks")
    with exchange.engine.connect() as conn:
        records = {r.authorization_id: r.points for r in conn.execute(sa.select(clearing_records))}
    posted: dict[str, int] = {}
    receivable: dict[str, int] = {}
    for shop in shops.values():
        with shop.ledger.engine.connect() as conn:
            posted |= dict(
                conn.execute(
                    sa.select(holds.c.hold_ref, holds.c.points).where(holds.c.status == "posted")
                ).all()
            )
            receivable |= dict(
                conn.execute(
                    sa.select(
                        cross_redemptions.c.authorization_id, cross_redemptions.c.points
                    ).where(cross_redemptions.c.status == "captured")
                ).all()
            )
        laws = shop.ledger.audit()
        print(f"  {shop.config.merchant_id:<11} ledger laws 1-4: {_verdict(laws, 'hold')}")
    match = "match" if posted == records == receivable else "DO NOT MATCH"
    print(
        f"  law 5: {len(records)} clearing record(s), issuers' posted holds and acquirers' "
        f"receivables {match}"
    )
    problems = run_in_transaction(exchange.engine, audit.verify_chain)
    entries = run_in_transaction(exchange.engine, audit.count)
    print(f"  exchange audit log: {entries} entries, hash chain {_verdict(problems, 'intact')}")
    for shop in shops.values():
        link_config = coalition_link(shop.config)
        assert link_config is not None
        link = ExchangeLink(
            link_config.exchange_endpoint,
            Signer(shop.config.merchant_id, link_config.private_key),
            link_config.exchange_key,
        )
        report = await fetch_and_verify(
            link,
            link_config.private_key.public_key(),
            load_public_key(pathlib.Path(shop.config.exchange_public_key_file)),
        )
        await link.close()
        print(
            f"  {shop.config.merchant_id:<11} verified its audit slice: {report.entries} entries, "
            f"{report.signatures_checked} signatures, {_verdict(report.problems, 'ok')}"
        )
