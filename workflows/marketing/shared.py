"""The dataclasses the member intelligence workflow and its activities exchange (stdlib only)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class IntelligenceInput:
    merchant_id: str
    heartbeat_seconds: int = 30


@dataclass
class TriggerCount:
    trigger_id: str
    treated: int = 0
    held_out: int = 0


@dataclass
class IntelligenceOutcome:
    merchant_id: str
    at: str  # the workflow's time: every step decides as of it
    facts: int = 0
    placed: int = 0
    tiers_evaluated: int = 0
    model_fitted: bool = False
    members: int = 0
    at_risk: int = 0
    at_risk_share_bps: int = 0
    warned: bool = False  # the at-risk share jumped: a warning to the merchant is in the outbox
    triggers: list[TriggerCount] = field(default_factory=list)
    delivered: int = 0
    delivery_error: str = ""
