"""The console's configuration (console.toml): where each shop's node database and the
exchange's database are, the Temporal the settlement workflow runs on, the operator's password
digest and the session secret. `coalition console init` writes it."""

from __future__ import annotations

import pathlib
import tomllib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ConsoleConfig:
    listen: str = "127.0.0.1:8800"
    session_secret: str = ""  # hex; signs the session cookie
    operator_name: str = "operator"
    operator_password_sha256: str = ""  # console.logins.password_digest of the password
    exchange_database_url: str = ""  # empty: no operator pages
    temporal_address: str = "127.0.0.1:7233"
    namespace: str = "default"
    refresh_seconds: float = 2.0  # how often live pages are re-read and pushed
    alerts_file: str = ""  # rules as data (YAML); empty: the built-in rules
    alert_webhook_url: str = ""  # raised alerts are POSTed here (besides the console)
    nodes: dict[str, str] = field(default_factory=dict)  # merchant id -> node database URL

    @classmethod
    def load(cls, path: pathlib.Path) -> ConsoleConfig:
        data = tomllib.loads(path.read_text())
        section = dict(data.get("console", {}))
        section["nodes"] = dict(data.get("nodes", {}))
        return cls(**section)

    def save(self, path: pathlib.Path) -> None:
        lines = ["# Console configuration (coalition console init).", "[console]"]
        for key, value in self.__dict__.items():
            if key == "nodes":
                continue
            lines.append(f"{key} = {_toml(value)}")
        lines.append("\n[nodes]  # merchant id = its node's database URL")
        lines += [f"{k} = {_toml(v)}" for k, v in sorted(self.nodes.items())]
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)  # it holds the session secret


def _toml(value: object) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)
