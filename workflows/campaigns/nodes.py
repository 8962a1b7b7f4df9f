"""Which nodes the campaign worker may change, and how: each merchant's RulesAdminService
endpoint and admin token, from a TOML file kept with the worker's secrets.

    [[node]]
    merchant_id = "tea"
    endpoint = "10.0.0.5:50051"
    admin_token = "…"

The file is validated whole (every problem named by entry and key). The environment overrides
an entry's key by its merchant id: COALITION_CAMPAIGN_NODES__<MERCHANT>__<KEY>, the merchant id
upper case with every other character than A-Z and 0-9 as `_` (tea-house:
COALITION_CAMPAIGN_NODES__TEA_HOUSE__ADMIN_TOKEN), so tokens can stay out of the file.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError, field_validator
from pydantic.dataclasses import dataclass as config_dataclass

from coalition_kernel.settings import STRICT_KEYS, ConfigError, describe_errors, read_toml

ENV_PREFIX = "COALITION_CAMPAIGN_NODES"


@dataclass(frozen=True)
class NodeAccess:
    endpoint: str
    admin_token: str


CampaignNodes = Mapping[str, NodeAccess]  # merchant id -> its node


@config_dataclass(frozen=True, config=STRICT_KEYS)
class NodeEntry:
    """One `[[node]]` of the file."""

    merchant_id: str
    endpoint: str
    admin_token: str

    @field_validator("merchant_id", "endpoint", "admin_token")
    @classmethod
    def _given(cls, value: str) -> str:
        if not value:
            raise ValueError("must not be empty")
        return value


@config_dataclass(frozen=True, config=STRICT_KEYS)
class NodesFile:
    node: list[NodeEntry] = dataclasses.field(default_factory=list)


def env_name(merchant_id: str, key: str) -> str:
    return f"{ENV_PREFIX}__{re.sub(r'[^A-Z0-9]', '_', merchant_id.upper())}__{key.upper()}"


def load_nodes(path: pathlib.Path) -> dict[str, NodeAccess]:
    """The nodes of a TOML file, the environment over them; ConfigError lists every problem."""
    data = read_toml(path)
    entries = data.get("node", [])
    if isinstance(entries, list):
        for entry in entries:
            if isinstance(entry, dict) and isinstance(entry.get("merchant_id"), str):
                for key in ("endpoint", "admin_token"):
                    value = os.environ.get(env_name(entry["merchant_id"], key))
                    if value:  # empty: as if unset
                        entry[key] = value
    try:
        parsed = TypeAdapter(NodesFile).validate_python(data)
    except ValidationError as err:
        raise ConfigError(str(path), describe_errors(err, NodesFile, _hint(data))) from None
    nodes: dict[str, NodeAccess] = {}
    problems = []
    for i, entry in enumerate(parsed.node):
        if entry.merchant_id in nodes:
            problems.append(f"node[{i}].merchant_id: repeats merchant {entry.merchant_id!r}")
        nodes[entry.merchant_id] = NodeAccess(entry.endpoint, entry.admin_token)
    if problems:
        raise ConfigError(str(path), problems)
    return nodes


def _hint(data: dict[str, Any]) -> Callable[[tuple[Any, ...], Any], str]:
    """Where a missing or bad endpoint or token may come from instead of the file."""

    def note(loc: tuple[Any, ...], _: Any) -> str:
        if len(loc) != 3 or loc[2] not in ("endpoint", "admin_token"):
            return ""
        entry = data["node"][loc[1]]
        merchant = entry.get("merchant_id") if isinstance(entry, dict) else None
        if not isinstance(merchant, str) or not merchant:
            return ""
        return f" (or set {env_name(merchant, str(loc[2]))})"

    return note
