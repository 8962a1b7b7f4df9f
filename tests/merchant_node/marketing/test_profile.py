"""GetMemberProfile carries what the node knows of the member (issue 13: "exposed in
GetMemberProfile"), through the node's real gRPC server with a read-only key (SQLite,
PostgreSQL): the facts of the last nightly run as stored, when they were computed, the segment,
tags and churn cause with reasons; nothing before a run; nothing recomputed by the call."""

from __future__ import annotations

import grpc
import pytest
from sqlalchemy import func, select

from coalition.merchant.v1 import merchant_node_pb2 as pb
from coalition.merchant.v1 import merchant_node_pb2_grpc as pbgrpc
from merchant_node.ledger.commands import Earn, Enroll
from merchant_node.marketing.schema import member_facts
from merchant_node.marketing.service import MarketingService
from tests.conftest import issue_key
from tests.merchant_node.test_server import refused


@pytest.fixture
async def reader(node):  # type: ignore[no-untyped-def]
    key = issue_key(node.ledger, "read", "profile-reader")
    async with grpc.aio.insecure_channel(node.target) as channel:
        yield pbgrpc.MerchantNodeServiceStub(channel), [("authorization", f"Bearer {key}")]


async def test_profile_has_no_facts_before_a_nightly_run(node, reader):
    s, auth = reader
    node.ledger.enroll(Enroll("e-p0", "p0"))
    profile = await s.GetMemberProfile(pb.GetMemberProfileRequest(member_id="p0"), metadata=auth)
    assert profile.member.member_id == "p0"
    assert not profile.HasField("facts") and not profile.HasField("facts_as_of")
    assert not profile.HasField("segment") and list(profile.tags) == []
    with node.ledger.engine.connect() as conn:  # a read: no facts row was written for it
        assert conn.execute(select(func.count()).select_from(member_facts)).scalar_one() == 0


async def test_profile_shows_the_nightly_facts_segment_and_reasons(node, reader, clock):
    s, auth = reader
    ledger = node.ledger
    ledger.enroll(Enroll("e-p1", "p1"))
    ledger.earn(Earn("earn-p1", "p1", "o1", 12_000, "POS", None))
    ledger.earn(Earn("earn-p2", "p1", "o2", 8_000, "POS", None))
    clock.advance(days=100)
    night = clock()
    service = MarketingService(ledger)
    service.refresh_facts(night)
    service.place_all(night)

    profile = await s.GetMemberProfile(pb.GetMemberProfileRequest(member_id="p1"), metadata=auth)
    f = profile.facts
    assert (f.recency_days, f.orders_total, f.spend_total_fen) == (100, 2, 20_000)
    assert f.avg_order_365d_fen == 10_000 and f.orders_30d == 0
    assert profile.facts_as_of.ToDatetime().replace(microsecond=0) == night.replace(
        microsecond=0, tzinfo=None
    )
    assert profile.segment.id == "dormant"
    assert "recency_days=100" in profile.segment.reason
    assert profile.churn_cause.id == "long_silence"

    # A purchase after the night shows in the next night's facts, not before: the call reads
    # the stored row and recomputes nothing.
    clock.advance(days=1)
    ledger.earn(Earn("earn-p3", "p1", "o3", 5_000, "POS", None))
    again = await s.GetMemberProfile(pb.GetMemberProfileRequest(member_id="p1"), metadata=auth)
    assert again.facts.orders_total == 2 and again.segment.id == "dormant"
    service.refresh_facts(clock())
    service.place_all(clock())
    fresh = await s.GetMemberProfile(pb.GetMemberProfileRequest(member_id="p1"), metadata=auth)
    assert (fresh.facts.orders_total, fresh.facts.recency_days) == (3, 0)
    assert fresh.segment.id != "dormant" and not fresh.HasField("churn_cause")


async def test_profile_of_an_unknown_member_is_refused(node, reader):
    s, auth = reader
    await refused(
        s.GetMemberProfile(pb.GetMemberProfileRequest(member_id="nobody"), metadata=auth),
        grpc.StatusCode.NOT_FOUND,
        "MEMBER_NOT_FOUND",
    )
