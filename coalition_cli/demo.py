"""`coalition demo`: a whole local coalition on embedded defaults — a Temporal dev server (its
own SQLite file), an exchange and three merchant nodes (each a real gRPC server on SQLite) and
the settlement worker — runs a short story of members earning at one shop and spending at
another, shows that every record matches and every signature checks, settles the day with the
operator's approval, prints the settlement report, runs the later chapters (the mall, expiry,
a campaign, member intelligence: coalition_cli/demo_*.py), starts the web console, then stops
everything (`--keep`: leaves it running until Ctrl-C).

The story happens "yesterday": every part of the coalition reads one demo clock, set back a day
for the story and then forward to now, so that the story's period is over and can be settled
at once instead of after midnight."""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import signal
import socket
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import grpc
import sqlalchemy as sa

from coalition_cli.demo_console import console_chapter
from coalition_cli.demo_mall import mall_chapter
from coalition_cli.demo_marketing import marketing_chapter
from coalition_kernel.consent import portfolio_code, spend_code
from coalition_kernel.db import run_in_transaction, utc_now
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
from merchant_node.auth.domain import Limits
from merchant_node.auth.service import add_client
from merchant_node.client import MerchantNodeClient
from merchant_node.config import NodeConfig
from merchant_node.ledger.schema import cross_redemptions, holds
from merchant_node.ledger.service import NodeLedger
from merchant_node.runtime import coalition_link, init_node, open_ledger, raw_public_key
from merchant_node.server import build_server


class DemoClock:
    """Now, shifted: every service of the demo reads it, so they agree on the time."""

    def __init__(self, offset: timedelta) -> None:
        self.offset = offset

    def __call__(self) -> datetime:
        return utc_now() + self.offset


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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run_demo(keep: bool = False) -> int:
    if keep:
        root = pathlib.Path(tempfile.mkdtemp(prefix="coalition-demo-"))
        return await _run(root, keep=True)
    with tempfile.TemporaryDirectory(prefix="coalition-demo-") as tmp:
        code = await _run(pathlib.Path(tmp), keep=False)
    print("demo databases removed.")
    return code


async def _run(root: pathlib.Path, keep: bool) -> int:
    from temporalio.testing import WorkflowEnvironment

    from workflows.worker import temporal_cli

    # The story happens a day (and a little) ago: its period is over by the time it settles.
    clock = DemoClock(-timedelta(days=1, minutes=10))
    ui_port = _free_port()
    async with contextlib.AsyncExitStack() as stack:
        temporal = await WorkflowEnvironment.start_local(
            dev_server_existing_path=temporal_cli(),
            dev_server_database_filename=str(root / "temporal.db"),
            ui=True,
            ui_port=ui_port,
            dev_server_log_level="error",
        )
        stack.push_async_callback(temporal.shutdown)
        temporal_target = temporal.client.service_client.config.target_host
        print(f"temporal dev server on {temporal_target} (SQLite), UI http://127.0.0.1:{ui_port}")

        exchange_path = init_exchange(
            root / "exchange",
            ExchangeConfig(
                database_url=f"sqlite:///{root / 'exchange' / 'exchange.db'}", listen="127.0.0.1:0"
            ),
        )
        exchange = ExchangeApp.from_config(ExchangeConfig.load(exchange_path), clock=clock)
        port = await exchange.start()
        stack.callback(exchange.engine.dispose)
        stack.push_async_callback(exchange.stop, 2)
        exchange_target = f"127.0.0.1:{port}"
        print(f"exchange on {exchange_target} (SQLite, audit log hash-chained)")
        operator = OperatorClient(
            exchange_target,
            Signer(
                OPERATOR_ID, load_private_key(root / "exchange" / "operator_ed25519.pem"), clock
            ),
            exchange.public_key,
        )
        stack.push_async_callback(operator.close)
        shops: dict[str, Shop] = {}
        for merchant_id, name in SHOPS.items():
            shop = await _open_shop(root, merchant_id, exchange_target, clock)
            stack.callback(shop.ledger.engine.dispose)
            stack.callback(shop.offload.shutdown)
            stack.push_async_callback(shop.server.stop, 2)
            stack.push_async_callback(shop.client.close)
            shops[merchant_id] = shop
            await operator.onboard(
                merchant_id,
                name,
                raw_public_key(shop.config),
                shop.config.listen,
                fen_per_point="1",
                fee_bps=150,
            )
            print(f"node {merchant_id:<11} on {shop.config.listen}, onboarded by the operator")
        worker = await _start_worker(stack, temporal.client, exchange, root, clock)
        print("settlement worker running; the daily settlement Schedule is registered")
        print("point value: 100 points = ¥1.00 at every shop; operator fee 1.5% of value\n")

        story_day = clock().astimezone(ZoneInfo("Asia/Shanghai")).date()
        print(f"-- {story_day} (the demo clock is set back a day for the story)")
        await _story(shops, clock)
        await mall_chapter(shops, clock)  # coalition_cli/demo_mall.py
        await _proof(exchange, shops, clock)

        clock.offset = timedelta(0)
        print(f"\n-- the next morning: settling {story_day}")
        period = await _settle(temporal.client, worker, str(story_day), root, shops, exchange)
        await _expiry_cycle(temporal.client, shops["tea-house"], clock)
        await _campaign(temporal.client, shops)
        await marketing_chapter(shops, clock)  # coalition_cli/demo_marketing.py
        console = await console_chapter(stack, root, shops, exchange_path, temporal_target)
        if keep:
            print(
                f"\neverything keeps running in {root}. Try:\n"
                f"  coalition settle status --temporal {temporal_target} --period {period}\n"
                f"  Temporal UI: http://127.0.0.1:{ui_port}/namespaces/default/workflows\n"
                f"  console: {console} (the logins above)\n"
                f"  exchange {exchange_target}; nodes "
                + ", ".join(f"{m} {s.config.listen}" for m, s in shops.items())
                + "\nCtrl-C stops it all."
            )
            await _until_signalled()
    print("\ntemporal, worker, exchange, nodes and console stopped.")
    return 0


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _start_worker(stack, client, exchange, root, clock):  # type: ignore[no-untyped-def]
    from workflows.settlement.activities import SettlementActivities
    from workflows.worker import WorkerSettings, ensure_settlement_schedule, settlement_worker

    await ensure_settlement_schedule(client, WorkerSettings())
    activities = SettlementActivities(
        exchange.engine,
        exchange.redemptions.statement,
        root / "settlements",
        clock=clock,
        breakage=exchange.redemptions.breakage,
    )
    return await stack.enter_async_context(settlement_worker(client, activities))


async def _open_shop(
    root: pathlib.Path, merchant_id: str, exchange_target: str, clock: DemoClock
) -> Shop:
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
    ledger = open_ledger(config, pool_size=4, clock=clock)
    server, offload = build_server(ledger, "127.0.0.1:0", coalition=coalition_link(config, clock))
    port = await server.start()
    config = NodeConfig(**{**config.__dict__, "listen": f"127.0.0.1:{port}"})
    config.save(path)
    # The shop's till, as `coalition node client add --name till-1 --scopes pos,read
    # --max-points-per-earn 5000` issues it: every POS call presents this key.
    till = add_client(ledger.engine, "till-1", "pos,read", Limits(max_points_per_earn=5_000))
    return Shop(
        config, ledger, server, offload, MerchantNodeClient(config.listen, api_key=till.key)
    )


async def _closed_pos_api(tea: Shop) -> None:
    """The node's secure default: no key, no call; a stolen till key cannot mint without bound."""
    async with MerchantNodeClient(tea.config.listen, max_attempts=1) as stranger:
        try:
            await stranger.earn("m-lin", "forged-1", 10**12)
        except grpc.aio.AioRpcError as err:
            print(f"a stranger's Earn of ¥10,000,000,000 at tea-house: {_refusal(err)}")
    try:
        await tea.client.earn("m-lin", "forged-2", 10**12)
    except grpc.aio.AioRpcError as err:
        print(f"the same Earn with tea-house's till key (limit 5000 points): {_refusal(err)}\n")


async def _story(shops: dict[str, Shop], clock: DemoClock) -> None:
    tea, noodles, salon = shops["tea-house"], shops["noodle-bar"], shops["hair-salon"]
    wallets: dict[str, str] = {}  # each member's tea-house wallet secret, in her wallet app
    for member_id, name in (("m-lin", "Lin"), ("m-chen", "Chen")):
        enrolled = await tea.client.enroll_member(member_id, display_name=name)
        wallets[member_id] = enrolled.wallet_secret
        print(f"{name} enrolls at tea-house; the wallet app gets a consent-code secret")
    await _closed_pos_api(tea)
    await tea.client.earn("m-lin", "tea-1", 68_800)
    await tea.client.earn("m-chen", "tea-2", 25_600)
    salon_secret = (await salon.client.enroll_member("m-lin")).wallet_secret
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

    try:
        await noodles.client.get_portfolio("m-lin")
    except grpc.aio.AioRpcError as err:
        print(f"at noodle-bar, m-lin's portfolio without her consent: {_refusal(err)}")
    consents = {  # her wallet: "show noodle-bar my points here?" for each of her shops
        "tea-house": portfolio_code(wallets["m-lin"], "tea-house", "noodle-bar", clock()),
        "hair-salon": portfolio_code(salon_secret, "hair-salon", "noodle-bar", clock()),
    }
    portfolio = await noodles.client.get_portfolio("m-lin", consents)
    lines = ", ".join(
        f"{p.issuer_id} {p.available_points} pts ({_yuan(p.value_fen)})" for p in portfolio.lines
    )
    print(f"  with her codes: {lines}; total {_yuan(portfolio.total_value_fen)}")

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
    # Her wallet shows "spend up to N tea-house points at noodle-bar?" and makes a code bound to
    # exactly that: no good for more points, at another shop, or twice.
    code = spend_code(wallets["m-lin"], "tea-house", "noodle-bar", quote.points, clock())
    auth = await noodles.client.authorize_cross(
        "tea-house",
        "m-lin",
        "bowl-1",
        quote_id=quote.quote_id,
        consent_code=code,
        consent_max_points=quote.points,
    )
    balance = await tea.client.get_balance("m-lin")
    print(
        f"  with m-lin's code for up to {quote.points} points here: authorized "
        f"{auth.authorization_id[:10]}…, tea-house holds "
        f"{balance.held_points} points (available {balance.available_points})"
    )
    captured = await noodles.client.capture_cross(auth.authorization_id)
    print(
        f"  captured: tea-house owes noodle-bar {_yuan(captured.value_fen)} "
        f"(fee {_yuan(captured.fee_fen)}), period {captured.settlement_period}"
    )

    auth3 = await tea.client.authorize_cross(
        "hair-salon",
        "m-lin",
        "tea-9",
        points=100,
        consent_code=spend_code(salon_secret, "hair-salon", "tea-house", 100, clock()),
    )
    captured3 = await tea.client.capture_cross(auth3.authorization_id)
    print(
        f"m-lin pays a tea at tea-house with 100 hair-salon points: hair-salon owes tea-house "
        f"{_yuan(captured3.value_fen)}"
    )

    code = spend_code(wallets["m-chen"], "tea-house", "hair-salon", 200, clock())
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
        print(f"noodle-bar tries m-chen's code (made for hair-salon): {_refusal(err)}")
    try:
        await salon.client.authorize_cross(
            "tea-house", "m-chen", "cut-2", points=200, consent_code=code
        )
    except grpc.aio.AioRpcError as err:
        print(f"hair-salon replays m-chen's used code: {_refusal(err)}")

    print("\nbalances at tea-house")
    for member_id in wallets:
        b = await tea.client.get_balance(member_id)
        print(
            f"  {member_id:<7} available {b.available_points:>4}  held {b.held_points}  "
            f"lifetime {b.lifetime_earned_points}"
        )


async def _proof(exchange: ExchangeApp, shops: dict[str, Shop], clock: DemoClock) -> None:
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
            Signer(shop.config.merchant_id, link_config.private_key, clock),
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


async def _until(handle, *states: str) -> str:  # type: ignore[no-untyped-def]
    from workflows.settlement.workflows import SettlementWorkflow

    for _ in range(1200):
        state = str((await handle.query(SettlementWorkflow.state)).state)
        if state in states:
            return state
        await asyncio.sleep(0.05)
    raise RuntimeError(f"settlement stuck in {state}")


async def _settle(client, worker, period, root, shops, exchange) -> str:  # type: ignore[no-untyped-def]
    import json

    from workflows.settlement.shared import TASK_QUEUE, Decision, SettlementInput
    from workflows.settlement.workflows import SettlementWorkflow, settlement_workflow_id

    handle = await client.start_workflow(
        SettlementWorkflow.run,
        SettlementInput(period),
        id=settlement_workflow_id(period),
        task_queue=TASK_QUEUE,
    )
    print(f"workflow {handle.id} started (as the Schedule does every day at 00:10 Shanghai)")
    await _until(handle, "awaiting_approval", "disputed")
    status = await handle.query(SettlementWorkflow.state)
    print(
        f"  closed batch {status.batch_id}; reconciled with every node's signed statement: "
        f"{len(status.mismatches)} mismatch(es)"
    )
    for line in status.mismatches:
        print(f"    {line}")
    print(f"  netted: {len(status.transfers)} transfer(s); waiting for the operator's approval")
    await handle.execute_update(
        SettlementWorkflow.approve, Decision("demo-operator", "figures checked")
    )
    await _until(handle, "paid")
    folder = root / "settlements" / period
    report = json.loads((folder / "report.json").read_text())
    print(f"  approved by demo-operator; payment instructions written to {folder}")
    print(f"\nsettlement report {period}: {report['record_count']} clearing record(s)")
    print(f"  commitment (Merkle root): {report['commitment_root']}")
    print(f"  {'party':<12}{'pays out':>10}{'receives':>10}{'fees':>8}{'net':>10}")
    for p in report["positions"]:
        print(
            f"  {p['party']:<12}{_yuan(p['payable_fen']):>10}{_yuan(p['receivable_fen']):>10}"
            f"{_yuan(p['fee_fen']):>8}{_signed_yuan(p['net_fen']):>10}"
        )
    for i, t in enumerate(report["transfers"], 1):
        print(f"  transfer {i}: {t['payer']} pays {t['payee']} {_yuan(t['amount_fen'])}")
    for shop in shops.values():
        await _merchant_checks(shop, period, root)
    await handle.execute_update(
        SettlementWorkflow.confirm, Decision("demo-operator", "the bank confirms")
    )
    final = await handle.result()
    print(f"  the bank confirms the transfers: batch {final.batch_id} is {final.state}")
    return str(period)


def _signed_yuan(fen: int) -> str:
    return ("-" if fen < 0 else "+") + _yuan(abs(fen))


async def _merchant_checks(shop: Shop, period: str, root: pathlib.Path) -> None:
    """What `coalition settle verify --save` does: the merchant fetches the exchange's signed
    proof of its entries, keeps it, and checks it against its own books and the root."""
    from merchant_node import settlement_check

    link_config = coalition_link(shop.config)
    assert link_config is not None
    link = ExchangeLink(
        link_config.exchange_endpoint,
        Signer(shop.config.merchant_id, link_config.private_key),
        link_config.exchange_key,
    )
    try:
        envelope = await settlement_check.fetch_proof(link, period)
    finally:
        await link.close()
    saved = root / shop.config.merchant_id / f"settlement-{period}.proof"
    settlement_check.save_proof(saved, envelope)
    check = settlement_check.verify_proof(
        envelope, shop.config.merchant_id, period, link_config.exchange_key, shop.ledger.engine
    )
    print(
        f"  {shop.config.merchant_id:<11} verified its {check.entries} entr"
        f"{'y' if check.entries == 1 else 'ies'} against the root and its own books, net "
        f"{_signed_yuan(check.net_fen)}: {_verdict(check.problems, 'ok')}"
    )


class _MerchantBackend:
    """The merchant's own backend, as the demo plays it: receives the node's webhooks on
    loopback and checks each signature with the node's public key before trusting it."""

    def __init__(self, public_key) -> None:  # type: ignore[no-untyped-def]
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from merchant_node.notify.channels import WebhookRejected, verify_webhook

        self.events: list[dict] = []  # type: ignore[type-arg]
        self.rejected = 0
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    backend.events.append(
                        verify_webhook(public_key, dict(self.headers.items()), body, utc_now())
                    )
                    self.send_response(200)
                except WebhookRejected:
                    backend.rejected += 1
                    self.send_response(401)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/points-events"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def _expiry_cycle(client, shop: Shop, clock: DemoClock) -> None:  # type: ignore[no-untyped-def]
    """A year-old member's points expire; another's are a few days from it and get a reminder
    (by the merchant's webhook); the node's expiry run is the Temporal workflow its Schedule
    starts every night at 03:00."""
    from dataclasses import replace

    from temporalio.worker import Worker

    from merchant_node.notify.channels import WebhookChannel
    from merchant_node.notify.dispatcher import Dispatcher
    from workflows.expiry.activities import ExpiryActivities
    from workflows.expiry.shared import ExpiryInput, node_task_queue
    from workflows.expiry.workflows import WORKFLOWS, ExpiryRunWorkflow

    merchant = shop.config.merchant_id
    print(f"\n-- points expiry at {merchant} (its nightly 03:00 run, started now)")
    clock.offset = -timedelta(days=370)
    await shop.client.enroll_member("m-wang")
    await shop.client.earn("m-wang", "tea-old-1", 30_000)
    clock.offset = -timedelta(days=360)
    await shop.client.enroll_member("m-zhao")
    await shop.client.earn("m-zhao", "tea-old-2", 18_800)
    clock.offset = timedelta(0)
    print(
        "m-wang earned 300 points 370 days ago, m-zhao 188 points 360 days ago "
        "(points live 365 days here)"
    )
    key = load_private_key(pathlib.Path(shop.config.private_key_file))
    backend = _MerchantBackend(key.public_key())
    settings = replace(shop.config.notifications, quiet_hours="")  # the demo runs at any hour
    activities = ExpiryActivities(
        shop.ledger,
        settings,
        lambda clk: Dispatcher(
            shop.ledger.engine,
            {"webhook": WebhookChannel(backend.url, key, clock=clk)},
            settings,
            merchant_id=merchant,
            clock=clk,
        ),
    )
    queue = node_task_queue(merchant)
    try:
        async with Worker(
            client, task_queue=queue, workflows=WORKFLOWS, activities=activities.all()
        ):
            outcome = await client.execute_workflow(
                ExpiryRunWorkflow.run,
                ExpiryInput(merchant),
                id=f"coalition-expiry-{merchant}-demo",
                task_queue=queue,
            )
    finally:
        backend.close()
    expired = outcome.expired
    assert expired is not None and outcome.breakage is not None
    print(
        f"  reminders enqueued: {outcome.reminders_enqueued}; expired: {expired.lots} lot(s), "
        f"{expired.points} points to breakage ({_yuan(outcome.breakage.value_fen)} at issue value)"
    )
    for event in backend.events:
        data = event["data"]
        print(
            f"  the merchant's backend got a signed webhook (verified): {event['member_id']} "
            f"has {data['points']} points expiring on {data['expires_on']} "
            f"({data['reminder_days']}-day reminder)"
        )
    if backend.rejected:
        print(f"  {backend.rejected} webhook(s) REJECTED by the backend")
    b = await shop.client.get_balance("m-wang")
    print(f"  m-wang's balance now: {b.available_points} points")


async def _campaign(client, shops: dict[str, Shop]) -> None:  # type: ignore[no-untyped-def]
    """A short district campaign at two shops — double points, a budget pool each — run by the
    operator's campaign workflow, which switches the shops' rules engines on and off and reports
    what it cost and brought in."""
    from temporalio.worker import Worker

    from workflows.campaigns import TASK_QUEUE, WORKFLOWS, campaign_activities
    from workflows.campaigns.nodes import NodeAccess
    from workflows.campaigns.shared import CampaignRule, CampaignSpec, campaign_workflow_id
    from workflows.campaigns.workflows import CampaignWorkflow

    merchants = ["tea-house", "noodle-bar"]
    nodes = {m: NodeAccess(shops[m].config.listen, shops[m].config.admin_token) for m in merchants}
    now = utc_now().replace(microsecond=0)
    start, end = now + timedelta(seconds=2), now + timedelta(seconds=6)
    spec = CampaignSpec(
        "district_demo",
        "operator",
        merchants,
        start,
        end,
        [CampaignRule(multiplier="2")],
        budget_points=150,
        title="double points, this very minute",
    )
    print(
        f"\n-- a district campaign: double points at {', '.join(merchants)} for 4 seconds, "
        f"{spec.budget_points} points of budget each"
    )
    async with Worker(
        client, task_queue=TASK_QUEUE, workflows=WORKFLOWS, activities=campaign_activities(nodes)
    ):
        handle = await client.start_workflow(
            CampaignWorkflow.run,
            spec,
            id=campaign_workflow_id(spec.campaign_id),
            task_queue=TASK_QUEUE,
        )
        await asyncio.sleep(max(0.0, (start - utc_now()).total_seconds()) + 0.5)
        for merchant, member, order, fen in (
            ("tea-house", "m-lin", "tea-camp-1", 8_800),
            ("noodle-bar", "m-chen", "bowl-camp-1", 12_000),
            ("tea-house", "m-chen", "tea-camp-2", 9_900),
        ):
            shop = shops[merchant]
            await shop.client.enroll_member(member) if merchant == "noodle-bar" else None
            earned = await shop.client.earn(member, order, fen)
            extra = sum(line.points for line in earned.breakdown if "district_demo" in line.rule_id)
            print(
                f"  {member} spends {_yuan(fen)} at {merchant}: +{earned.points_earned} points "
                f"({extra} from the campaign)"
            )
        status = await handle.result()
    report = status.report
    print(f"  the campaign ended ({status.end_reason}); its report:")
    if report is not None:
        for roi in report.merchants:
            f = roi.figures
            print(
                f"  {f.merchant_id:<11} granted {f.points_granted}/{f.budget_points} points "
                f"(cost {_yuan(f.points_cost_fen)}), {f.participating.orders} order(s) "
                f"worth {_yuan(f.participating.revenue_fen)} earned campaign points"
            )
