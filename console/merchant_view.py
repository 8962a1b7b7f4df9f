"""What a merchant's page shows, from its node's rollups (merchant_node/figures): today, the
trend of the last days, rates, liability, campaigns' budget burn; with campaign ROI, segments,
the at-risk list, triggers' results and mall sales (console/merchant_insights). Never a journal
scan."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, select

from console import merchant_insights
from merchant_node.figures import queries
from merchant_node.ledger.schema import budget_pools

DISTRICT_TIME = ZoneInfo("Asia/Shanghai")  # "today" is the shops' day, not UTC's


def day_start(now: datetime) -> datetime:
    local = now.astimezone(DISTRICT_TIME)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def figures(engine: Engine, merchant_id: str, now: datetime, days: int = 14) -> dict[str, Any]:
    with engine.connect() as conn:
        return _figures(conn, merchant_id, now, days)


def _flows_dict(f: queries.Flows) -> dict[str, int]:
    return {
        "issued": f.issued,
        "earned": f.earned,
        "redeemed": f.redeemed,
        "redeemed_here": f.redeemed_here,
        "redeemed_elsewhere": f.redeemed_elsewhere,
        "expired": f.expired,
        "earns": f.earns,
        "redemptions": f.redemptions,
        "enrolled": f.enrolled,
        "redemption_rate_bps": f.redemption_rate_bps,
    }


def _figures(conn: Connection, merchant_id: str, now: datetime, days: int) -> dict[str, Any]:
    today = day_start(now)
    tomorrow = today + timedelta(days=1)
    first = today - timedelta(days=days - 1)
    all_time = queries.flows(conn)
    today_flows = queries.flows(conn, queries.minute_of(today), queries.minute_of(tomorrow))
    members = all_time.enrolled
    active = queries.active_members(conn, today, tomorrow)
    trend = queries.series(conn, queries.minute_of(first), queries.minute_of(tomorrow), 24 * 60)
    pools = conn.execute(select(budget_pools).order_by(budget_pools.c.pool_id)).all()
    return {
        "merchant_id": merchant_id,
        "as_of": now.isoformat(),
        "today": {
            **_flows_dict(today_flows),
            "active_members": active,
            # Members who earned today per 10,000 members.
            "participation_rate_bps": active * 10_000 // members if members else 0,
        },
        "totals": {
            **_flows_dict(all_time),
            "clawed_back": all_time.clawed_back,
            "members": members,
            "outstanding": all_time.outstanding,
        },
        "trend": [
            {
                "day": (first + timedelta(days=i)).date().isoformat(),
                "issued": f.issued,
                "redeemed": f.redeemed,
                "expired": f.expired,
                "earns": f.earns,
                "redemptions": f.redemptions,
                "enrolled": f.enrolled,
            }
            for i, (_start, f) in enumerate(trend)
        ],
        "campaign_pools": [
            {
                "pool_id": p.pool_id,
                "budget": p.budget,
                "granted": p.granted,
                "burn_bps": p.granted * 10_000 // p.budget if p.budget else 0,
            }
            for p in pools
        ],
        **merchant_insights.insights(conn, now, today),
    }
