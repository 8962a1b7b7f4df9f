"""The merchant page's marketing and mall figures, read from the node's own database through
the functions its services and reports use: each campaign's ROI over the last 30 days against
the 30 before (merchant_node/ledger/campaigns.report + workflows/campaigns/roi), segment counts,
the at-risk list, each trigger's wake-up results (treated vs control) and the mall report.
Aggregates over indexed tables and windows; never a journal scan."""

from __future__ import annotations

import json
import time
import weakref
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, select

from merchant_node.ledger import campaigns
from merchant_node.ledger.schema import rule_programs
from merchant_node.mall import report as mall_report
from merchant_node.marketing import report as trigger_reports
from merchant_node.marketing import store, triggers
from workflows.campaigns import roi as roi_math
from workflows.campaigns.shared import MerchantFigures, OrderFigures

ROI_DAYS = 30  # the campaign window the page shows; the baseline is the 30 days before it
AT_RISK_SHOWN = 20


# The reports that read earnings windows (campaign ROI, triggers' results) and the at-risk list
# (it changes nightly) are read at most once a minute per shop; segment counts and mall sales
# are small aggregates read with every refresh of the live page.
SLOW_SECONDS = 60.0
_slow: weakref.WeakKeyDictionary[Engine, tuple[float, dict[str, Any]]] = weakref.WeakKeyDictionary()


def insights(conn: Connection, now: datetime, today: datetime) -> dict[str, Any]:
    """`today` is the start of the district's day: windows end at tomorrow's start."""
    return {
        **_slow_part(conn, now, today),
        "segments": store.segment_counts(conn),
        "mall": mall(conn, now),
    }


def _slow_part(conn: Connection, now: datetime, today: datetime) -> dict[str, Any]:
    kept = _slow.get(conn.engine)
    if kept is not None and time.monotonic() - kept[0] < SLOW_SECONDS:
        return kept[1]
    end = today + timedelta(days=1)
    part = {
        "campaigns": campaign_roi(conn, (end - timedelta(days=ROI_DAYS), end)),
        "at_risk": at_risk(conn),
        "triggers": trigger_results(conn, now),
    }
    _slow[conn.engine] = (time.monotonic(), part)
    return part


def campaign_ids(conn: Connection) -> list[str]:
    """Campaigns tagged on the rules of the current program."""
    document = conn.execute(
        select(rule_programs.c.document).order_by(rule_programs.c.version.desc()).limit(1)
    ).scalar()
    if document is None:
        return []
    rules = json.loads(document).get("rules", [])
    return sorted({r["campaign"] for r in rules if r.get("campaign")})


def _orders(f: campaigns.OrderFigures) -> OrderFigures:
    return OrderFigures(f.orders, f.revenue_fen, f.points, f.members)


def campaign_roi(conn: Connection, window: campaigns.Window) -> list[dict[str, Any]]:
    length = window[1] - window[0]
    baseline = (window[0] - length, window[0])
    days = roi_math.days(*window)
    out = []
    for campaign_id in campaign_ids(conn):
        f = campaigns.report(conn, campaign_id, window, baseline)
        merchant = MerchantFigures(
            "",
            budget_points=sum(p.budget for p in f.pools),
            points_granted=f.points_granted,
            points_cost_fen=f.points_cost_fen,
            participating=_orders(f.participating),
            control_group=_orders(f.control_group),
            window=_orders(f.window),
            baseline=_orders(f.baseline),
        )
        result = roi_math.roi(merchant, days, days)
        vs_control, vs_baseline = result.vs_control_group, result.vs_baseline
        out.append(
            {
                "campaign_id": campaign_id,
                "points_granted": f.points_granted,
                "points_cost_fen": f.points_cost_fen,
                "participating_orders": f.participating.orders,
                "participating_revenue_fen": f.participating.revenue_fen,
                "control_orders": f.control_group.orders,
                "control_revenue_fen": f.control_group.revenue_fen,
                "incremental_vs_control_fen": (
                    vs_control.incremental_revenue_fen if vs_control else None
                ),
                "roi_vs_control_bp": vs_control.roi_bp if vs_control else None,
                "incremental_vs_baseline_fen": (
                    vs_baseline.incremental_revenue_fen if vs_baseline else None
                ),
                "roi_vs_baseline_bp": vs_baseline.roi_bp if vs_baseline else None,
            }
        )
    return out


def at_risk(conn: Connection, limit: int = AT_RISK_SHOWN) -> list[dict[str, Any]]:
    """MarketingService.at_risk's list (one query, merchant_node/marketing/store.py): most at
    risk first, with the likely cause."""
    return [
        {
            "member_id": r.member_id,
            "segment": r.segment,
            "cause": r.churn_cause,
            "recency_days": r.recency_days,
        }
        for r in store.at_risk(conn, limit)
    ]


def trigger_results(conn: Connection, now: datetime) -> list[dict[str, Any]]:
    stored = store.latest_definitions(conn, "triggers")
    if stored is None:
        return []
    out = []
    for trigger in triggers.parse_triggers(stored.document).triggers:
        r = trigger_reports.trigger_report(conn, trigger, now)
        out.append(
            {
                "trigger_id": r.trigger_id,
                "treated": r.treated,
                "treated_converted": r.treated_converted,
                "treated_rate_bps": r.treated_rate_bps,
                "control": r.control,
                "control_converted": r.control_converted,
                "control_rate_bps": r.control_rate_bps,
                "uplift_bps": r.uplift_bps,
                "incremental_spend_fen": r.incremental_spend_fen,
                "cost_points": r.cost_points,
                "cost_coupon_fen": r.cost_coupon_fen,
            }
        )
    return out


def mall(conn: Connection, now: datetime) -> dict[str, Any]:
    r = mall_report.build(conn, now, None, None)
    return {
        "items": [
            {
                "item_id": line.item_id,
                "sold": line.sold,
                "points_taken": line.points_taken,
                "cash_taken_fen": line.cash_taken_fen,
                "stock_left": line.stock_left,
            }
            for line in r.items
        ],
        "items_sold": sum(line.sold for line in r.items),
        "points_taken": r.points_taken,
        "cash_taken_fen": r.cash_taken_fen,
        "coupons_issued": r.coupons_issued,
        "coupons_redeemed": r.coupons_redeemed,
        "coupons_expired": r.coupons_expired,
        "coupon_liability_fen": r.coupon_liability_fen,
        "lottery_points_taken": r.lottery_points_taken,
    }
