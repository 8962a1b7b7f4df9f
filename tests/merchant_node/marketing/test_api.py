"""MarketingService through the node's real gRPC server on loopback (SQLite, PostgreSQL): admin
keys only, definitions validated/applied/versioned, a member's segment with reasons, the at-risk
list, contacts; bad input refused with a reason and nothing changed."""

from __future__ import annotations

import grpc
import pytest
from sqlalchemy import select

from coalition.merchant.v1 import marketing_pb2 as mpb
from coalition.merchant.v1 import marketing_pb2_grpc as mgrpc
from merchant_node.ledger.commands import Earn, Enroll
from merchant_node.ledger.schema import member_contacts
from merchant_node.marketing.schema import marketing_definitions
from merchant_node.marketing.service import MarketingService
from tests.conftest import issue_key
from tests.merchant_node.test_server import refused

SEGMENTS = "segments:\n  - {id: sleepy, name: 沉睡, when: ['recency_days >= 90']}\n"


@pytest.fixture
async def stub(node):  # type: ignore[no-untyped-def]
    async with grpc.aio.insecure_channel(node.target) as channel:
        yield mgrpc.MarketingServiceStub(channel), [("authorization", f"Bearer {node.api_key}")]


async def test_only_admin_keys_reach_marketing(node, stub):
    s, _ = stub
    await refused(
        s.ListAtRisk(mpb.ListAtRiskRequest()), grpc.StatusCode.UNAUTHENTICATED, "API_KEY_REQUIRED"
    )
    pos = issue_key(node.ledger, "pos,read", "till")
    await refused(
        s.ListAtRisk(mpb.ListAtRiskRequest(), metadata=[("authorization", f"Bearer {pos}")]),
        grpc.StatusCode.PERMISSION_DENIED,
        "SCOPE_DENIED",
    )


async def test_definitions_validate_apply_and_list(node, stub):
    s, auth = stub
    kind = mpb.DEFINITIONS_KIND_SEGMENTS
    bad = await s.ValidateDefinitions(
        mpb.ValidateDefinitionsRequest(kind=kind, document="segments: [{id: X}]"), metadata=auth
    )
    assert not bad.valid and "segments.0.id" in bad.errors[0]
    await refused(
        s.ApplyDefinitions(
            mpb.ApplyDefinitionsRequest(kind=kind, document="segments: []", applied_by="ops"),
            metadata=auth,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "SEGMENTS_INVALID",
    )
    await refused(
        s.ListDefinitionVersions(mpb.ListDefinitionVersionsRequest(), metadata=auth),
        grpc.StatusCode.INVALID_ARGUMENT,
        "UNKNOWN_DEFINITIONS",
    )
    with node.ledger.engine.connect() as conn:
        assert conn.execute(select(marketing_definitions)).all() == []
    request = mpb.ApplyDefinitionsRequest(kind=kind, document=SEGMENTS, applied_by="ops@tea")
    first = await s.ApplyDefinitions(request, metadata=auth)
    again = await s.ApplyDefinitions(request, metadata=auth)  # a retry: the same version
    assert first.version.version == again.version.version == 1
    history = await s.ListDefinitionVersions(
        mpb.ListDefinitionVersionsRequest(kind=kind), metadata=auth
    )
    assert [(v.version, v.applied_by) for v in history.versions] == [(1, "ops@tea")]


async def test_a_members_segment_with_reasons_and_the_at_risk_list(node, stub, clock):
    s, auth = stub
    ledger = node.ledger
    ledger.enroll(Enroll("e-m1", "m1"))
    ledger.earn(Earn("earn-1", "m1", "o1", 12_000, "POS", None))
    ledger.earn(Earn("earn-2", "m1", "o2", 8_000, "POS", None))
    clock.advance(days=100)
    view = await s.GetMemberSegment(mpb.GetMemberSegmentRequest(member_id="m1"), metadata=auth)
    assert view.facts.recency_days == 100 and view.facts.orders_total == 2
    assert view.facts.spend_total_fen == 20_000 and view.facts.avg_order_365d_fen == 10_000
    assert view.segment.id == "dormant" and "recency_days=100" in view.segment.reason
    assert view.churn_cause.id == "long_silence"
    assert (view.r_score, view.f_score, view.m_score) == (2, 2, 2)
    await refused(
        s.GetMemberSegment(mpb.GetMemberSegmentRequest(member_id="nobody"), metadata=auth),
        grpc.StatusCode.NOT_FOUND,
        "MEMBER_NOT_FOUND",
    )
    service = MarketingService(ledger)
    service.refresh_facts(clock())
    service.place_all(clock())
    listed = await s.ListAtRisk(mpb.ListAtRiskRequest(limit=10), metadata=auth)
    assert [(m.member_id, m.segment, m.cause) for m in listed.members] == [
        ("m1", "dormant", "long_silence")
    ]
    await refused(
        s.ListAtRisk(mpb.ListAtRiskRequest(limit=20_000), metadata=auth),
        grpc.StatusCode.INVALID_ARGUMENT,
        "PAGE_SIZE_OUT_OF_RANGE",
    )
    await refused(
        s.GetTriggerReport(mpb.GetTriggerReportRequest(trigger_id="nope"), metadata=auth),
        grpc.StatusCode.NOT_FOUND,
        "TRIGGER_NOT_FOUND",
    )


async def test_member_contact_and_channel_are_set_over_grpc(node, stub):
    s, auth = stub
    node.ledger.enroll(Enroll("e-m2", "m2"))
    await refused(
        s.SetMemberContact(
            mpb.SetMemberContactRequest(member_id="m2", preferred_channel="pigeon"), metadata=auth
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "UNKNOWN_CHANNEL",
    )
    await s.SetMemberContact(
        mpb.SetMemberContactRequest(
            member_id="m2", email="m2@example.com", preferred_channel="email"
        ),
        metadata=auth,
    )
    with node.ledger.engine.connect() as conn:
        row = conn.execute(select(member_contacts)).one()
    assert (row.email, row.preferred_channel) == ("m2@example.com", "email")
