"""mTLS as an option: the client certificate's identity is bound to the signing merchant."""

from __future__ import annotations

import ipaddress
import uuid
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID

from coalition.exchange.v1 import exchange_pb2 as xpb
from coalition.exchange.v1 import exchange_pb2_grpc
from coalition_kernel.db import make_engine
from coalition_kernel.envelope import EXCHANGE_ID, OPERATOR_ID, Signer
from coalition_kernel.errors import error_info_of
from exchange.migrate import upgrade
from exchange.operator_client import OperatorClient
from exchange.runtime import ExchangeApp
from tests.exchange.conftest import raw_public


def _pem(obj) -> bytes:  # type: ignore[no-untyped-def]
    if isinstance(obj, x509.Certificate):
        return obj.public_bytes(serialization.Encoding.PEM)
    return obj.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cert(name: str, ca_key, ca_name, *, server: bool = False):  # type: ignore[no-untyped-def]
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    san: list[x509.GeneralName] = [x509.DNSName(f"{name}.merchants.coalition")]
    if server:
        san = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return _pem(key), _pem(cert)


@pytest.fixture
def pki():  # type: ignore[no-untyped-def]
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "coalition test CA")])
    now = datetime.now(UTC)
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    certs = {n: _cert(n, ca_key, ca_name) for n in ("operator", "noodles", "salon")}
    certs["exchange"] = _cert("exchange", ca_key, ca_name, server=True)
    return _pem(ca), certs


async def test_a_certificate_binds_the_caller_to_its_merchant_id(pki, tmp_path):
    ca, certs = pki
    exchange_key, operator_key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    upgrade(engine)
    server_key, server_cert = certs["exchange"]
    app = ExchangeApp(
        engine,
        exchange_key,
        operator_key.public_key(),
        recovery_interval=None,
        server_credentials=grpc.ssl_server_credentials(
            [(server_key, server_cert)], root_certificates=ca, require_client_auth=True
        ),
    )
    port = await app.start()
    target = f"127.0.0.1:{port}"

    def creds(name: str) -> grpc.ChannelCredentials:
        key, cert = certs[name]
        return grpc.ssl_channel_credentials(
            root_certificates=ca, private_key=key, certificate_chain=cert
        )

    keys = {m: Ed25519PrivateKey.generate() for m in ("noodles", "salon")}
    operator = OperatorClient(
        target, Signer(OPERATOR_ID, operator_key), app.public_key, credentials=creds("operator")
    )
    try:
        for merchant, key in keys.items():
            await operator.onboard(merchant, merchant, raw_public(key), "127.0.0.1:1")

        async def quote(cert_of: str, signer: str, channel_creds=None):  # type: ignore[no-untyped-def]
            envelope = Signer(signer, keys[signer]).seal(
                xpb.QuoteCommand(
                    issuer_id="salon" if signer == "noodles" else "noodles", points=10
                ),
                audience=EXCHANGE_ID,
                request_id=uuid.uuid4().hex,
            )
            async with grpc.aio.secure_channel(target, channel_creds or creds(cert_of)) as channel:
                stub = exchange_pb2_grpc.ExchangeServiceStub(channel)
                return await stub.GetQuote(xpb.GetQuoteRequest(envelope=envelope), timeout=5)

        assert (await quote("noodles", "noodles")).envelope.signer_id == EXCHANGE_ID
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await quote("salon", "noodles")  # salon's certificate, noodles' signature
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert error_info_of(err.value).reason == "IDENTITY_MISMATCH"
        no_cert = grpc.ssl_channel_credentials(root_certificates=ca)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await quote("", "noodles", no_cert)
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE  # the handshake fails
    finally:
        await operator.close()
        await app.stop(1)
        engine.dispose()
