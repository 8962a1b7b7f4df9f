"""Which nodes the campaign worker may change, and how: each merchant's RulesAdminService
endpoint and admin token, from a TOML file kept with the worker's secrets.

    [[node]]
    merchant_id = "tea"
    endpoint = "10.0.0.5:50051"
    admin_token = "…"
"""

from __future__ import annotations

import pathlib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class NodeAccess:
    endpoint: str
    admin_token: str


CampaignNodes = Mapping[str, NodeAccess]  # merchant id -> its node


def load_nodes(path: pathlib.Path) -> dict[str, NodeAccess]:
    """The nodes of a TOML file; ValueError names a malformed or repeated entry."""
    with path.open("rb") as file:
        entries = tomllib.load(file).get("node", [])
    nodes: dict[str, NodeAccess] = {}
    for i, entry in enumerate(entries):
        values = [entry.get(key) for key in ("merchant_id", "endpoint", "admin_token")]
        if not all(isinstance(value, str) and value for value in values):
            raise ValueError(f"{path}: node[{i}] needs merchant_id, endpoint and admin_token")
        merchant_id, endpoint, token = values
        if merchant_id in nodes:
            raise ValueError(f"{path}: node[{i}] repeats merchant {merchant_id!r}")
        nodes[merchant_id] = NodeAccess(endpoint, token)
    return nodes
