"""Caller authentication through the node's real gRPC server: API keys, scopes, the merchant's
limits, and the enrollment answer that holds a member's wallet secret."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from coalition_kernel.errors import error_info_of
from merchant_node.auth.domain import Limits
from merchant_node.auth.service import add_client, revoke_client
from merchant_node.client import MerchantNodeClient
from tests.conftest import issue_key, start_node
from tests.merchant_node.test_server import dump


async def refused_with(call, code: grpc.StatusCode, reason: str):  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    assert err.value.code() == code, err.value.details()
    info = error_info_of(err.value)
    assert info is not None and info.reason == reason, (info, err.value.details())
    return err.value, info


@pytest.fixture
async def node(ledger):  # type: ignore[no-untyped-def]
    # Revocations by another process are honoured at once here (no cache); the cache's own
    # promptness is tested below with a hand-moved clock.
    async for running in start_node(ledger, auth_cache_seconds=0):
        async with running.client() as owner:
            await owner.enroll_member("m1")
            await owner.earn("m1", "seed", 10_000)  # 100 points
        yield running


async def test_an_earn_without_a_key_a_revoked_key_a_read_key_or_above_the_limit_changes_nothing(
    node, ledger
):
    read_key = issue_key(ledger, "read", "dashboard")
    revoked_key = issue_key(ledger, "pos", "old-till")
    revoke_client(ledger.engine, "old-till")
    limited_key = add_client(ledger.engine, "till-2", "pos", Limits(max_points_per_earn=500)).key
    key_id = node.api_key.split("_")[1]
    wrong_secret = f"cpk_{key_id}_{'A' * 43}"
    before = dump(ledger, skip=())
    cases = [
        ("", grpc.StatusCode.UNAUTHENTICATED, "API_KEY_REQUIRED"),
        ("not-a-key", grpc.StatusCode.UNAUTHENTICATED, "API_KEY_INVALID"),
        (f"cpk_{'0' * 16}_{'A' * 43}", grpc.StatusCode.UNAUTHENTICATED, "API_KEY_INVALID"),
        (wrong_secret, grpc.StatusCode.UNAUTHENTICATED, "API_KEY_INVALID"),
        (revoked_key, grpc.StatusCode.UNAUTHENTICATED, "API_KEY_REVOKED"),
        (read_key, grpc.StatusCode.PERMISSION_DENIED, "SCOPE_DENIED"),
        (limited_key, grpc.StatusCode.PERMISSION_DENIED, "LIMIT_EXCEEDED"),
    ]
    for key, code, reason in cases:
        async with MerchantNodeClient(node.target, api_key=key, max_attempts=1) as pos:
            # 10^12 fen would mint 10^10 points; 1,000 yuan is 1,000 points, above 500.
            amount = 10**12 if reason != "LIMIT_EXCEEDED" else 100_000
            err, info = await refused_with(
                pos.earn("m1", "big", amount, request_id="earn-big"), code, reason
            )
        assert dump(ledger, skip=()) == before, reason  # balances, journal, idempotency rows
        assert node.api_key not in err.details()
        if reason == "SCOPE_DENIED":
            assert info.metadata["scope"] == "pos" and "'pos'" in err.details()
        if reason == "LIMIT_EXCEEDED":
            assert (info.metadata["requested"], info.metadata["limit"]) == ("1000", "500")
    # Nothing was recorded for the refused request id: a client allowed to earn 1,000 points
    # may send it, and within the limit the limited till earns.
    async with node.client() as owner:
        assert (await owner.earn("m1", "big", 100_000, request_id="earn-big")).points_earned == 1000
    async with MerchantNodeClient(node.target, api_key=limited_key) as till:
        assert (await till.earn("m1", "small", 50_000)).points_earned == 500


async def test_a_read_key_reads_and_the_order_and_redemption_limits_hold(node, ledger):
    read_key = issue_key(ledger, "read", "dashboard")
    async with MerchantNodeClient(node.target, api_key=read_key) as reader:
        assert (await reader.get_balance("m1")).available_points == 100
        assert len((await reader.list_history("m1")).entries) == 1
        await refused_with(
            reader.redeem("m1", "o1", points=10), grpc.StatusCode.PERMISSION_DENIED, "SCOPE_DENIED"
        )
    till = add_client(
        ledger.engine, "till", "pos", Limits(max_order_fen=5_000, max_points_per_redeem=30)
    ).key
    before = dump(ledger, skip=())
    async with MerchantNodeClient(node.target, api_key=till) as pos:
        for call in (
            pos.earn("m1", "o2", 5_001),
            pos.redeem("m1", "o3", points=31),
            pos.redeem("m1", "o4", amount_fen=40),  # 40 points at 1 fen a point
            pos.redeem("m1", "o5", amount_fen=5_001),
        ):
            await refused_with(call, grpc.StatusCode.PERMISSION_DENIED, "LIMIT_EXCEEDED")
        assert dump(ledger, skip=()) == before
        assert (await pos.redeem("m1", "o6", points=30)).points_redeemed == 30


async def test_node_wide_limits_apply_to_every_client_unless_its_own_say_otherwise(ledger):
    async for node in start_node(ledger, limits=Limits(max_points_per_earn=50)):
        generous = add_client(ledger.engine, "hq", "pos", Limits(max_points_per_earn=10**6)).key
        async with node.client() as owner:
            await owner.enroll_member("m1")
            await refused_with(
                owner.earn("m1", "o1", 10_000), grpc.StatusCode.PERMISSION_DENIED, "LIMIT_EXCEEDED"
            )
        async with MerchantNodeClient(node.target, api_key=generous) as hq:
            assert (await hq.earn("m1", "o1", 10_000)).points_earned == 100


async def test_calls_above_a_clients_rate_are_refused(node, ledger):
    key = add_client(ledger.engine, "kiosk", "read", Limits(calls_per_minute=3)).key
    async with MerchantNodeClient(node.target, api_key=key, max_attempts=1) as kiosk:
        for _ in range(3):
            await kiosk.get_balance("m1")
        await refused_with(
            kiosk.get_balance("m1"), grpc.StatusCode.RESOURCE_EXHAUSTED, "RATE_LIMITED"
        )


async def test_another_client_resending_an_enrollment_request_id_never_gets_the_wallet_secret(
    node, ledger
):
    till_1, till_2 = issue_key(ledger, "pos", "till-1"), issue_key(ledger, "pos", "till-2")
    async with MerchantNodeClient(node.target, api_key=till_1) as first:
        enrolled = await first.enroll_member("m-wang", phone="13800000000", request_id="enr-7")
    secret = enrolled.wallet_secret
    assert len(secret) == 32
    before = dump(ledger, skip=())
    async with MerchantNodeClient(node.target, api_key=till_2) as other:
        err, _ = await refused_with(
            other.enroll_member("m-wang", phone="13800000000", request_id="enr-7"),
            grpc.StatusCode.ALREADY_EXISTS,
            "REQUEST_ID_REUSED",
        )
    assert secret not in err.details() and secret not in str(err.trailing_metadata())
    assert dump(ledger, skip=()) == before
    # The client that enrolled her may retry (its answer was lost): it gets the same answer.
    async with MerchantNodeClient(node.target, api_key=till_1) as first:
        again = await first.enroll_member("m-wang", phone="13800000000", request_id="enr-7")
    assert (again.wallet_secret, again.member.referral_code) == (
        secret,
        enrolled.member.referral_code,
    )


async def test_the_database_holds_no_wallet_secret_in_clear(node, ledger):
    import base64

    secrets = []
    async with node.client() as owner:
        for i in range(5):
            secrets.append((await owner.enroll_member(f"m-{i}", request_id=f"e-{i}")).wallet_secret)
            await owner.enroll_member(f"m-{i}", request_id=f"e-{i}")  # a replay, recorded too
    raw = [base64.b32decode(s) for s in secrets]
    for table, rows in dump(ledger, skip=()).items():
        for row in rows:
            for value in row:
                text = value if isinstance(value, str) else ""
                blob = bytes(value) if isinstance(value, bytes | memoryview) else b""
                for s, r in zip(secrets, raw, strict=True):
                    assert s not in text and s.encode() not in blob and r not in blob, table


async def test_revocation_reaches_a_running_node_within_the_cache_interval(ledger):
    async for node in start_node(ledger, auth_cache_seconds=0.2):
        key = issue_key(ledger, "read", "phone-app")
        async with node.client() as owner:
            await owner.enroll_member("m1")
        async with MerchantNodeClient(node.target, api_key=key, max_attempts=1) as app:
            await app.get_balance("m1")  # verified and cached
            revoke_client(ledger.engine, "phone-app")  # as `coalition node client revoke` does
            await asyncio.sleep(0.3)
            await refused_with(
                app.get_balance("m1"), grpc.StatusCode.UNAUTHENTICATED, "API_KEY_REVOKED"
            )


async def test_insecure_no_auth_serves_anyone_only_when_asked(ledger):
    async for node in start_node(ledger, insecure_no_auth=True):
        async with MerchantNodeClient(node.target) as anyone:
            await anyone.enroll_member("m1")
            assert (await anyone.earn("m1", "o1", 1_000)).points_earned == 10
