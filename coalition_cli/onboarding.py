"""What the operator registers for a merchant, read from the merchant's own node.

A point's value lives in one place, the node's configuration (`node init --fen-per-point`):
onboarding from a node.toml reads it there, and an operator's `--fen-per-point` that says
something else is refused rather than silently registered. A node written in another language
has no node.toml: the operator then gives what the exchange needs by hand (docs/protocol.md,
"Onboarding a node written in another language").
"""

from __future__ import annotations

import argparse
import pathlib
from dataclasses import dataclass
from fractions import Fraction

from cryptography.hazmat.primitives import serialization

from coalition_kernel.errors import InvalidArgument
from coalition_kernel.keys import load_public_key
from coalition_kernel.points import parse_ratio


@dataclass(frozen=True)
class MerchantTerms:
    merchant_id: str
    public_key: bytes  # raw Ed25519, 32 bytes
    endpoint: str
    fen_per_point: str


def merchant_terms(args: argparse.Namespace) -> MerchantTerms:
    """The merchant's id, key, endpoint and point value from `--node-config` or, without one,
    from `--merchant-id --public-key --endpoint --fen-per-point` (all four required)."""
    if args.node_config is not None:
        return _from_node_config(args)
    missing = [
        flag
        for flag, value in (
            ("--merchant-id", args.merchant_id),
            ("--endpoint", args.endpoint),
            ("--fen-per-point", args.fen_per_point),
        )
        if not value
    ]
    if missing:
        raise InvalidArgument(
            "MISSING_FIELD",
            f"onboarding with --public-key also needs {', '.join(missing)} "
            "(without a node.toml nothing else says them)",
        )
    _check_value("--fen-per-point", args.fen_per_point)
    return MerchantTerms(
        args.merchant_id, _raw_key(args.public_key), args.endpoint, args.fen_per_point
    )


def _from_node_config(args: argparse.Namespace) -> MerchantTerms:
    from merchant_node.config import NodeConfig

    config = NodeConfig.load(args.node_config)
    if args.merchant_id and args.merchant_id != config.merchant_id:
        raise InvalidArgument(
            "MERCHANT_ID_MISMATCH",
            f"--merchant-id {args.merchant_id!r} but {args.node_config} is merchant "
            f"{config.merchant_id!r}",
        )
    node_value = _check_value(f"fen_per_point in {args.node_config}", config.fen_per_point)
    if args.fen_per_point and _check_value("--fen-per-point", args.fen_per_point) != node_value:
        raise InvalidArgument(
            "POINT_VALUE_MISMATCH",
            f"--fen-per-point {args.fen_per_point} but the node's own configuration "
            f"({args.node_config}) values a point at {config.fen_per_point} fen; one value must "
            "hold on both sides: leave --fen-per-point out, or change the node's first",
        )
    return MerchantTerms(
        config.merchant_id,
        _raw_key(config.public_key_file),
        args.endpoint or config.listen,
        str(config.fen_per_point),
    )


def _check_value(where: str, text: str) -> Fraction:
    try:
        value = parse_ratio(text)
    except (ValueError, ZeroDivisionError) as exc:
        raise InvalidArgument("MALFORMED_RATE", f"{where} {text!r}: {exc}") from exc
    if value <= 0:
        raise InvalidArgument("MALFORMED_RATE", f"{where} {text!r} must be more than 0")
    return value


def _raw_key(path: str | pathlib.Path) -> bytes:
    try:
        key = load_public_key(pathlib.Path(path))
    except (OSError, ValueError) as exc:
        raise InvalidArgument(
            "BAD_PUBLIC_KEY", f"{path}: not a readable Ed25519 public key (PEM): {exc}"
        ) from exc
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
