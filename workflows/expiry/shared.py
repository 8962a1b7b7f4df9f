"""The dataclasses the expiry workflows and their activities exchange (stdlib only)."""

from __future__ import annotations

from dataclasses import dataclass


def node_task_queue(merchant_id: str) -> str:
    """Each node's worker listens on its own queue: its activities touch only its database."""
    return f"coalition-node-{merchant_id}"


@dataclass
class ExpiryInput:
    merchant_id: str
    heartbeat_seconds: int = 30


@dataclass
class Expired:
    lots: int = 0
    points: int = 0
    holds_lapsed: int = 0
    members: int = 0
    members_busy: int = 0


@dataclass
class Breakage:
    day: str  # the local day of the run
    points: int = 0
    value_fen: int = 0


@dataclass
class Delivered:
    sent: int = 0
    retrying: int = 0
    deferred: int = 0
    dead: int = 0
    lost: int = 0


@dataclass
class ExpiryOutcome:
    merchant_id: str
    at: str  # when the run looked (the workflow's time)
    reminders_enqueued: int = 0
    expired: Expired | None = None
    breakage: Breakage | None = None
    delivered: Delivered | None = None
    delivery_error: str = ""  # delivery failed this time: the notify schedule will retry
