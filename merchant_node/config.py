"""A node's configuration file (TOML): who it is, where its ledger lives, its rates."""

from __future__ import annotations

import json
import pathlib
import tomllib
from dataclasses import asdict, dataclass

from coalition_kernel.points import parse_ratio


@dataclass(frozen=True)
class NodeConfig:
    merchant_id: str
    database_url: str
    listen: str = "127.0.0.1:50051"
    points_per_yuan: str = "1"
    fen_per_point: str = "1"
    points_ttl_days: int = 365
    private_key_file: str = "node_ed25519.pem"
    public_key_file: str = "node_ed25519.pub.pem"
    key_id: str = ""
    # The coalition exchange this node trusts (empty: a standalone node).
    exchange_endpoint: str = ""
    exchange_public_key_file: str = ""
    # Bearer token of the RulesAdminService (empty: program administration disabled).
    admin_token: str = ""

    def __post_init__(self) -> None:
        parse_ratio(self.points_per_yuan)
        parse_ratio(self.fen_per_point)
        if self.points_ttl_days < 0:
            raise ValueError("points_ttl_days must be 0 (never expire) or more")

    @classmethod
    def load(cls, path: pathlib.Path) -> NodeConfig:
        with path.open("rb") as f:
            data = tomllib.load(f)
        return cls(**data["node"])

    def save(self, path: pathlib.Path) -> None:
        lines = ["# Merchant node configuration (coalition node init).", "[node]"]
        for key, value in asdict(self).items():
            # JSON strings and integers are valid TOML values.
            lines.append(f"{key} = {json.dumps(value)}")
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)  # it holds the admin token
