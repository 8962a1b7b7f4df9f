"""One source of truth for what a merchant's point is worth: onboarding reads it from the node's
own configuration; an operator's different value is refused; a node written in another language
(no node.toml) is onboarded from its public key, endpoint and point value, all required."""

from __future__ import annotations

import asyncio
import pathlib
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
import pytest_asyncio
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coalition.exchange.v1 import exchange_pb2 as xpb
from coalition_kernel.db import make_engine
from coalition_kernel.envelope import Signer
from coalition_kernel.keys import generate_keypair, load_private_key
from exchange.migrate import upgrade
from exchange.runtime import ExchangeApp
from merchant_node.acquirer import ExchangeLink
from merchant_node.config import NodeConfig
from tests.test_network import free_port


def write_pem(path: pathlib.Path, key: Ed25519PrivateKey) -> None:
    from cryptography.hazmat.primitives import serialization

    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


@dataclass
class Registry:
    dir: pathlib.Path
    exchange: ExchangeApp
    target: str
    operator_flags: list[str]

    async def coalition(self, *args: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "coalition_cli.main", *args],
            capture_output=True,
            text=True,
            timeout=90,
        )

    async def operator(self, *args: str) -> subprocess.CompletedProcess[str]:
        return await self.coalition("operator", args[0], *self.operator_flags, *args[1:])

    async def node_init(self, merchant_id: str, fen_per_point: str) -> pathlib.Path:
        done = await self.coalition(
            "node", "init", "--dir", str(self.dir / merchant_id), "--merchant-id", merchant_id,
            "--listen", f"127.0.0.1:{free_port()}", "--fen-per-point", fen_per_point,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return self.dir / merchant_id / "node.toml"

    async def quote(self, acquirer_config: pathlib.Path, issuer_id: str, points: int) -> int:
        """What the exchange pays the acquirer for `points` of the issuer's points, in fen."""
        config = NodeConfig.load(acquirer_config)
        signer = Signer(config.merchant_id, load_private_key(pathlib.Path(config.private_key_file)))
        link = ExchangeLink(self.target, signer, self.exchange.public_key)
        try:
            receipt = await link.call(
                "GetQuote",
                xpb.QuoteCommand(issuer_id=issuer_id, points=points),
                f"q-{uuid.uuid4().hex}",
                xpb.QuoteReceipt,
            )
        finally:
            await link.close()
        return int(receipt.value_fen)


@pytest_asyncio.fixture
async def registry(tmp_path, db_url) -> AsyncIterator[Registry]:  # type: ignore[no-untyped-def]
    engine = make_engine(db_url)
    upgrade(engine)
    operator_key = tmp_path / "operator.pem"
    generate_keypair(operator_key, tmp_path / "operator.pub.pem")
    exchange = ExchangeApp(
        engine,
        Ed25519PrivateKey.generate(),
        load_private_key(operator_key).public_key(),
        recovery_interval=None,
    )
    target = f"127.0.0.1:{await exchange.start()}"
    exchange_pem = tmp_path / "exchange.pub.pem"
    write_pem(exchange_pem, exchange.signer.private_key)
    flags = ["--exchange", target, "--exchange-key", str(exchange_pem), "--key", str(operator_key)]
    try:
        yield Registry(tmp_path, exchange, target, flags)
    finally:
        await exchange.stop(0)
        engine.dispose()


async def test_onboarding_reads_the_point_value_from_the_node(registry):
    tea = await registry.node_init("tea", "5")
    noodles = await registry.node_init("noodles", "1")
    for config, name in ((tea, "Tea"), (noodles, "Noodles")):
        done = await registry.operator("onboard", "--node-config", str(config), "--name", name)
        assert done.returncode == 0, done.stderr
    listed = (await registry.operator("list")).stdout
    assert "fen/point 5 " in next(line for line in listed.splitlines() if line.startswith("tea"))
    assert await registry.quote(noodles, "tea", 100) == 500  # priced at 5 fen a point


async def test_an_operator_value_that_disagrees_with_the_node_is_refused(registry):
    tea = await registry.node_init("tea", "5")
    done = await registry.operator(
        "onboard", "--node-config", str(tea), "--name", "Tea", "--fen-per-point", "1"
    )
    assert done.returncode == 1
    assert "POINT_VALUE_MISMATCH" in done.stderr and "Traceback" not in done.stderr
    assert "tea" not in (await registry.operator("list")).stdout  # nothing registered
    same = await registry.operator(
        "onboard", "--node-config", str(tea), "--name", "Tea", "--fen-per-point", "5/1"
    )
    assert same.returncode == 0, same.stderr  # the same value, written differently


async def test_a_node_in_another_language_is_onboarded_from_its_key_endpoint_and_value(registry):
    key = Ed25519PrivateKey.generate()
    write_pem(registry.dir / "partner.pub.pem", key)
    partial = await registry.operator(
        "onboard", "--public-key", str(registry.dir / "partner.pub.pem"), "--name", "Partner",
        "--merchant-id", "partner",
    )  # fmt: skip
    assert partial.returncode == 1 and "Traceback" not in partial.stderr
    assert "--endpoint, --fen-per-point" in partial.stderr
    done = await registry.operator(
        "onboard", "--public-key", str(registry.dir / "partner.pub.pem"), "--name", "Partner",
        "--merchant-id", "partner", "--endpoint", "partner.example:7443", "--fen-per-point", "3",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "fen/point 3 " in done.stdout and "partner.example:7443" in done.stdout
    noodles = await registry.node_init("noodles", "1")
    await registry.operator("onboard", "--node-config", str(noodles), "--name", "Noodles")
    assert await registry.quote(noodles, "partner", 10) == 30


async def test_an_issuer_refuses_a_hold_priced_at_a_value_it_does_not_hold(coalition):
    """The node learns the registered value with every hold: a registry that says 5 fen while
    the node says 1 is refused before any point is held; once both say 5, redemptions go on."""
    from coalition_kernel.errors import error_info_of
    from exchange.schema import authorizations
    from tests.exchange.test_cross_redemption import member_with_points
    from tests.exchange.test_net_debit_cap import authorize

    tea = await member_with_points(coalition)  # tea values a point at 1 fen
    await coalition.operator.set_terms("tea", fen_per_point="5")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await authorize(coalition, 100)
    info = error_info_of(err.value)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert info is not None and info.reason == "POINT_VALUE_MISMATCH"
    assert dict(info.metadata) == {"registered_fen_per_point": "5", "issuer_fen_per_point": "1"}
    balance = await tea.client.get_balance("m1")
    assert (balance.available_points, balance.held_points) == (1000, 0)  # nothing held
    with coalition.exchange.engine.connect() as conn:
        statuses = conn.execute(sa.select(authorizations.c.status)).scalars().all()
    assert statuses == ["failed"]

    tea.ledger.configure_rate("1", "5")  # the merchant agrees: its node now says 5 too
    auth = await authorize(coalition, 100, order="o2")
    assert (auth.points, auth.value_fen) == (100, 500)
