"""A campaign's rules and pool as program documents (docs/rules.md): what the activities add to
each participating node's program, and the CLI checks before the campaign starts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from workflows.campaigns.shared import CampaignSpec


def campaign_rules(spec: CampaignSpec, ends_at: datetime) -> list[dict[str, Any]]:
    """One `time_window` rule per spec rule, tagged with the campaign, drawing on its pool; the
    window's own starts_at/ends_at make the node keep the campaign's times to the second."""
    rules = []
    for i, rule in enumerate(spec.rules, start=1):
        document: dict[str, Any] = {
            "id": f"{spec.campaign_id}_{i}",
            "type": "time_window",
            "campaign": spec.campaign_id,
            "starts_at": spec.starts_at.isoformat(),
            "ends_at": ends_at.isoformat(),
            "budget_pool": spec.pool_id,
        }
        if rule.multiplier:
            document["multiplier"] = rule.multiplier
        if rule.bonus_points:
            document["bonus_points"] = rule.bonus_points
        if rule.days_of_week:
            document["days_of_week"] = list(rule.days_of_week)
        if rule.dates:
            document["dates"] = list(rule.dates)
        if rule.hours_from:
            document["hours"] = {"from": rule.hours_from, "to": rule.hours_to}
        if spec.control_group_percent:
            document["control_group"] = {
                "percent": spec.control_group_percent,
                "salt": spec.campaign_id,
            }
        rules.append(document)
    return rules


def campaign_pools(spec: CampaignSpec) -> list[dict[str, Any]]:
    return [{"id": spec.pool_id, "points": spec.budget_points}]
