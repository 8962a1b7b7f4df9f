"""A real coalition on loopback: an exchange and three merchant nodes, each a gRPC server over
its own database (SQLite files, then PostgreSQL databases), sharing one controllable clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest_asyncio
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coalition_kernel import consent as codes
from coalition_kernel.db import make_engine
from coalition_kernel.envelope import OPERATOR_ID, Signer
from exchange.issuers import IssuerGateway
from exchange.migrate import upgrade
from exchange.operator_client import OperatorClient
from exchange.redemption import Settings
from exchange.refusals import Limits as RefusalLimits
from exchange.runtime import ExchangeApp
from merchant_node.client import MerchantNodeClient
from merchant_node.ledger import consent
from merchant_node.ledger.schema import members
from merchant_node.ledger.service import NodeLedger
from merchant_node.server import CoalitionLink, build_server
from tests.conftest import FakeClock, issue_key, open_test_ledger

MERCHANTS: tuple[str, ...] = ("tea", "noodles", "salon")


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass
class Node:
    merchant_id: str
    key: Ed25519PrivateKey
    ledger: NodeLedger
    target: str
    client: MerchantNodeClient
    stop: object = None
    # The POS's API key (every scope), which `client` presents.
    api_key: str = ""

    def wallet_secret(self, member_id: str) -> str:
        with self.ledger.engine.connect() as conn:
            member = conn.execute(sa.select(members).where(members.c.member_id == member_id)).one()
        return consent.wallet_secret(member)

    def wallet_code(
        self, member_id: str, clock: FakeClock, acquirer: str, points: int, order_id: str = ""
    ) -> str:
        """What the member's wallet shows for "spend up to `points` of this shop's points at
        `acquirer`" (a bound consent code, docs/protocol.md)."""
        secret = self.wallet_secret(member_id)
        return codes.spend_code(secret, self.merchant_id, acquirer, points, clock.now, order_id)

    def portfolio_code(self, member_id: str, clock: FakeClock, acquirer: str) -> str:
        """The member's wallet code letting `acquirer` see her balance at this shop."""
        return codes.portfolio_code(
            self.wallet_secret(member_id), self.merchant_id, acquirer, clock.now
        )


@dataclass
class Coalition:
    clock: FakeClock
    exchange: ExchangeApp
    exchange_target: str
    operator: OperatorClient
    operator_key: Ed25519PrivateKey
    nodes: dict[str, Node] = field(default_factory=dict)

    def __getitem__(self, merchant_id: str) -> Node:
        return self.nodes[merchant_id]


async def start_coalition(
    new_database,
    clock: FakeClock,
    settings: Settings | None = None,
    issuers: IssuerGateway | None = None,
    refusal_limits: RefusalLimits | None = None,
) -> AsyncIterator[Coalition]:  # type: ignore[no-untyped-def]
    exchange_key, operator_key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    engine = make_engine(new_database("exchange"))
    upgrade(engine)
    exchange = ExchangeApp(
        engine,
        exchange_key,
        operator_key.public_key(),
        settings=settings or Settings(issuer_timeout=3.0),
        clock=clock,
        recovery_interval=None,
        issuers=issuers,
        refusal_limits=refusal_limits,
    )
    port = await exchange.start()
    target = f"127.0.0.1:{port}"
    operator = OperatorClient(target, Signer(OPERATOR_ID, operator_key, clock), exchange.public_key)
    coalition = Coalition(clock, exchange, target, operator, operator_key)
    servers = []
    try:
        for merchant_id in MERCHANTS:
            key = Ed25519PrivateKey.generate()
            ledger = open_test_ledger(new_database(merchant_id), clock)
            link = CoalitionLink(merchant_id, key, exchange.public_key, target, clock)
            server, offload = build_server(ledger, "127.0.0.1:0", coalition=link)
            node_port = await server.start()
            servers.append((server, offload, ledger))
            node_target = f"127.0.0.1:{node_port}"
            await operator.onboard(
                merchant_id, merchant_id.title(), raw_public(key), node_target, fee_bps=100
            )
            api_key = issue_key(ledger)
            client = MerchantNodeClient(node_target, api_key=api_key, timeout=20, max_attempts=2)
            coalition.nodes[merchant_id] = Node(
                merchant_id, key, ledger, node_target, client, api_key=api_key
            )
        yield coalition
    finally:
        for node in coalition.nodes.values():
            await node.client.close()
        for server, offload, ledger in servers:
            await server.stop(1)
            offload.shutdown()
            ledger.engine.dispose()
        await operator.close()
        await exchange.stop(1)
        engine.dispose()


@pytest_asyncio.fixture
async def coalition(new_database, clock) -> AsyncIterator[Coalition]:  # type: ignore[no-untyped-def]
    async for running in start_coalition(new_database, clock):
        yield running
