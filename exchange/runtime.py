"""Wiring the exchange: config → database (migrated) → keys → services → gRPC server, plus the
recovery sweep that finishes authorizations stuck mid-way."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pathlib
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timedelta

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import field_validator, model_validator
from pydantic.dataclasses import dataclass
from sqlalchemy import Engine

from coalition_kernel.db import make_engine, utc_now
from coalition_kernel.envelope import EXCHANGE_ID, Signer, Verifier
from coalition_kernel.group_commit import GroupCommit
from coalition_kernel.keys import generate_keypair, load_private_key, load_public_key
from coalition_kernel.rpc import Offload, Server
from coalition_kernel.settings import STRICT_KEYS, load_config, toml_text
from exchange.issuers import GrpcIssuerGateway, IssuerGateway
from exchange.migrate import upgrade
from exchange.redemption import Redemptions, Settings
from exchange.refusals import Limits as RefusalLimits
from exchange.registry_cache import CachedKeys, RegistryCache
from exchange.server import build_exchange_server

log = logging.getLogger(__name__)

ENV_PREFIX = "COALITION_EXCHANGE"


@dataclass(frozen=True, config=STRICT_KEYS)
class ExchangeConfig:
    """exchange.toml's [exchange] table, validated whole when loaded (every problem named by
    file, key and expected form). Environment variables override any key:
    COALITION_EXCHANGE__<KEY>, e.g. COALITION_EXCHANGE__DATABASE_URL. To add a key: a field
    with a default (older files load unchanged) and, if its form is constrained, a
    field_validator raising ValueError that names the expected form; a table of its own is a
    field whose type is a `@dataclass(frozen=True, config=STRICT_KEYS)` class (see
    merchant_node/config.py)."""

    database_url: str
    listen: str = "127.0.0.1:50050"
    private_key_file: str = "exchange_ed25519.pem"
    public_key_file: str = "exchange_ed25519.pub.pem"
    operator_public_key_file: str = "operator_ed25519.pub.pem"
    quote_ttl_seconds: int = 120
    hold_ttl_seconds: int = 900
    issuer_timeout_seconds: int = 5
    clock_skew_seconds: int = 300
    recovery_interval_seconds: int = 10
    tls_cert_file: str = ""
    tls_key_file: str = ""
    client_ca_file: str = ""
    # Calling issuers' nodes over TLS: the CA (PEM) that signed the nodes' certificates (set:
    # every issuer channel is TLS; "": plaintext), and for nodes that require mTLS the
    # exchange's own client certificate and its key (given together, and only with the CA).
    issuer_tls_ca_file: str = ""
    issuer_tls_cert_file: str = ""
    issuer_tls_key_file: str = ""
    # Serve Prometheus /metrics on this port (0: not served); COALITION_METRICS_PORT wins.
    metrics_port: int = 0

    @field_validator("database_url")
    @classmethod
    def _given(cls, value: str) -> str:
        if not value:
            raise ValueError("must not be empty")
        return value

    @field_validator("metrics_port")
    @classmethod
    def _port(cls, value: int) -> int:
        if not 0 <= value <= 65535:
            raise ValueError(f"{value} is not a port (0 for none, or 1-65535)")
        return value

    @field_validator(
        "quote_ttl_seconds", "hold_ttl_seconds", "issuer_timeout_seconds", "clock_skew_seconds"
    )
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"{value} must be at least 1 second")
        return value

    @field_validator("recovery_interval_seconds")
    @classmethod
    def _interval(cls, value: int) -> int:
        if value < 0:
            raise ValueError(f"{value} must be 0 (no recovery sweep) or more seconds")
        return value

    @field_validator("issuer_tls_ca_file", "issuer_tls_cert_file", "issuer_tls_key_file")
    @classmethod
    def _readable(cls, value: str) -> str:
        # Checked when the file is loaded, so a wrong path is named before the exchange starts
        # rather than surfacing as every cross-shop redemption failing.
        if value:
            try:
                pathlib.Path(value).read_bytes()
            except OSError as exc:
                raise ValueError(
                    f'"{value}" is not a readable PEM file ({exc.strerror or exc})'
                ) from None
        return value

    @model_validator(mode="after")
    def _tls_whole(self) -> ExchangeConfig:
        tls = (self.tls_cert_file, self.tls_key_file, self.client_ca_file)
        if any(tls) and not all(tls):
            raise ValueError(
                "tls_cert_file, tls_key_file and client_ca_file are given together or not at all"
            )
        if bool(self.issuer_tls_cert_file) != bool(self.issuer_tls_key_file):
            raise ValueError("issuer_tls_cert_file and issuer_tls_key_file are given together")
        if self.issuer_tls_cert_file and not self.issuer_tls_ca_file:
            raise ValueError(
                "issuer_tls_cert_file needs issuer_tls_ca_file (without it issuers are called "
                "in plaintext)"
            )
        return self

    def issuer_credentials(self) -> grpc.ChannelCredentials | None:
        """What the issuer gateway presents to nodes: None (plaintext) without a CA."""
        if not self.issuer_tls_ca_file:
            return None
        cert, key = self.issuer_tls_cert_file, self.issuer_tls_key_file
        return grpc.ssl_channel_credentials(
            root_certificates=pathlib.Path(self.issuer_tls_ca_file).read_bytes(),
            private_key=pathlib.Path(key).read_bytes() if key else None,
            certificate_chain=pathlib.Path(cert).read_bytes() if cert else None,
        )

    @classmethod
    def load(cls, path: pathlib.Path) -> ExchangeConfig:
        """The file with the environment over it; ConfigError lists every problem."""
        return load_config(cls, path, table="exchange", env_prefix=ENV_PREFIX)

    def save(self, path: pathlib.Path) -> None:
        path.write_text(
            toml_text(self, "exchange", "Exchange configuration (coalition exchange init).")
        )

    def settings(self) -> Settings:
        return Settings(
            quote_ttl=timedelta(seconds=self.quote_ttl_seconds),
            hold_ttl=timedelta(seconds=self.hold_ttl_seconds),
            issuer_timeout=float(self.issuer_timeout_seconds),
        )


def init_exchange(directory: pathlib.Path, config: ExchangeConfig) -> pathlib.Path:
    """Creates the exchange's key pair and the operator's, migrates the database, writes config."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "exchange.toml"
    if path.exists():
        raise FileExistsError(f"{path} exists; the exchange is initialised once")
    generate_keypair(directory / "exchange_ed25519.pem", directory / "exchange_ed25519.pub.pem")
    generate_keypair(directory / "operator_ed25519.pem", directory / "operator_ed25519.pub.pem")
    config = ExchangeConfig(
        **{
            **asdict(config),
            "private_key_file": str((directory / "exchange_ed25519.pem").resolve()),
            "public_key_file": str((directory / "exchange_ed25519.pub.pem").resolve()),
            "operator_public_key_file": str((directory / "operator_ed25519.pub.pem").resolve()),
        }
    )
    engine = make_engine(config.database_url)
    upgrade(engine)
    engine.dispose()
    config.save(path)
    return path


class ExchangeApp:
    """A running exchange: its server, its issuer gateway and its recovery loop."""

    def __init__(
        self,
        engine: Engine,
        private_key: Ed25519PrivateKey,
        operator_key: Ed25519PublicKey,
        *,
        listen: str = "127.0.0.1:0",
        settings: Settings | None = None,
        clock: Callable[[], datetime] = utc_now,
        skew: timedelta = timedelta(minutes=5),
        issuers: IssuerGateway | None = None,
        recovery_interval: float | None = 10.0,
        server_credentials: grpc.ServerCredentials | None = None,
        workers: int = 16,
        refusal_limits: RefusalLimits | None = None,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.signer = Signer(EXCHANGE_ID, private_key, clock)
        # Keys and standing from memory, checked against the database once per transaction.
        self.registry = RegistryCache(engine)
        self.verifier = Verifier(
            EXCHANGE_ID, CachedKeys(self.registry, operator_key), skew=skew, clock=clock
        )
        self.offload = Offload(workers)
        # Requests in flight share one transaction and one turn at the audit chain's lock.
        self.committer = GroupCommit(engine, name="exchange-commit", optimistic=True)
        self.issuers = issuers or GrpcIssuerGateway()
        self.redemptions = Redemptions(
            engine,
            self.signer,
            self.verifier,
            self.issuers,
            self.offload,
            clock,
            settings,
            registry_cache=self.registry,
        )
        self.server: Server = build_exchange_server(
            engine,
            self.signer,
            self.verifier,
            self.redemptions,
            self.offload,
            clock,
            listen,
            require_tls_identity=server_credentials is not None,
            refusal_limits=refusal_limits,
            committer=self.committer,
        )
        self.server.credentials = server_credentials
        self.recovery_interval = recovery_interval
        self._recovery: asyncio.Task[None] | None = None

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.signer.private_key.public_key()

    async def start(self) -> int:
        port = await self.server.start()
        if self.recovery_interval:
            self._recovery = asyncio.create_task(self._recover_forever(self.recovery_interval))
        return port

    async def _recover_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                done = await self.redemptions.recover()
                if any(done.values()):
                    log.info("recovery sweep: %s", done)
            except Exception:  # keep sweeping; the next round retries
                log.exception("recovery sweep failed")

    async def stop(self, grace: float = 5.0) -> None:
        if self._recovery is not None:
            self._recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recovery
        await self.server.stop(grace)
        await self.issuers.close()
        self.committer.close()
        self.offload.shutdown()

    @classmethod
    def from_config(
        cls, config: ExchangeConfig, clock: Callable[[], datetime] = utc_now
    ) -> ExchangeApp:
        engine = make_engine(config.database_url)
        upgrade(engine)
        credentials = None
        if config.tls_cert_file:
            credentials = grpc.ssl_server_credentials(
                [
                    (
                        pathlib.Path(config.tls_key_file).read_bytes(),
                        pathlib.Path(config.tls_cert_file).read_bytes(),
                    )
                ],
                root_certificates=pathlib.Path(config.client_ca_file).read_bytes(),
                require_client_auth=True,
            )
        return cls(
            engine,
            load_private_key(pathlib.Path(config.private_key_file)),
            load_public_key(pathlib.Path(config.operator_public_key_file)),
            listen=config.listen,
            settings=config.settings(),
            skew=timedelta(seconds=config.clock_skew_seconds),
            recovery_interval=config.recovery_interval_seconds,
            server_credentials=credentials,
            issuers=GrpcIssuerGateway(config.issuer_credentials()),
            clock=clock,
        )
