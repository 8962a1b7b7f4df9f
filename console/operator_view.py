"""What the operator's page shows, from the exchange's database: the district's flows between
shops, suggested partnerships (exchange/affinity), each issuer's unsettled net debit against its
cap, settlement batches, breakage, the merchants' onboarding state; and the operator's decision
on a batch, which goes to the settlement workflow as its Update (the workflow records it, as
`coalition settle approve`)."""

from __future__ import annotations

import time
import weakref
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError

from coalition_kernel.errors import FailedPrecondition, InvalidArgument, NotFound
from exchange import affinity, registry
from exchange import figures as district
from exchange.schema import merchants, settlement_batches, settlement_breakage
from workflows.settlement.shared import Decision, SettlementStatus
from workflows.settlement.workflows import settlement_workflow_id

DECISIONS = ("approve", "reject")
FLOW_DAYS = 30  # the flows chart covers the periods of the last 30 days
# Suggested partnerships over the same 30 days, the best few; they read a month of clearing
# records, so at most once a minute per exchange.
PARTNERSHIPS_SHOWN = 10
PARTNERSHIPS_SECONDS = 60.0
_partnerships: weakref.WeakKeyDictionary[Engine, tuple[float, list[dict[str, Any]]]] = (
    weakref.WeakKeyDictionary()
)


def partnerships(engine: Engine, now: datetime) -> list[dict[str, Any]]:
    """The best suggestions of the last FLOW_DAYS days, k at its default (aggregates only)."""
    kept = _partnerships.get(engine)
    if kept is not None and time.monotonic() - kept[0] < PARTNERSHIPS_SECONDS:
        return kept[1]
    with engine.connect() as conn:
        found = affinity.affinity(conn, now, FLOW_DAYS)
    shown = [
        {
            "kind": s.kind,
            "offering_id": s.offering_id,
            "audience_id": s.audience_id,
            "score_bp": s.score_bp,
            "members": s.members,
        }
        for s in found.suggestions[:PARTNERSHIPS_SHOWN]
    ]
    _partnerships[engine] = (time.monotonic(), shown)
    return shown


def figures(engine: Engine, now: datetime) -> dict[str, Any]:
    with engine.connect() as conn:
        open_periods = district.unsettled_periods(conn)
        flows = district.flows_since(conn, (now - timedelta(days=FLOW_DAYS)).date().isoformat())
        shops = conn.execute(select(merchants).order_by(merchants.c.merchant_id)).all()
        positions = [
            {
                "merchant_id": m.merchant_id,
                "name": m.display_name,
                "status": m.status,
                "net_debit_fen": registry.unsettled_net_debit(conn, m.merchant_id, now),
                "cap_fen": m.net_debit_cap_fen,
            }
            for m in shops
        ]
        batches = conn.execute(
            select(settlement_batches).order_by(settlement_batches.c.period.desc()).limit(30)
        ).all()
        b = settlement_breakage
        breakage = conn.execute(
            select(
                b.c.issuer_id,
                func.sum(b.c.points),
                func.sum(b.c.value_fen),
                func.sum(b.c.operator_fen),
            ).group_by(b.c.issuer_id)
        ).all()
    for p in positions:
        cap = p["cap_fen"]
        p["cap_used_bps"] = p["net_debit_fen"] * 10_000 // cap if cap else None
    return {
        "as_of": now.isoformat(),
        "open_periods": open_periods,
        "flows": [f.__dict__ for f in flows],
        "partnerships": partnerships(engine, now),
        "positions": positions,
        "batches": [
            {
                "batch_id": r.batch_id,
                "period": r.period,
                "status": r.status,
                "record_count": r.record_count,
                "value_fen": r.value_fen,
                "fee_fen": r.fee_fen,
                "approved_by": r.approved_by,
                "decidable": r.status == "reconciled",
            }
            for r in batches
        ],
        "breakage": [
            {"issuer_id": i, "points": int(p), "value_fen": int(v), "operator_fen": int(o)}
            for i, p, v, o in breakage
        ],
        "onboarding": [
            {
                "merchant_id": s.merchant_id,
                "status": s.status,
                "onboarded": s.onboarded_at.isoformat(),
            }
            for s in shops
        ],
    }


async def decide(
    client: Client, engine: Engine, period: str, decision: str, by: str, note: str
) -> SettlementStatus:
    """Sends the operator's decision to the period's settlement workflow (its validator refuses
    a batch not awaiting approval, a second decision, a rejection without a reason)."""
    if decision not in DECISIONS:
        raise InvalidArgument("UNKNOWN_DECISION", f"decision must be one of {DECISIONS}")
    with engine.connect() as conn:
        known = conn.execute(
            select(settlement_batches.c.status).where(settlement_batches.c.period == period)
        ).scalar()
    if known is None:
        raise NotFound("BATCH_NOT_FOUND", f"no settlement batch for period {period!r}")
    handle = client.get_workflow_handle(settlement_workflow_id(period))
    try:
        return await handle.execute_update(
            decision, Decision(by, note), result_type=SettlementStatus
        )
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause.message if exc.cause is not None else str(exc)  # type: ignore[attr-defined]
        raise FailedPrecondition("DECISION_REFUSED", cause) from exc
    except RPCError as exc:
        raise FailedPrecondition("WORKFLOW_UNREACHABLE", exc.message) from exc
