"""Where the operator's commands (`operator …`, `settle …` but verify, `campaign …`) connect,
so they need not be given `--exchange --exchange-key --key --temporal` every time.

Each setting comes from, first to last: its flag; the environment (COALITION_OPERATOR__EXCHANGE,
COALITION_OPERATOR__EXCHANGE_KEY, COALITION_OPERATOR__KEY, COALITION_OPERATOR__TEMPORAL,
COALITION_OPERATOR__NAMESPACE); the operator's config file, validated like every config
(coalition_kernel.settings):

    [operator]
    exchange = "exchange.example:50050"
    exchange_key = "/etc/coalition/exchange_ed25519.pub.pem"
    key = "/home/ops/.keys/operator_ed25519.pem"
    temporal = "temporal.example:7233"
    namespace = "default"

found at `--operator-config FILE`, else at $COALITION_OPERATOR_CONFIG, else at
$XDG_CONFIG_HOME/coalition/operator.toml (~/.config/coalition/operator.toml) when it exists.
"""

from __future__ import annotations

import argparse
import os
import pathlib

from pydantic.dataclasses import dataclass

from coalition_kernel.settings import STRICT_KEYS, load_config, validate_config

ENV_PREFIX = "COALITION_OPERATOR"
CONFIG_ENV = "COALITION_OPERATOR_CONFIG"
TABLE = "operator"
TEMPORAL = ("temporal", "namespace")


@dataclass(frozen=True, config=STRICT_KEYS)
class OperatorSettings:
    exchange: str = ""  # HOST:PORT of the exchange
    exchange_key: str = ""  # the exchange's public key (PEM file)
    key: str = ""  # the operator's private key (PEM file); keep the file offline
    temporal: str = "127.0.0.1:7233"  # Temporal's frontend
    namespace: str = "default"


class UsageError(Exception):
    """A setting nobody gave: the message names the flag, the key and the variable."""


def default_path() -> pathlib.Path:
    home = os.environ.get("XDG_CONFIG_HOME") or str(pathlib.Path.home() / ".config")
    return pathlib.Path(home) / "coalition" / "operator.toml"


def add_connection_flags(
    parser: argparse.ArgumentParser, *, exchange: str = "", temporal: bool = False
) -> None:
    """The flags, defaulting to nothing: `resolve` fills them in when the command runs.
    `exchange`: "required" for commands that cannot work without the exchange, "optional"
    for those that use it when it is configured."""
    group = parser.add_argument_group(
        "connection (each defaults to COALITION_OPERATOR__<NAME>, then operator.toml)"
    )
    group.add_argument(
        "--operator-config",
        type=pathlib.Path,
        help=f"the operator's TOML file (default: ${CONFIG_ENV}, else {default_path()})",
    )
    if exchange:
        group.add_argument("--exchange", help="HOST:PORT of the exchange")
        group.add_argument(
            "--exchange-key", type=pathlib.Path, help="the exchange's public key (PEM)"
        )
        group.add_argument("--key", type=pathlib.Path, help="the operator's private key (PEM)")
    if temporal:
        group.add_argument("--temporal", help="Temporal frontend address (default 127.0.0.1:7233)")
        group.add_argument("--namespace", help="Temporal namespace (default: default)")
    parser.set_defaults(_connection=(exchange, temporal))


def resolve(args: argparse.Namespace) -> None:
    """Fills the connection flags nobody gave from the environment and the config file;
    UsageError names what is still missing, ConfigError what is wrong with the file."""
    exchange, temporal = args._connection
    settings = load_settings(args.operator_config)
    names = (["exchange", "exchange_key", "key"] if exchange else []) + (
        list(TEMPORAL) if temporal else []
    )
    missing = []
    for name in names:
        if getattr(args, name) is None:
            value = getattr(settings, name)
            if name in ("exchange_key", "key"):
                value = pathlib.Path(value) if value else None
            setattr(args, name, value or None)
        if getattr(args, name) is None and exchange == "required" and name not in TEMPORAL:
            flag = "--" + name.replace("_", "-")
            missing.append(
                f"{flag} is required: give it, or set {ENV_PREFIX}__{name.upper()}, or "
                f"{name} in [{TABLE}] of the operator's config ({default_path()})"
            )
    if missing:
        raise UsageError("\n".join(missing))


def load_settings(path: pathlib.Path | None) -> OperatorSettings:
    """The file given (it must exist), else $COALITION_OPERATOR_CONFIG, else the default file
    if there is one; the environment over it."""
    if path is None and os.environ.get(CONFIG_ENV):
        path = pathlib.Path(os.environ[CONFIG_ENV])
    if path is None and default_path().is_file():
        path = default_path()
    if path is not None:
        return load_config(OperatorSettings, path, table=TABLE, env_prefix=ENV_PREFIX)
    return validate_config(
        OperatorSettings, {}, source="environment", table=TABLE, env_prefix=ENV_PREFIX
    )
