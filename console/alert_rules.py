"""Alert rules as data (YAML), validated whole. Four kinds:

- `hourly_band`: a shop's measure over the last complete hour below the band learnt from the
  same hour of the same weekday over the last `weeks` weeks: below mean − `sigmas`·σ and below
  mean × (1 − `min_drop`). Needs `min_weeks` weeks with data, so a new shop raises nothing.
  Measures: `redemptions` (count), `redemption_rate_bps`, `participation_rate_bps`.
- `near_cap`: an issuer's unsettled net debit at or past `threshold_bps` of its net-debit cap.
- `outbox_backlog`: a shop's notifications waiting for delivery above `above`, and more than an
  hour ago (the backlog is growing, not a burst being worked off).
- `node_unreachable`: a shop's node does not answer the exchange (gRPC health of the endpoint
  it is registered with, which is where statements are asked for) within `timeout_seconds`.
"""

from __future__ import annotations

import pathlib
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

Severity = Literal["info", "warning", "critical"]


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str = Field(pattern=r"^[a-z0-9-]{1,64}$")
    severity: Severity = "warning"


class HourlyBand(_Rule):
    kind: Literal["hourly_band"]
    measure: Literal["redemptions", "redemption_rate_bps", "participation_rate_bps"]
    weeks: int = Field(4, ge=1, le=12)
    min_weeks: int = Field(3, ge=1, le=12)
    sigmas: float = Field(2.0, ge=0)
    min_drop: float = Field(0.5, ge=0, le=1)


class NearCap(_Rule):
    kind: Literal["near_cap"]
    threshold_bps: int = Field(8000, ge=1, le=10_000)


class OutboxBacklog(_Rule):
    kind: Literal["outbox_backlog"]
    above: int = Field(100, ge=0)


class NodeUnreachable(_Rule):
    kind: Literal["node_unreachable"]
    timeout_seconds: float = Field(3.0, gt=0, le=60)


Rule = Annotated[
    HourlyBand | NearCap | OutboxBacklog | NodeUnreachable, Field(discriminator="kind")
]


class Rules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    rules: list[Rule]


DEFAULT_RULES = """
rules:
  - {id: redemptions-drop, kind: hourly_band, measure: redemptions, severity: warning}
  - {id: participation-drop, kind: hourly_band, measure: participation_rate_bps}
  - {id: issuer-near-cap, kind: near_cap, threshold_bps: 8000, severity: critical}
  - {id: outbox-growing, kind: outbox_backlog, above: 100}
  - {id: node-unreachable, kind: node_unreachable, timeout_seconds: 3, severity: critical}
"""


def parse(text: str) -> Rules:
    return Rules.model_validate(yaml.safe_load(text))


def load(path: str) -> Rules:
    return parse(pathlib.Path(path).read_text() if path else DEFAULT_RULES)
