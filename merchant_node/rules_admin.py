"""The merchant's administration of its program over gRPC: show, validate, apply, simulate;
and what campaigns read: budget pools and a campaign's report.

Callers present an API key with the `admin` scope ("authorization: Bearer <key>"), checked by
the node's one authentication hook (merchant_node/auth), which server.py puts before every
method; a node without an admin key refuses everything here.
"""

from __future__ import annotations

import functools
import re

from coalition.merchant.v1 import merchant_node_pb2 as pb
from coalition.merchant.v1 import rules_admin_pb2 as rpb
from coalition_kernel import timestamps
from coalition_kernel.db import run_in_transaction
from coalition_kernel.errors import (
    CoalitionError,
    InvalidArgument,
)
from coalition_kernel.points import format_ratio
from coalition_kernel.rpc import Offload
from merchant_node.ledger import campaigns
from merchant_node.ledger.programs import ProgramVersion
from merchant_node.ledger.service import NodeLedger
from merchant_node.rules.base import LineItem, Purchase
from merchant_node.rules.engine import MemberContext, ProgramRules
from merchant_node.rules.program import load_program

SERVICE = rpb.DESCRIPTOR.services_by_name["RulesAdminService"]


def _version(v: ProgramVersion) -> rpb.ProgramVersion:
    out = rpb.ProgramVersion(
        version=v.version, document=v.document, digest=v.digest, applied_by=v.applied_by
    )
    out.effective_from.FromDatetime(v.effective_from)
    out.applied_at.FromDatetime(v.applied_at)
    return out


_CAMPAIGN_ID = re.compile(r"[a-z][a-z0-9_]{0,63}")


def _pool(pool: campaigns.PoolStatus) -> rpb.BudgetPoolStatus:
    return rpb.BudgetPoolStatus(
        pool_id=pool.pool_id, budget_points=pool.budget, granted_points=pool.granted
    )


def _orders(figures: campaigns.OrderFigures) -> rpb.OrderFigures:
    return rpb.OrderFigures(
        orders=figures.orders,
        revenue_fen=figures.revenue_fen,
        points=figures.points,
        members=figures.members,
    )


def _window(req: rpb.GetCampaignReportRequest, start: str, end: str) -> campaigns.Window:
    if not (req.HasField(start) and req.HasField(end)):  # type: ignore[arg-type]
        raise InvalidArgument("MISSING_FIELD", f"{start} and {end} are required")
    window = (
        timestamps.checked(getattr(req, start), start),
        timestamps.checked(getattr(req, end), end),
    )
    if window[0] >= window[1]:
        raise InvalidArgument("BAD_WINDOW", f"{start} must be before {end}")
    return window


class RulesAdminServicer:
    def __init__(self, ledger: NodeLedger, offload: Offload) -> None:
        self.ledger = ledger
        self.offload = offload

    def handlers(self) -> dict:  # type: ignore[type-arg]
        return {
            "GetProgram": self.get_program,
            "ListProgramVersions": self.list_versions,
            "ValidateProgram": self.validate,
            "ApplyProgram": self.apply,
            "SimulateEarn": self.simulate,
            "ListBudgetPools": self.list_pools,
            "GetCampaignReport": self.campaign_report,
        }

    async def get_program(self, req: rpb.GetProgramRequest, _ctx) -> rpb.GetProgramResponse:  # type: ignore[no-untyped-def]
        return rpb.GetProgramResponse(
            program=_version(await self.offload(self.ledger.program_version, req.version))
        )

    async def list_versions(self, _req, _ctx) -> rpb.ListProgramVersionsResponse:  # type: ignore[no-untyped-def]
        history = await self.offload(self.ledger.program_history)
        return rpb.ListProgramVersionsResponse(versions=[_version(v) for v in history])

    async def validate(self, req: rpb.ValidateProgramRequest, _ctx) -> rpb.ValidateProgramResponse:  # type: ignore[no-untyped-def]
        try:
            load_program(req.document)
        except CoalitionError as err:
            return rpb.ValidateProgramResponse(
                valid=False, errors=getattr(err, "errors", [err.message])
            )
        return rpb.ValidateProgramResponse(valid=True)

    async def apply(self, req: rpb.ApplyProgramRequest, _ctx) -> rpb.ApplyProgramResponse:  # type: ignore[no-untyped-def]
        when = timestamps.optional(req, "effective_from")
        base = req.base_version if req.HasField("base_version") else None
        applied = await self.offload(
            functools.partial(
                self.ledger.apply_program, req.document, req.applied_by, when, base_version=base
            )
        )
        return rpb.ApplyProgramResponse(version=applied.version, digest=applied.digest)

    async def list_pools(
        self, req: rpb.ListBudgetPoolsRequest, _ctx
    ) -> rpb.ListBudgetPoolsResponse:
        wanted = list(req.pool_ids) or None
        found = await self.offload(
            run_in_transaction, self.ledger.engine, lambda conn: campaigns.pools(conn, wanted)
        )
        return rpb.ListBudgetPoolsResponse(pools=[_pool(p) for p in found])

    async def campaign_report(
        self, req: rpb.GetCampaignReportRequest, _ctx
    ) -> rpb.GetCampaignReportResponse:
        if not _CAMPAIGN_ID.fullmatch(req.campaign_id):
            raise InvalidArgument("MISSING_FIELD", "campaign_id must be a campaign's id")
        window = _window(req, "starts_at", "ends_at")
        baseline = _window(req, "baseline_starts_at", "baseline_ends_at")
        figures = await self.offload(
            run_in_transaction,
            self.ledger.engine,
            lambda conn: campaigns.report(conn, req.campaign_id, window, baseline),
        )
        return rpb.GetCampaignReportResponse(
            campaign_id=figures.campaign_id,
            rule_ids=figures.rule_ids,
            pools=[_pool(p) for p in figures.pools],
            points_granted=figures.points_granted,
            fen_per_point=format_ratio(figures.fen_per_point),
            points_cost_fen=figures.points_cost_fen,
            participating=_orders(figures.participating),
            control_group=_orders(figures.control_group),
            window=_orders(figures.window),
            baseline=_orders(figures.baseline),
        )

    async def simulate(self, req: rpb.SimulateEarnRequest, _ctx) -> rpb.SimulateEarnResponse:  # type: ignore[no-untyped-def]
        program = (
            load_program(req.document) if req.document else await self.offload(self.ledger.program)
        )
        if program is None:
            raise InvalidArgument(
                "PROGRAM_NOT_FOUND", "no program applied; pass a document to simulate"
            )
        p = req.purchase
        when = timestamps.optional(p, "occurred_at", "purchase.") or self.ledger.clock()
        purchase = Purchase(
            p.member_id,
            p.order_id,
            p.amount_fen,
            "POS",
            when,
            tuple(LineItem(i.sku, i.category, i.quantity, i.unit_price_fen) for i in p.line_items),
            p.points_paid_fen,
        )
        member = MemberContext(req.tier or None, req.first_purchase, req.birth_month or None, 0)
        result = ProgramRules(program, "simulation").evaluate(purchase, self.ledger.rate, member)
        return rpb.SimulateEarnResponse(
            points=result.points,
            breakdown=[
                pb.EarnBreakdownLine(rule_id=b.rule_id, description=b.description, points=b.points)
                for b in result.breakdown
            ],
            pending_days=result.pending_days,
        )
