"""Wiring a node together: config → database (migrated) → ledger → gRPC server."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable
from datetime import datetime

from cryptography.hazmat.primitives import serialization
from sqlalchemy import Engine, select

from coalition_kernel.db import make_engine, utc_now
from coalition_kernel.keys import generate_keypair, load_private_key, load_public_key
from merchant_node.auth.domain import ADMIN
from merchant_node.auth.service import add_client
from merchant_node.auth.vault import ENV, WalletKeys, reseal
from merchant_node.config import NodeConfig
from merchant_node.ledger.earning import EarnPolicy
from merchant_node.ledger.migrate import upgrade
from merchant_node.ledger.schema import members
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
    keys = WalletKeys.generate()
    keys.write(directory / WALLET_KEY_FILE)
    config = NodeConfig(
        **{
            **config.__dict__,
            "private_key_file": str(private.resolve()),
            "public_key_file": str(public.resolve()),
            "key_id": kid,
            "wallet_key_file": str((directory / WALLET_KEY_FILE).resolve()),
        }
    )
    ledger = open_ledger(config, wallet_keys=keys)
    # The merchant's own tools (coalition rules/campaign, the campaign worker) present this
    # admin-scoped key; the node keeps only its digest.
    admin = add_client(ledger.engine, "node-admin", ADMIN)
    ledger.engine.dispose()
    NodeConfig(**{**config.__dict__, "admin_token": admin.key}).save(path)
    return path


WALLET_KEY_FILE = "wallet.key"


def wallet_key_path(config: NodeConfig) -> pathlib.Path:
    """The node's wallet key file: its config's, or `wallet.key` beside its private key."""
    if config.wallet_key_file:
        return pathlib.Path(config.wallet_key_file)
    return pathlib.Path(config.private_key_file).parent / WALLET_KEY_FILE


def load_wallet_keys(
    config: NodeConfig, engine: Engine, path: pathlib.Path | None = None, *, create: bool = False
) -> WalletKeys | None:
    """The node's wallet keys ($COALITION_WALLET_KEYS, else its key file). Without either: with
    `create` (the serving node) a node from before wallet keys gets a new key file, unless
    secrets are sealed already (then the lost key is an error: they would never open again);
    otherwise None (a worker or an audit needs no wallet secret)."""
    path = path or wallet_key_path(config)
    if os.environ.get(ENV) or path.exists():
        return WalletKeys.load(path)
    if not create:
        return None
    with engine.connect() as conn:
        sealed = conn.execute(
            select(members.c.id).where(members.c.wallet_secret_sealed.is_not(None)).limit(1)
        ).first()
    if sealed is not None:
        raise ValueError(
            f"the wallet key file {path} is missing, but members' wallet secrets are sealed "
            f"with it: restore it (or set ${ENV})"
        )
    keys = WalletKeys.generate()
    keys.write(path)
    return keys


def open_ledger(
    config: NodeConfig,
    *,
    pool_size: int = 16,
    clock: Callable[[], datetime] = utc_now,
    wallet_keys: WalletKeys | None = None,
    wallet_key_file: pathlib.Path | None = None,
    create_wallet_key: bool = False,
) -> NodeLedger:
    """The node's ledger, its database migrated to the newest schema and its rates current,
    every wallet secret sealed under its current wallet key (when it has one: a ledger without
    one cannot enroll; `create_wallet_key` makes one for a node from before wallet keys)."""
    engine = make_engine(config.database_url, pool_size=pool_size)
    upgrade(engine)
    keys = wallet_keys or load_wallet_keys(
        config, engine, wallet_key_file, create=create_wallet_key
    )
    if keys is not None:
        reseal(engine, keys)
    ledger = NodeLedger(
        engine,
        policy=EarnPolicy(points_ttl_days=config.points_ttl_days or None),
        clock=clock,
        wallet_keys=keys,
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
