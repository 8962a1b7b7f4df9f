"""The exchange calling an issuer node that serves mTLS, configured from exchange.toml's keys
(issuer_tls_ca_file, issuer_tls_cert_file, issuer_tls_key_file): with its client certificate a
cross-shop redemption goes through; without it the node refuses the handshake and the
redemption fails as for an unreachable issuer, changing no balance."""

from __future__ import annotations

import contextlib
import pathlib
from collections.abc import AsyncIterator

import grpc
import pytest

from coalition_kernel.envelope import OPERATOR_ID, Signer
from coalition_kernel.errors import error_info_of
from coalition_kernel.keys import generate_keypair, load_private_key
from coalition_kernel.settings import ConfigError
from exchange.operator_client import OperatorClient
from exchange.runtime import ExchangeApp, ExchangeConfig
from merchant_node.auth.tls import channel_credentials, server_credentials
from merchant_node.client import MerchantNodeClient
from merchant_node.server import CoalitionLink, build_server
from tests.conftest import FakeClock, issue_key, open_test_ledger
from tests.exchange.conftest import Node, raw_public
from tests.exchange.test_mtls import pki  # noqa: F401 - the fixture: a CA and its certificates


def write(directory: pathlib.Path, name: str, pem: bytes) -> str:
    path = directory / name
    path.write_bytes(pem)
    return str(path)


@contextlib.asynccontextmanager
async def coalition(
    tmp_path: pathlib.Path, pki_files: dict[str, str], clock: FakeClock, *, client_cert: bool
) -> AsyncIterator[dict[str, Node]]:
    """An exchange from its config, "tea" (issuer) serving mTLS, "noodles" (acquirer) plaintext."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    generate_keypair(tmp_path / "x.pem", tmp_path / "x.pub.pem")
    generate_keypair(tmp_path / "op.pem", tmp_path / "op.pub.pem")
    config = ExchangeConfig(
        database_url=f"sqlite:///{tmp_path / 'exchange.db'}",
        listen="127.0.0.1:0",
        private_key_file=str(tmp_path / "x.pem"),
        public_key_file=str(tmp_path / "x.pub.pem"),
        operator_public_key_file=str(tmp_path / "op.pub.pem"),
        issuer_timeout_seconds=3,
        recovery_interval_seconds=0,
        issuer_tls_ca_file=pki_files["ca"],
        issuer_tls_cert_file=pki_files["exchange_cert"] if client_cert else "",
        issuer_tls_key_file=pki_files["exchange_key"] if client_cert else "",
    )
    exchange = ExchangeApp.from_config(config, clock)
    target = f"127.0.0.1:{await exchange.start()}"
    operator_key = load_private_key(tmp_path / "op.pem")
    operator = OperatorClient(target, Signer(OPERATOR_ID, operator_key, clock), exchange.public_key)
    nodes: dict[str, Node] = {}
    servers = []
    try:
        for merchant_id, tls in (("tea", True), ("noodles", False)):
            key = Ed25519PrivateKey.generate()
            ledger = open_test_ledger(f"sqlite:///{tmp_path / merchant_id}.db", clock)
            listener = None
            till = None
            if tls:  # mTLS: only holders of a certificate from the CA complete the handshake
                listener = server_credentials(
                    pki_files["node_cert"], pki_files["node_key"], pki_files["ca"]
                )
                till = channel_credentials(
                    pki_files["ca"], pki_files["till_cert"], pki_files["till_key"]
                )
            link = CoalitionLink(merchant_id, key, exchange.public_key, target, clock)
            server, offload = build_server(
                ledger, "127.0.0.1:0", coalition=link, credentials=listener
            )
            node_target = f"127.0.0.1:{await server.start()}"
            servers.append((server, offload, ledger))
            await operator.onboard(
                merchant_id, merchant_id.title(), raw_public(key), node_target, fee_bps=100
            )
            api_key = issue_key(ledger)
            client = MerchantNodeClient(
                node_target, api_key=api_key, credentials=till, timeout=20, max_attempts=1
            )
            nodes[merchant_id] = Node(
                merchant_id, key, ledger, node_target, client, api_key=api_key
            )
        yield nodes
    finally:
        for node in nodes.values():
            await node.client.close()
        for server, offload, ledger in servers:
            await server.stop(1)
            offload.shutdown()
            ledger.engine.dispose()
        await operator.close()
        await exchange.stop(1)
        exchange.engine.dispose()


@pytest.fixture
def pki_files(pki, tmp_path):  # type: ignore[no-untyped-def]  # noqa: F811
    ca, certs = pki
    node_key, node_cert = certs["exchange"]  # a server certificate for 127.0.0.1
    exchange_key, exchange_cert = certs["operator"]  # any client certificate the CA signed
    till_key, till_cert = certs["noodles"]
    pem = tmp_path / "pem"
    pem.mkdir()
    return {
        "ca": write(pem, "ca.pem", ca),
        "node_cert": write(pem, "node.pem", node_cert),
        "node_key": write(pem, "node.key", node_key),
        "exchange_cert": write(pem, "exchange.pem", exchange_cert),
        "exchange_key": write(pem, "exchange.key", exchange_key),
        "till_cert": write(pem, "till.pem", till_cert),
        "till_key": write(pem, "till.key", till_key),
    }


async def test_the_exchange_redeems_at_an_mtls_issuer_with_its_client_certificate(
    pki_files, tmp_path, clock
):
    async with coalition(tmp_path, pki_files, clock, client_cert=True) as nodes:
        tea, noodles = nodes["tea"], nodes["noodles"]
        await tea.client.enroll_member("m1")
        await tea.client.earn("m1", "seed", 100_000)
        code = tea.wallet_code("m1", clock, "noodles", 300)
        auth = await noodles.client.authorize_cross(
            "tea", "m1", "bowl-1", points=300, consent_code=code
        )
        balance = await tea.client.get_balance("m1")
        assert (balance.available_points, balance.held_points) == (700, 300)
        captured = await noodles.client.capture_cross(auth.authorization_id)
        assert (captured.issuer_id, captured.points, captured.value_fen) == ("tea", 300, 300)
        balance = await tea.client.get_balance("m1")
        assert (balance.available_points, balance.held_points) == (700, 0)


async def test_without_its_client_certificate_the_issuer_is_unreachable(pki_files, tmp_path, clock):
    async with coalition(tmp_path, pki_files, clock, client_cert=False) as nodes:
        tea, noodles = nodes["tea"], nodes["noodles"]
        await tea.client.enroll_member("m1")
        await tea.client.earn("m1", "seed", 100_000)
        code = tea.wallet_code("m1", clock, "noodles", 300)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await noodles.client.authorize_cross(
                "tea", "m1", "bowl-1", points=300, consent_code=code
            )
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        info = error_info_of(err.value)
        assert info is not None and info.reason == "ISSUER_UNAVAILABLE"
        balance = await tea.client.get_balance("m1")
        assert (balance.available_points, balance.held_points) == (1000, 0)


def test_issuer_tls_keys_are_checked(pki_files, tmp_path):
    base = tmp_path / "exchange.toml"
    given = {"ca": pki_files["ca"], "cert": pki_files["exchange_cert"]}

    def problems(**keys: str) -> list[str]:
        lines = ['[exchange]\ndatabase_url = "sqlite://"\n']
        lines += [f'issuer_tls_{k}_file = "{v}"\n' for k, v in keys.items()]
        base.write_text("".join(lines))
        with pytest.raises(ConfigError) as err:
            ExchangeConfig.load(base)
        return err.value.problems

    missing = str(tmp_path / "nowhere.pem")
    assert problems(ca=missing)[0].startswith(f'exchange.issuer_tls_ca_file: "{missing}" is not')
    assert problems(**given) == [
        "exchange: issuer_tls_cert_file and issuer_tls_key_file are given together"
    ]
    assert problems(cert=given["cert"], key=pki_files["exchange_key"]) == [
        "exchange: issuer_tls_cert_file needs issuer_tls_ca_file (without it issuers are "
        "called in plaintext)"
    ]
    base.write_text(
        f'[exchange]\ndatabase_url = "sqlite://"\nissuer_tls_ca_file = "{given["ca"]}"\n'
    )
    assert ExchangeConfig.load(base).issuer_credentials() is not None
