"""TLS, or mutual TLS, on the node's listener: configured like the exchange's (PEM files).

A certificate and its key give TLS: callers check the node is the node. A client CA as well
gives mTLS: only callers holding a certificate that CA signed complete the handshake (API keys
are still required on top; a certificate proves the machine, a key the client and its scopes).
The listener also serves IssuerService to the exchange: an exchange reaching a TLS node is
given the CA (and for mTLS its client certificate) by exchange.toml's `issuer_tls_*_file` keys
(docs/configuration.md, "TLS between the exchange and the nodes").
"""

from __future__ import annotations

import pathlib

import grpc


def server_credentials(
    cert_file: str, key_file: str, client_ca_file: str = ""
) -> grpc.ServerCredentials | None:
    """The listener's credentials; None (plaintext) when no certificate is configured."""
    if not cert_file:
        if key_file or client_ca_file:
            raise ValueError("tls_key_file and tls_client_ca_file need tls_cert_file")
        return None
    if not key_file:
        raise ValueError("tls_cert_file needs tls_key_file (the certificate's private key)")
    pair = (pathlib.Path(key_file).read_bytes(), pathlib.Path(cert_file).read_bytes())
    if not client_ca_file:
        return grpc.ssl_server_credentials([pair])
    return grpc.ssl_server_credentials(
        [pair],
        root_certificates=pathlib.Path(client_ca_file).read_bytes(),
        require_client_auth=True,
    )


def channel_credentials(
    ca_file: str, cert_file: str = "", key_file: str = ""
) -> grpc.ChannelCredentials:
    """What a client of a TLS node presents: the CA that signed the node's certificate, and for
    mTLS its own certificate and key."""
    return grpc.ssl_channel_credentials(
        root_certificates=pathlib.Path(ca_file).read_bytes(),
        private_key=pathlib.Path(key_file).read_bytes() if key_file else None,
        certificate_chain=pathlib.Path(cert_file).read_bytes() if cert_file else None,
    )
