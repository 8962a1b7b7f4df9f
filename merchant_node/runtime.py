"""Wiring a node together: config → database (migrated) → ledger → gRPC server."""

from __future__ import annotations

import pathlib
import secrets
from collections.abc import Callable
from datetime import datetime

from cryptography.hazmat.primitives import serialization

from coalition_kernel.db import make_engine, utc_now
from coalition_kernel.keys import generate_keypair, load_private_key, load_public_key
from merchant_node.config import NodeConfig
from merchant_node.ledger.earning import EarnPolicy
from merchant_node.ledger.migrate import upgrade
from merchant_node.ledger.service import NodeLedger
from merchant_node.server import CoalitionLink


def init_node(directory: pathlib.Path, config: NodeConfig) -> pathlib.Path:
    """Creates the node's database and key pair and writes its config; returns the config path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "node.toml"
    if path.exists():
        raise FileExistsError(
            f"{path} exists; a node is initialised once (its key is its identity)"
        )
    private = directory / config.private_key_file
    public = directory / config.public_key_file
    kid = generate_keypair(private, public)
    config = NodeConfig(
        **{
            **config.__dict__,
            "private_key_file": str(private.resolve()),
            "public_key_file": str(public.resolve()),
            "key_id": kid,
            "admin_token": config.admin_token or secrets.token_urlsafe(24),
        }
    )
    open_ledger(config).engine.dispose()
    config.save(path)
    return path


def open_ledger(
    config: NodeConfig, *, pool_size: int = 16, clock: Callable[[], datetime] = utc_now
) -> NodeLedger:
    """The node's ledger, its database migrated to the newest schema and its rates current."""
    engine = make_engine(config.database_url, pool_size=pool_size)
    upgrade(engine)
    ledger = NodeLedger(
        engine, policy=EarnPolicy(points_ttl_days=config.points_ttl_days or None), clock=clock
    )
    ledger.configure_rate(config.points_per_yuan, config.fen_per_point)
    return ledger


def coalition_link(
    config: NodeConfig, clock: Callable[[], datetime] = utc_now
) -> CoalitionLink | None:
    """The node's link to its exchange, if the config names one."""
    if not config.exchange_endpoint:
        return None
    return CoalitionLink(
        merchant_id=config.merchant_id,
        private_key=load_private_key(pathlib.Path(config.private_key_file)),
        exchange_key=load_public_key(pathlib.Path(config.exchange_public_key_file)),
        exchange_endpoint=config.exchange_endpoint,
        clock=clock,
    )


def raw_public_key(config: NodeConfig) -> bytes:
    """The node's public key, raw (what the operator registers): read from its public key file,
    so onboarding never needs the merchant's private key."""
    return load_public_key(pathlib.Path(config.public_key_file)).public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
