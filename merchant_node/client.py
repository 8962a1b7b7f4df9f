"""A small async client for POS and web-shop integrators.

Each mutating call gets a request id (a UUID unless you pass your own; keep it when you retry
by hand). The channel retries UNAVAILABLE only, with backoff, re-sending the same request id,
so a retry never earns or redeems twice. Other failures raise grpc.aio.AioRpcError; read the
machine-readable reason with `coalition_kernel.errors.error_info_of(err)`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from coalition.merchant.v1 import merchant_node_pb2 as pb
from coalition.merchant.v1 import merchant_node_pb2_grpc as pb_grpc
from coalition.merchant.v1 import rules_admin_pb2 as rpb
from coalition.merchant.v1 import rules_admin_pb2_grpc
from coalition_kernel.rpc import insecure_or_secure_channel

_SERVICE = "coalition.merchant.v1.MerchantNodeService"
_RULES_ADMIN_SERVICE = "coalition.merchant.v1.RulesAdminService"


def retry_service_config(service: str, max_attempts: int = 5) -> str:
    return json.dumps(
        {
            "methodConfig": [
                {
                    "name": [{"service": service}],
                    "retryPolicy": {
                        "maxAttempts": max_attempts,
                        "initialBackoff": "0.1s",
                        "maxBackoff": "2s",
                        "backoffMultiplier": 2,
                        "retryableStatusCodes": ["UNAVAILABLE"],
                    },
                }
            ]
        }
    )


def bearer(api_key: str) -> tuple[tuple[str, str], ...]:
    """The gRPC metadata that presents an API key to a node (none for an empty key)."""
    return (("authorization", f"Bearer {api_key}"),) if api_key else ()


class MerchantNodeClient:
    """A POS's client of MerchantNodeService. `api_key` (from `coalition node client add`) is
    sent on every call as gRPC metadata `authorization: Bearer <key>`; `credentials` for TLS."""

    def __init__(
        self,
        target: str,
        *,
        api_key: str = "",
        credentials: grpc.ChannelCredentials | None = None,
        timeout: float = 10.0,
        max_attempts: int = 5,
    ) -> None:
        options: list[tuple[str, str | int]] = [("grpc.enable_retries", 0)]
        if max_attempts > 1:
            options = [
                ("grpc.enable_retries", 1),
                ("grpc.service_config", retry_service_config(_SERVICE, max_attempts)),
            ]
        self.channel = insecure_or_secure_channel(target, credentials, *options)
        self.stub = pb_grpc.MerchantNodeServiceStub(self.channel)
        self.timeout = timeout
        self.auth = bearer(api_key)

    async def __aenter__(self) -> MerchantNodeClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.channel.close()

    async def enroll_member(
        self,
        member_id: str,
        *,
        phone: str = "",
        display_name: str = "",
        referral_code: str = "",
        request_id: str | None = None,
    ) -> pb.EnrollMemberResponse:
        req = pb.EnrollMemberRequest(
            request_id=request_id or str(uuid.uuid4()),
            member_id=member_id,
            phone=phone,
            display_name=display_name,
            referral_code=referral_code,
        )
        return await self.stub.EnrollMember(req, metadata=self.auth, timeout=self.timeout)

    async def earn(
        self,
        member_id: str,
        order_id: str,
        amount_fen: int,
        *,
        line_items: Sequence[pb.LineItem] = (),
        channel: pb.Channel.ValueType = pb.CHANNEL_POS,
        occurred_at: datetime | None = None,
        request_id: str | None = None,
    ) -> pb.EarnResponse:
        req = pb.EarnRequest(
            request_id=request_id or str(uuid.uuid4()),
            member_id=member_id,
            order_id=order_id,
            amount_fen=amount_fen,
            line_items=line_items,
            channel=channel,
        )
        if occurred_at is not None:
            ts = Timestamp()
            ts.FromDatetime(occurred_at)
            req.occurred_at.CopyFrom(ts)
        return await self.stub.Earn(req, metadata=self.auth, timeout=self.timeout)

    async def redeem(
        self,
        member_id: str,
        order_id: str,
        *,
        points: int = 0,
        amount_fen: int = 0,
        request_id: str | None = None,
    ) -> pb.RedeemResponse:
        req = pb.RedeemRequest(
            request_id=request_id or str(uuid.uuid4()), member_id=member_id, order_id=order_id
        )
        if points:
            req.points = points
        if amount_fen:
            req.amount_fen = amount_fen
        return await self.stub.Redeem(req, metadata=self.auth, timeout=self.timeout)

    async def refund(
        self,
        order_id: str,
        *,
        full: bool = False,
        amount_fen: int = 0,
        points: int = 0,
        request_id: str | None = None,
    ) -> pb.RefundResponse:
        req = pb.RefundRequest(request_id=request_id or str(uuid.uuid4()), order_id=order_id)
        if full:
            req.full = True
        else:
            req.partial.CopyFrom(pb.PartialRefund(amount_fen=amount_fen, points=points))
        return await self.stub.Refund(req, metadata=self.auth, timeout=self.timeout)

    async def get_balance(
        self, member_id: str, expiring_within_days: int = 30
    ) -> pb.GetBalanceResponse:
        req = pb.GetBalanceRequest(member_id=member_id, expiring_within_days=expiring_within_days)
        return await self.stub.GetBalance(req, metadata=self.auth, timeout=self.timeout)

    async def list_history(
        self, member_id: str, *, page_size: int = 20, page_token: str = ""
    ) -> pb.ListHistoryResponse:
        req = pb.ListHistoryRequest(member_id=member_id, page_size=page_size, page_token=page_token)
        return await self.stub.ListHistory(req, metadata=self.auth, timeout=self.timeout)

    async def quote_cross(
        self, issuer_id: str, *, points: int = 0, amount_fen: int = 0
    ) -> pb.QuoteCrossRedemptionResponse:
        req = pb.QuoteCrossRedemptionRequest(issuer_id=issuer_id)
        if points:
            req.points = points
        if amount_fen:
            req.amount_fen = amount_fen
        return await self.stub.QuoteCrossRedemption(req, metadata=self.auth, timeout=self.timeout)

    async def authorize_cross(
        self,
        issuer_id: str,
        member_id: str,
        order_id: str,
        *,
        points: int = 0,
        amount_fen: int = 0,
        consent_code: str = "",
        quote_id: str = "",
        request_id: str | None = None,
        consent_max_points: int = 0,
        consent_order_id: str = "",
    ) -> pb.AuthorizeCrossRedemptionResponse:
        req = pb.AuthorizeCrossRedemptionRequest(
            request_id=request_id or str(uuid.uuid4()),
            issuer_id=issuer_id,
            member_id=member_id,
            order_id=order_id,
            consent_code=consent_code,
            quote_id=quote_id,
            consent_max_points=consent_max_points,
            consent_order_id=consent_order_id,
        )
        if points:
            req.points = points
        if amount_fen:
            req.amount_fen = amount_fen
        return await self.stub.AuthorizeCrossRedemption(
            req, metadata=self.auth, timeout=self.timeout
        )

    async def capture_cross(
        self, authorization_id: str, *, request_id: str | None = None
    ) -> pb.CaptureCrossRedemptionResponse:
        req = pb.CaptureCrossRedemptionRequest(
            request_id=request_id or str(uuid.uuid4()), authorization_id=authorization_id
        )
        return await self.stub.CaptureCrossRedemption(req, metadata=self.auth, timeout=self.timeout)

    async def void_cross(
        self, authorization_id: str, *, request_id: str | None = None
    ) -> pb.VoidCrossRedemptionResponse:
        req = pb.VoidCrossRedemptionRequest(
            request_id=request_id or str(uuid.uuid4()), authorization_id=authorization_id
        )
        return await self.stub.VoidCrossRedemption(req, metadata=self.auth, timeout=self.timeout)

    async def get_portfolio(
        self, member_id: str, consents: dict[str, str] | None = None
    ) -> pb.GetPortfolioResponse:
        """`consents`: issuer id → the member's portfolio code for it (bound consent)."""
        req = pb.GetPortfolioRequest(member_id=member_id)
        for issuer_id, code in (consents or {}).items():
            req.consents.add(issuer_id=issuer_id, consent_code=code)
        return await self.stub.GetPortfolio(req, metadata=self.auth, timeout=self.timeout)


class RulesAdminClient:
    """The merchant's (or the operator's campaign worker's) client of RulesAdminService: every
    call presents `admin_token`, an API key with the `admin` scope (node.toml's admin_token,
    issued by `coalition node init`). Retries UNAVAILABLE like MerchantNodeClient."""

    def __init__(
        self,
        target: str,
        admin_token: str,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.channel = insecure_or_secure_channel(
            target,
            credentials,
            ("grpc.enable_retries", 1),
            ("grpc.service_config", retry_service_config(_RULES_ADMIN_SERVICE)),
        )
        self.stub = rules_admin_pb2_grpc.RulesAdminServiceStub(self.channel)
        self.auth = bearer(admin_token)
        self.timeout = timeout

    async def __aenter__(self) -> RulesAdminClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.channel.close()

    async def versions(self) -> list[rpb.ProgramVersion]:
        """Every applied version, newest first."""
        res = await self.stub.ListProgramVersions(
            rpb.ListProgramVersionsRequest(), metadata=self.auth, timeout=self.timeout
        )
        return list(res.versions)

    async def in_force(self) -> rpb.ProgramVersion | None:
        """The version in force now; None while the node runs on its base rate."""
        try:
            res = await self.stub.GetProgram(
                rpb.GetProgramRequest(), metadata=self.auth, timeout=self.timeout
            )
        except grpc.aio.AioRpcError as err:
            if err.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise
        return res.program

    async def apply(
        self,
        document: str,
        applied_by: str,
        *,
        base_version: int | None = None,
        request_id: str | None = None,
    ) -> rpb.ApplyProgramResponse:
        req = rpb.ApplyProgramRequest(
            request_id=request_id or str(uuid.uuid4()), document=document, applied_by=applied_by
        )
        if base_version is not None:
            req.base_version = base_version
        return await self.stub.ApplyProgram(req, metadata=self.auth, timeout=self.timeout)

    async def budget_pools(self, pool_ids: Sequence[str] = ()) -> list[rpb.BudgetPoolStatus]:
        res = await self.stub.ListBudgetPools(
            rpb.ListBudgetPoolsRequest(pool_ids=pool_ids), metadata=self.auth, timeout=self.timeout
        )
        return list(res.pools)

    async def campaign_report(
        self,
        campaign_id: str,
        window: tuple[datetime, datetime],
        baseline: tuple[datetime, datetime],
    ) -> rpb.GetCampaignReportResponse:
        req = rpb.GetCampaignReportRequest(campaign_id=campaign_id)
        for field, when in zip(
            ("starts_at", "ends_at", "baseline_starts_at", "baseline_ends_at"),
            (*window, *baseline),
            strict=True,
        ):
            getattr(req, field).FromDatetime(when)
        return await self.stub.GetCampaignReport(req, metadata=self.auth, timeout=self.timeout)
