"""What a campaign's figures mean: revenue per member and per day, incremental revenue against
the control group and against the baseline, and ROI. Exact fractions throughout, rounded down
only where an integer is asked for (docs/campaigns.md has the formulas). Pure, stdlib only: the
workflow runs it."""

from __future__ import annotations

import math
from dataclasses import fields
from datetime import datetime, timedelta
from fractions import Fraction

from workflows.campaigns.shared import MerchantFigures, OrderFigures, Roi, Uplift

DAY = timedelta(days=1)


def exact(value: Fraction) -> str:
    """ "7", "-7/3": what `Fraction(text)` reads back."""
    return str(value)


def days(start: datetime, end: datetime) -> Fraction:
    return Fraction(int((end - start).total_seconds()), int(DAY.total_seconds()))


def total(merchants: list[MerchantFigures]) -> MerchantFigures:
    """The campaign's figures summed over its merchants (cost at each one's own point value)."""
    summed = MerchantFigures("total")
    for figures in merchants:
        summed.budget_points += figures.budget_points
        summed.points_granted += figures.points_granted
        summed.points_cost_fen += figures.points_cost_fen
        for part in ("participating", "control_group", "window", "baseline"):
            mine, theirs = getattr(summed, part), getattr(figures, part)
            for f in fields(OrderFigures):
                setattr(mine, f.name, getattr(mine, f.name) + getattr(theirs, f.name))
    return summed


def roi(figures: MerchantFigures, campaign_days: Fraction, baseline_days: Fraction) -> Roi:
    """ROI = (incremental revenue - cost) / cost, with the incremental revenue estimated two
    ways: participants against the control group's revenue per member, and the campaign
    window's revenue per day against the baseline's."""
    p, c = figures.participating, figures.control_group
    w, b = figures.window, figures.baseline
    out = Roi(figures)
    if p.members:
        out.participant_revenue_per_member = exact(Fraction(p.revenue_fen, p.members))
    if c.members:
        out.control_revenue_per_member = exact(Fraction(c.revenue_fen, c.members))
    if campaign_days:
        out.campaign_revenue_per_day = exact(w.revenue_fen / campaign_days)
    if baseline_days:
        out.baseline_revenue_per_day = exact(b.revenue_fen / baseline_days)
    cost = figures.points_cost_fen
    if p.members and c.members:
        expected = Fraction(c.revenue_fen, c.members) * p.members
        out.vs_control_group = _uplift("control_group", p.revenue_fen, expected, cost)
    if campaign_days and baseline_days:
        expected = b.revenue_fen * campaign_days / baseline_days
        out.vs_baseline = _uplift("baseline", w.revenue_fen, expected, cost)
    return out


def _uplift(method: str, revenue: int, expected: Fraction, cost: int) -> Uplift:
    incremental = revenue - expected
    uplift = Uplift(method, exact(expected), exact(incremental), math.floor(incremental))
    if cost:
        ratio = (incremental - cost) / cost
        uplift.roi, uplift.roi_bp = exact(ratio), math.floor(ratio * 10_000)
    return uplift
