"""MarketingService over gRPC (a thin entrypoint): translate the message, call the service,
translate the answer. Every method needs the `admin` scope, checked by the node's one
authentication hook (merchant_node/auth) that server.py puts before each method."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from coalition.merchant.v1 import marketing_pb2 as mpb
from coalition_kernel.errors import CoalitionError, InvalidArgument
from coalition_kernel.rpc import Offload
from merchant_node.marketing.segments import Labelled
from merchant_node.marketing.service import MarketingService, MemberView
from merchant_node.marketing.store import StoredDefinitions

SERVICE = mpb.DESCRIPTOR.services_by_name["MarketingService"]
_KINDS = {
    mpb.DEFINITIONS_KIND_SEGMENTS: "segments",
    mpb.DEFINITIONS_KIND_TRIGGERS: "triggers",
}
_KIND_PB = {name: value for value, name in _KINDS.items()}
_FACTS = [
    "recency_days",
    "tenure_days",
    "orders_30d",
    "orders_90d",
    "orders_365d",
    "orders_total",
    "spend_30d_fen",
    "spend_90d_fen",
    "spend_365d_fen",
    "spend_total_fen",
    "avg_order_90d_fen",
    "avg_order_365d_fen",
    "points_paid_share_bps",
    "redemption_rate_bps",
    "campaign_share_bps",
    "evening_share_bps",
]


def _kind(value: int) -> str:
    if value not in _KINDS:
        raise InvalidArgument("UNKNOWN_DEFINITIONS", "kind must be SEGMENTS or TRIGGERS")
    return _KINDS[value]


def _ts(at: datetime | None) -> Timestamp | None:
    if at is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(at)
    return ts


def _version(v: StoredDefinitions) -> mpb.DefinitionsVersion:
    return mpb.DefinitionsVersion(
        kind=_KIND_PB[v.kind],  # type: ignore[arg-type]
        version=v.version,
        document=v.document,
        digest=v.digest,
        applied_at=_ts(v.applied_at),
        applied_by=v.applied_by,
    )


def _label(label: Labelled | None) -> mpb.Label | None:
    return None if label is None else mpb.Label(id=label.id, name=label.name, reason=label.reason)


def _facts(facts: dict[str, Any]) -> mpb.MemberFacts:
    optional = {
        name: facts[name]
        for name in ("p_alive_bps", "expected_orders_90d_milli", "expected_order_value_fen")
        if facts.get(name) is not None
    }
    return mpb.MemberFacts(
        **{name: int(facts[name]) for name in _FACTS},
        top_category_recent=facts.get("top_category_90d") or "",
        top_category_before=facts.get("top_category_prev") or "",
        category_shift=bool(facts.get("category_shift")),
        last_order_at=_ts(facts.get("last_order_at")),
        **optional,
    )


def profile_fields(view: MemberView | None) -> dict[str, Any]:
    """GetMemberProfileResponse's intelligence fields from the stored view (none before a run)."""
    if view is None:
        return {}
    p = view.placement
    return {
        "facts": _facts(view.facts),
        "facts_as_of": _ts(view.facts["as_of"]),
        "segment": _label(p.segment),
        "tags": [_label(t) for t in p.tags],
        "churn_cause": _label(p.cause),
    }


class MarketingServicer:
    def __init__(self, service: MarketingService, offload: Offload) -> None:
        self.service = service
        self.offload = offload

    def handlers(self) -> dict:  # type: ignore[type-arg]
        return {
            "ValidateDefinitions": self.validate,
            "ApplyDefinitions": self.apply,
            "ListDefinitionVersions": self.versions,
            "GetMemberSegment": self.member,
            "ListAtRisk": self.at_risk,
            "GetTriggerReport": self.report,
            "SetMemberContact": self.set_contact,
        }

    async def validate(self, req, _ctx) -> mpb.ValidateDefinitionsResponse:  # type: ignore[no-untyped-def]
        kind = _kind(req.kind)
        try:
            canonical = await self.offload(self.service.validate, kind, req.document)
        except CoalitionError as err:
            errors = getattr(err, "errors", [err.message])
            return mpb.ValidateDefinitionsResponse(valid=False, errors=errors)
        return mpb.ValidateDefinitionsResponse(valid=True, canonical=canonical)

    async def apply(self, req, _ctx) -> mpb.ApplyDefinitionsResponse:  # type: ignore[no-untyped-def]
        kind = _kind(req.kind)
        stored = await self.offload(self.service.apply, kind, req.document, req.applied_by)
        return mpb.ApplyDefinitionsResponse(version=_version(stored))

    async def versions(self, req, _ctx) -> mpb.ListDefinitionVersionsResponse:  # type: ignore[no-untyped-def]
        history = await self.offload(self.service.versions, _kind(req.kind))
        return mpb.ListDefinitionVersionsResponse(versions=[_version(v) for v in history])

    async def member(self, req, _ctx) -> mpb.GetMemberSegmentResponse:  # type: ignore[no-untyped-def]
        view = await self.offload(self.service.member, req.member_id)
        p = view.placement
        return mpb.GetMemberSegmentResponse(
            facts=_facts(view.facts),
            r_score=p.scores.r,
            f_score=p.scores.f,
            m_score=p.scores.m,
            segment=_label(p.segment),
            tags=[_label(t) for t in p.tags],
            churn_cause=_label(p.cause),
            definitions_version=view.definitions_version,
        )

    async def at_risk(self, req, _ctx) -> mpb.ListAtRiskResponse:  # type: ignore[no-untyped-def]
        rows = await self.offload(self.service.at_risk, req.limit or 100)
        return mpb.ListAtRiskResponse(
            members=[
                mpb.AtRiskMember(
                    member_id=r.member_id,
                    segment=r.segment,
                    cause=r.cause or "",
                    recency_days=r.recency_days,
                    spend_365d_fen=r.spend_365d_fen,
                    **{
                        k: v
                        for k, v in (
                            ("p_alive_bps", r.p_alive_bps),
                            ("expected_orders_90d_milli", r.expected_orders_90d_milli),
                        )
                        if v is not None
                    },
                )
                for r in rows
            ]
        )

    async def report(self, req, _ctx) -> mpb.GetTriggerReportResponse:  # type: ignore[no-untyped-def]
        r = await self.offload(self.service.trigger_report, req.trigger_id)
        return mpb.GetTriggerReportResponse(
            trigger_id=r.trigger_id,
            treated=r.treated,
            treated_converted=r.treated_converted,
            control=r.control,
            control_converted=r.control_converted,
            treated_rate_bps=r.treated_rate_bps,
            control_rate_bps=r.control_rate_bps,
            uplift_bps=r.uplift_bps,
            treated_spend_fen=r.treated_spend_fen,
            control_spend_fen=r.control_spend_fen,
            incremental_spend_fen=r.incremental_spend_fen,
            cost_points=r.cost_points,
            cost_coupon_fen=r.cost_coupon_fen,
        )

    async def set_contact(self, req, _ctx) -> mpb.SetMemberContactResponse:  # type: ignore[no-untyped-def]
        await self.offload(
            lambda: self.service.set_contact(
                req.member_id,
                email=req.email or None,
                preferred_channel=req.preferred_channel or None,
                quiet_hours=req.quiet_hours or None,
            )
        )
        return mpb.SetMemberContactResponse()
