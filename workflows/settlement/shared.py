"""The dataclasses the settlement workflow and its activities exchange (stdlib only)."""

from __future__ import annotations

from dataclasses import dataclass, field

TASK_QUEUE = "coalition-settlement"


@dataclass
class SettlementInput:
    period: str  # e.g. "2026-11-24", the Asia/Shanghai calendar day
    remind_after_seconds: int = 4 * 3600  # remind the operator while approval is pending
    max_reminders: int = 6
    heartbeat_seconds: int = 30  # a killed worker's activity is retried after this


@dataclass
class BatchSummary:
    batch_id: str
    period: str
    records: int
    value_fen: int
    commitment_root: str


@dataclass
class ReconcileOutcome:
    batch_id: str
    mismatches: list[str] = field(default_factory=list)


@dataclass
class Transfer:
    payer: str
    payee: str
    amount_fen: int


@dataclass
class NettingOutcome:
    batch_id: str
    transfers: list[Transfer] = field(default_factory=list)


@dataclass
class Decision:
    by: str
    note: str = ""


@dataclass
class Reminder:
    batch_id: str
    period: str
    waiting_seconds: int
    count: int


@dataclass
class SettlementStatus:
    period: str
    state: (
        str  # closing, reconciling, disputed, awaiting_approval, rejected, paying, paid, confirmed
    )
    batch_id: str = ""
    mismatches: list[str] = field(default_factory=list)
    transfers: list[Transfer] = field(default_factory=list)
    reminders_sent: int = 0
    decided_by: str = ""


@dataclass
class DecisionRecord:
    """An operator's decision, as the workflow hands it to the database."""

    batch_id: str
    action: str  # approve, reject, resolve, confirm
    by: str
    note: str = ""


@dataclass
class ScheduledRun:
    """What the schedule starts: settle the period that ended last."""

    remind_after_seconds: int = 4 * 3600
    max_reminders: int = 6
    heartbeat_seconds: int = 30
