"""TLS and mTLS on the node's listener, as an option: API keys are still required on top."""

from __future__ import annotations

import grpc
import pytest

from coalition_kernel.errors import error_info_of
from merchant_node.auth.tls import channel_credentials, server_credentials
from merchant_node.client import MerchantNodeClient
from tests.conftest import start_node
from tests.exchange.test_mtls import pki  # noqa: F401 - the fixture: a CA and its certificates


def write(tmp_path, name: str, pem: bytes) -> str:  # type: ignore[no-untyped-def]
    path = tmp_path / name
    path.write_bytes(pem)
    return str(path)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("mutual", [False, True], ids=["tls", "mtls"])
async def test_a_tls_node_answers_its_clients_and_nothing_in_plaintext(
    ledger,
    pki,  # noqa: F811
    tmp_path,
    mutual,
):
    ca, certs = pki
    server_key, server_cert = certs["exchange"]  # a server certificate for 127.0.0.1
    ca_file = write(tmp_path, "ca.pem", ca)
    credentials = server_credentials(
        write(tmp_path, "node.pem", server_cert),
        write(tmp_path, "node.key", server_key),
        ca_file if mutual else "",
    )
    till_key, till_cert = certs["noodles"]
    till = channel_credentials(
        ca_file,
        write(tmp_path, "till.pem", till_cert) if mutual else "",
        write(tmp_path, "till.key", till_key) if mutual else "",
    )
    async for node in start_node(ledger, credentials=credentials):
        async with MerchantNodeClient(node.target, api_key=node.api_key, credentials=till) as c:
            await c.enroll_member("m1")
            assert (await c.earn("m1", "o1", 1_000)).points_earned == 10
        async with MerchantNodeClient(node.target, credentials=till, max_attempts=1) as keyless:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await keyless.get_balance("m1")
            assert error_info_of(err.value).reason == "API_KEY_REQUIRED"
        async with MerchantNodeClient(
            node.target, api_key=node.api_key, max_attempts=1, timeout=3
        ) as plaintext:
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await plaintext.get_balance("m1")
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        if mutual:  # a client without a certificate from the CA never completes the handshake
            anonymous = channel_credentials(ca_file)
            async with MerchantNodeClient(
                node.target, api_key=node.api_key, credentials=anonymous, max_attempts=1, timeout=3
            ) as stranger:
                with pytest.raises(grpc.aio.AioRpcError) as err:
                    await stranger.get_balance("m1")
                assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_tls_settings_are_checked():
    assert server_credentials("", "") is None
    with pytest.raises(ValueError):
        server_credentials("", "key.pem")
    with pytest.raises(ValueError):
        server_credentials("cert.pem", "")
