"""A campaign's figures from the node's ledger: what its budget pools granted, the orders its
rules credited (or would have, but for the member's place in its control group), and every
order of its window and of a baseline window — the inputs of its ROI (docs/campaigns.md).

Set-based: one aggregate over `earnings` answers all four order figures, with conditional sums
over the union of the two windows. Which orders a campaign credited is written in each
earning's `breakdown`, a JSON list of `{"rule_id": …, "description": …, "points": …}` lines
(merchant_node/ledger/earning.py); rather than parse it row by row, the aggregate matches the
exact text `"rule_id": "<id>"` with LIKE. Rule ids are `[a-z][a-z0-9_]*`, so the text is never
escaped in the JSON, and the closing quote keeps `spring_1` from matching `spring_10`. LIKE with
a leading % uses no index, but it only runs on the rows of the two windows.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

from sqlalchemy import ColumnElement, Connection, case, distinct, false, func, or_, select

from coalition_kernel.points import parse_ratio
from merchant_node.ledger.schema import budget_pools, earnings, rate_versions, rule_programs

Window = tuple[datetime, datetime]  # [start, end)


@dataclass(frozen=True)
class PoolStatus:
    pool_id: str
    budget: int
    granted: int


@dataclass(frozen=True)
class OrderFigures:
    orders: int = 0
    revenue_fen: int = 0  # amount less refunds
    points: int = 0
    members: int = 0


@dataclass(frozen=True)
class CampaignFigures:
    campaign_id: str
    rule_ids: list[str]
    pools: list[PoolStatus]
    fen_per_point: Fraction
    participating: OrderFigures
    control_group: OrderFigures
    window: OrderFigures
    baseline: OrderFigures

    @property
    def points_granted(self) -> int:
        return sum(pool.granted for pool in self.pools)

    @property
    def points_cost_fen(self) -> int:
        """The granted points at the point value, rounded up: a report never understates cost."""
        return math.ceil(self.points_granted * self.fen_per_point)


def pools(conn: Connection, pool_ids: list[str] | None = None) -> list[PoolStatus]:
    """Budget pools by id (all of them without `pool_ids`): budget and granted so far."""
    query = select(budget_pools).order_by(budget_pools.c.pool_id)
    if pool_ids is not None:
        query = query.where(budget_pools.c.pool_id.in_(pool_ids))
    return [PoolStatus(r.pool_id, r.budget, r.granted) for r in conn.execute(query)]


def campaign_parts(conn: Connection, campaign_id: str) -> tuple[list[str], list[str]]:
    """The ids of the rules tagged with the campaign in any program version, and of the pools
    they draw on. Documents are stored as canonical JSON, so LIKE finds the versions to read."""
    tag = f'%"campaign":"{_escaped(campaign_id)}"%'
    documents = conn.execute(
        select(rule_programs.c.document).where(rule_programs.c.document.like(tag, escape="\\"))
    ).scalars()
    rule_ids: set[str] = set()
    pool_ids: set[str] = set()
    for document in documents:
        for rule in json.loads(document).get("rules", []):
            if rule.get("campaign") == campaign_id:
                rule_ids.add(rule["id"])
                if rule.get("budget_pool"):
                    pool_ids.add(rule["budget_pool"])
    return sorted(rule_ids), sorted(pool_ids)


def report(conn: Connection, campaign_id: str, window: Window, baseline: Window) -> CampaignFigures:
    """The campaign's figures over its window, and every order of the baseline window."""
    rule_ids, pool_ids = campaign_parts(conn, campaign_id)
    in_window = _within(window)
    columns = [
        *_figures(in_window & _credited(rule_ids)),
        *_figures(in_window & _credited([f"control_group:{rule}" for rule in rule_ids])),
        *_figures(in_window),
        *_figures(_within(baseline)),
    ]
    row = conn.execute(
        select(*columns).where(
            earnings.c.occurred_at >= min(window[0], baseline[0]),
            earnings.c.occurred_at < max(window[1], baseline[1]),
        )
    ).one()
    values = [int(v or 0) for v in row]
    figures = [OrderFigures(*values[i : i + 4]) for i in range(0, 16, 4)]
    return CampaignFigures(
        campaign_id,
        rule_ids,
        pools(conn, pool_ids),
        _fen_per_point(conn),
        *figures,
    )


def _within(window: Window) -> ColumnElement[bool]:
    return (earnings.c.occurred_at >= window[0]) & (earnings.c.occurred_at < window[1])


def _credited(rule_ids: list[str]) -> ColumnElement[bool]:
    """Orders whose breakdown has a line of one of these rules (see the module's docstring)."""
    if not rule_ids:
        return false()
    return or_(
        *(
            earnings.c.breakdown.like(f'%"rule_id": "{_escaped(rule)}"%', escape="\\")
            for rule in rule_ids
        )
    )


def _figures(condition: ColumnElement[bool]) -> list[ColumnElement[int]]:
    revenue = earnings.c.amount_fen - earnings.c.refunded_fen
    return [
        func.count(case((condition, 1))),
        func.sum(case((condition, revenue), else_=0)),
        func.sum(case((condition, earnings.c.points), else_=0)),
        func.count(distinct(case((condition, earnings.c.member_pk)))),
    ]


def _fen_per_point(conn: Connection) -> Fraction:
    value = conn.execute(
        select(rate_versions.c.fen_per_point).order_by(rate_versions.c.version.desc()).limit(1)
    ).scalar()
    return parse_ratio(value) if value is not None else Fraction(0)


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
