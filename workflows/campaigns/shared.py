"""The dataclasses the campaign workflow, its activities and the CLI exchange (stdlib only), and
the checks a campaign's spec must pass before anything runs."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

TASK_QUEUE = "coalition-campaigns"
OPERATOR = "operator"  # the owner of a coalition-wide campaign; a merchant owns its own
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ID = re.compile(r"[a-z][a-z0-9_]{0,47}")  # room for the rule and pool ids made from it
_CLOCK = re.compile(r"([01]\d|2[0-3]):[0-5]\d")
_EXACT = re.compile(r"\d{1,6}(\.\d{1,4})?|\d{1,6}/\d{1,4}")


@dataclass
class CampaignRule:
    """One time-window rule of the campaign (docs/rules.md, `time_window`): what it adds, on
    which days and hours of the node program's time zone."""

    multiplier: str = ""  # exact, e.g. "2" or "1.5"; "" for none
    bonus_points: int = 0
    days_of_week: list[str] = field(default_factory=list)  # mon..sun; with dates: either
    dates: list[str] = field(default_factory=list)  # YYYY-MM-DD
    hours_from: str = ""  # "18:00"; both or neither
    hours_to: str = ""  # exclusive; earlier than hours_from: past midnight


@dataclass
class CampaignSpec:
    campaign_id: str
    owner: str  # OPERATOR or the merchant id running its own campaign
    merchants: list[str]
    starts_at: datetime  # aware
    ends_at: datetime  # exclusive
    rules: list[CampaignRule]
    budget_points: int  # each participating merchant's pool
    control_group_percent: int = 0  # 0: no control group
    baseline_starts_at: datetime | None = None  # None: as long as the campaign, just before it
    baseline_ends_at: datetime | None = None
    poll_minutes: int = 15  # how often the pools are read to stop when the budget is spent
    title: str = ""
    heartbeat_seconds: int = 30  # a killed worker's activity is retried after this
    polls_per_run: int = 200  # then the workflow continues as new, its history kept short
    # Set by the workflow itself when it continues as new: the state it hands over.
    carried: CampaignStatus | None = None

    @property
    def pool_id(self) -> str:
        return f"{self.campaign_id}_pool"


@dataclass
class Cancel:
    reason: str
    by: str


@dataclass
class Extend:
    new_ends_at: datetime
    by: str


@dataclass
class NodeChange:
    """Bring one merchant's program to the campaign's state: its rules (ending at `ends_at`)
    and pool when `active`, neither when not."""

    merchant_id: str
    spec: CampaignSpec
    active: bool
    ends_at: datetime
    step: str  # activate, extend, deactivate: for the program's audit trail


@dataclass
class NodeChangeResult:
    merchant_id: str
    version: int  # the program version that carries the state (0: the node has no program)
    changed: bool  # False: the node already had it (a retry after a crash, say)


@dataclass
class PoolQuery:
    merchant_id: str
    pool_id: str


@dataclass
class PoolUsage:
    merchant_id: str
    pool_id: str
    budget: int
    granted: int

    @property
    def spent(self) -> bool:
        return self.granted >= self.budget


@dataclass
class FiguresQuery:
    merchant_id: str
    campaign_id: str
    starts_at: datetime
    ends_at: datetime
    baseline_starts_at: datetime
    baseline_ends_at: datetime


@dataclass
class OrderFigures:
    orders: int = 0
    revenue_fen: int = 0
    points: int = 0
    members: int = 0


@dataclass
class MerchantFigures:
    """What one node reports (GetCampaignReport)."""

    merchant_id: str
    budget_points: int = 0
    points_granted: int = 0
    points_cost_fen: int = 0
    fen_per_point: str = ""
    participating: OrderFigures = field(default_factory=OrderFigures)
    control_group: OrderFigures = field(default_factory=OrderFigures)
    window: OrderFigures = field(default_factory=OrderFigures)
    baseline: OrderFigures = field(default_factory=OrderFigures)


@dataclass
class Uplift:
    """Incremental revenue against one estimate of what would have happened anyway, and the
    ROI it gives. Exact values are fractions written "p/q" (or "p"); never floats."""

    method: str  # control_group or baseline
    expected_revenue: str  # fen, exact
    incremental_revenue: str  # fen, exact
    incremental_revenue_fen: int  # rounded down
    roi: str = ""  # (incremental - cost) / cost, exact; "" when nothing was spent
    roi_bp: int | None = None  # roi in basis points, rounded down


@dataclass
class Roi:
    """A merchant's (or the campaign's total) figures and what they mean (docs/campaigns.md)."""

    figures: MerchantFigures
    participant_revenue_per_member: str = ""  # fen, exact; "" without participants
    control_revenue_per_member: str = ""  # fen, exact; "" without a control group's orders
    campaign_revenue_per_day: str = ""  # fen, exact: every order of the campaign window
    baseline_revenue_per_day: str = ""
    vs_control_group: Uplift | None = None
    vs_baseline: Uplift | None = None


@dataclass
class CampaignReport:
    campaign_id: str
    starts_at: datetime
    ended_at: datetime
    baseline_starts_at: datetime
    baseline_ends_at: datetime
    merchants: list[Roi] = field(default_factory=list)
    total: Roi | None = None


@dataclass
class CampaignStatus:
    campaign_id: str
    owner: str
    state: str  # scheduled, active, ending, reporting, ended
    starts_at: datetime
    ends_at: datetime  # the current end: an extension moves it
    merchants: list[str] = field(default_factory=list)
    activated: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # "merchant: why" for nodes that refused
    pools: list[PoolUsage] = field(default_factory=list)  # as last polled
    extensions: list[Extend] = field(default_factory=list)
    cancellation: Cancel | None = None
    end_reason: str = ""  # ends_at, budget_spent, cancelled, refused (by every node)
    activated_at: datetime | None = None
    ended_at: datetime | None = None
    report: CampaignReport | None = None


def campaign_workflow_id(campaign_id: str) -> str:
    return f"campaign-{campaign_id}"


def check_spec(spec: CampaignSpec) -> list[str]:
    """Every problem with a spec at once; empty when it may run. The nodes check the rules
    again, whole, as programs (merchant_node.rules.program)."""
    errors = []
    if not _ID.fullmatch(spec.campaign_id):
        errors.append("id: lower-case letters, digits and _, starting with a letter, at most 48")
    if not spec.merchants or len(set(spec.merchants)) != len(spec.merchants):
        errors.append("merchants: at least one, each once")
    if not spec.owner:
        errors.append("owner: 'operator' or the merchant running its own campaign")
    elif spec.owner != OPERATOR and spec.merchants != [spec.owner]:
        errors.append("merchants: a merchant's own campaign runs at that merchant only")
    errors += _window_errors("starts_at", spec.starts_at, "ends_at", spec.ends_at)
    if (spec.baseline_starts_at is None) != (spec.baseline_ends_at is None):
        errors.append("baseline: give both starts_at and ends_at, or neither")
    elif spec.baseline_starts_at and spec.baseline_ends_at:
        errors += _window_errors(
            "baseline.starts_at", spec.baseline_starts_at, "baseline.ends_at", spec.baseline_ends_at
        )
    if not spec.rules:
        errors.append("rules: at least one")
    for i, rule in enumerate(spec.rules):
        errors += [f"rules[{i}].{e}" for e in _rule_errors(rule)]
    if spec.budget_points < 1:
        errors.append("budget_points: at least 1 (each merchant's pool)")
    if not 0 <= spec.control_group_percent <= 99:
        errors.append("control_group_percent: 0 (none) to 99")
    if min(spec.poll_minutes, spec.heartbeat_seconds, spec.polls_per_run) < 1:
        errors.append("poll_minutes, heartbeat_seconds, polls_per_run: at least 1")
    return errors


def _window_errors(start_name: str, start: datetime, end_name: str, end: datetime) -> list[str]:
    if start.tzinfo is None or end.tzinfo is None:
        return [f"{start_name}, {end_name}: give a UTC offset, e.g. 2026-03-14T00:00:00+08:00"]
    return [] if start < end else [f"{start_name}: must be before {end_name}"]


def _rule_errors(rule: CampaignRule) -> list[str]:
    errors = []
    if not rule.multiplier and not rule.bonus_points:
        errors.append("multiplier, bonus_points: give one or both")
    if rule.multiplier and not _EXACT.fullmatch(rule.multiplier):
        errors.append('multiplier: an exact number like "2" or "1.5"')
    if rule.bonus_points < 0:
        errors.append("bonus_points: not negative")
    if any(day not in WEEKDAYS for day in rule.days_of_week):
        errors.append("days_of_week: mon, tue, wed, thu, fri, sat, sun")
    if bool(rule.hours_from) != bool(rule.hours_to):
        errors.append("hours: give from and to, or neither")
    elif rule.hours_from and not all(map(_CLOCK.fullmatch, (rule.hours_from, rule.hours_to))):
        errors.append('hours: times of day like "18:00"')
    return errors


_SPEC_KEYS = {
    "id", "title", "owner", "merchants", "starts_at", "ends_at", "rules", "budget_points",
    "control_group_percent", "baseline", "poll_minutes",
}  # fmt: skip
_RULE_KEYS = {"multiplier", "bonus_points", "days_of_week", "dates", "hours"}


def spec_from_document(document: dict[str, Any]) -> CampaignSpec:
    """A spec from its YAML/JSON document (docs/campaigns.md); ValueError names what is wrong.
    Check the result with `check_spec`."""
    unknown = sorted(set(document) - _SPEC_KEYS)
    missing = sorted({"id", "owner", "merchants", "starts_at", "ends_at", "rules"} - set(document))
    if unknown or missing:
        raise ValueError(f"unknown fields {unknown}, missing fields {missing}")
    baseline = document.get("baseline") or {}
    return CampaignSpec(
        campaign_id=str(document["id"]),
        title=str(document.get("title", "")),
        owner=str(document["owner"]),
        merchants=[str(m) for m in document["merchants"]],
        starts_at=_time(document["starts_at"]),
        ends_at=_time(document["ends_at"]),
        rules=[_rule(rule) for rule in document["rules"]],
        budget_points=int(document.get("budget_points", 0)),
        control_group_percent=int(document.get("control_group_percent", 0)),
        baseline_starts_at=_time(baseline["starts_at"]) if baseline else None,
        baseline_ends_at=_time(baseline["ends_at"]) if baseline else None,
        poll_minutes=int(document.get("poll_minutes", 15)),
    )


def _rule(document: dict[str, Any]) -> CampaignRule:
    unknown = sorted(set(document) - _RULE_KEYS)
    if unknown:
        raise ValueError(f"rules: unknown fields {unknown}")
    hours = document.get("hours") or {}
    return CampaignRule(
        multiplier=str(document.get("multiplier", "")),
        bonus_points=int(document.get("bonus_points", 0)),
        days_of_week=[str(d) for d in document.get("days_of_week", [])],
        dates=[str(d) for d in document.get("dates", [])],
        hours_from=str(hours.get("from", "")),
        hours_to=str(hours.get("to", "")),
    )


def _time(value: object) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
