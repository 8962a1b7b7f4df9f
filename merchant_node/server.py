"""The node's gRPC entrypoint: translate the message, call the ledger, translate the answer."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from google.protobuf.timestamp_pb2 import Timestamp

from coalition.exchange.v1 import exchange_pb2 as xpb
from coalition.merchant.v1 import merchant_node_pb2 as pb
from coalition_kernel import timestamps
from coalition_kernel.db import is_sqlite, utc_now
from coalition_kernel.envelope import EXCHANGE_ID, Signer, StaticKeys, Verifier
from coalition_kernel.errors import FailedPrecondition, InvalidArgument
from coalition_kernel.group_commit import GroupCommit
from coalition_kernel.rpc import Offload, Server, generic_handler
from coalition_kernel.telemetry import register_figures
from merchant_node import issuer, rules_admin
from merchant_node.acquirer import CrossRedemptions, ExchangeLink
from merchant_node.auth.domain import ADMIN, MERCHANT_NODE_SCOPES, NO_LIMITS, Limits
from merchant_node.auth.service import NodeAuth, current_caller
from merchant_node.figures.metrics import NodeFigures
from merchant_node.ledger import consent
from merchant_node.ledger.commands import Earn, Enroll, Redeem, Refund
from merchant_node.ledger.service import NodeLedger
from merchant_node.marketing import api as marketing_api
from merchant_node.marketing.api import MarketingServicer
from merchant_node.marketing.service import MarketingService
from merchant_node.rules.base import LineItem
from merchant_node.rules_admin import RulesAdminServicer

SERVICE = pb.DESCRIPTOR.services_by_name["MerchantNodeService"]
log = logging.getLogger(__name__)


def _ts(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def _time_of(msg, field: str) -> datetime | None:  # type: ignore[no-untyped-def]
    return timestamps.optional(msg, field)


@dataclass(frozen=True)
class CoalitionLink:
    """How a node takes part in the coalition: its identity and the exchange it trusts."""

    merchant_id: str
    private_key: Ed25519PrivateKey
    exchange_key: Ed25519PublicKey
    exchange_endpoint: str
    clock: Callable[[], datetime] = utc_now


class MerchantNodeServicer:
    def __init__(
        self,
        ledger: NodeLedger,
        offload: Offload,
        cross: CrossRedemptions | None = None,
        merchant_id: str = "",
    ) -> None:
        self.ledger = ledger
        self.offload = offload
        self.cross_redemptions = cross
        self.merchant_id = merchant_id

    @property
    def cross(self) -> CrossRedemptions:
        if self.cross_redemptions is None:
            raise FailedPrecondition(
                "EXCHANGE_NOT_CONFIGURED", "this node is not linked to a coalition exchange"
            )
        return self.cross_redemptions

    def handlers(self) -> dict:  # type: ignore[type-arg]
        return {
            "EnrollMember": self.enroll_member,
            "Earn": self.earn,
            "Redeem": self.redeem,
            "Refund": self.refund,
            "GetBalance": self.get_balance,
            "ListHistory": self.list_history,
            "QuoteCrossRedemption": self.quote_cross,
            "AuthorizeCrossRedemption": self.authorize_cross,
            "CaptureCrossRedemption": self.capture_cross,
            "VoidCrossRedemption": self.void_cross,
            "GetPortfolio": self.get_portfolio,
            "CheckIn": self.check_in,
            "RecordEngagement": self.record_engagement,
            "GetMemberProfile": self.get_member_profile,
            "UpgradeTier": self.upgrade_tier,
        }

    async def enroll_member(self, req: pb.EnrollMemberRequest, _ctx) -> pb.EnrollMemberResponse:  # type: ignore[no-untyped-def]
        cmd = Enroll(
            req.request_id,
            req.member_id,
            req.phone,
            req.display_name,
            req.referral_code,
            req.birth_month,
            client_id=current_caller().key_id,
        )
        res = await self.offload(self.ledger.enroll, cmd)
        member = pb.Member(
            member_id=res.member_id,
            referral_code=res.referral_code,
            referred_by_code=res.referred_by_code,
            enrolled_at=_ts(res.enrolled_at),
        )
        return pb.EnrollMemberResponse(
            member=member,
            wallet_secret=res.wallet_secret,
            wallet_uri=consent.wallet_uri(
                res.wallet_secret, res.member_id, self.merchant_id or "node"
            ),
        )

    async def earn(self, req: pb.EarnRequest, _ctx) -> pb.EarnResponse:  # type: ignore[no-untyped-def]
        cmd = Earn(
            request_id=req.request_id,
            member_id=req.member_id,
            order_id=req.order_id,
            amount_fen=req.amount_fen,
            channel=pb.Channel.Name(req.channel)
            .removeprefix("CHANNEL_")
            .replace("UNSPECIFIED", "POS")
            if req.channel in pb.Channel.values()
            else "UNKNOWN",
            occurred_at=_time_of(req, "occurred_at"),
            line_items=tuple(
                LineItem(i.sku, i.category, i.quantity, i.unit_price_fen) for i in req.line_items
            ),
            points_paid_fen=req.points_paid_fen,
        )
        limits = current_caller().limits
        limits.check_order("amount_fen", cmd.amount_fen)
        res = await self.offload(
            functools.partial(self.ledger.earn, cmd, max_points=limits.max_points_per_earn)
        )
        return pb.EarnResponse(
            points_earned=res.points_earned,
            breakdown=[
                pb.EarnBreakdownLine(rule_id=b.rule_id, description=b.description, points=b.points)
                for b in res.breakdown
            ],
            points_applied_to_debt=res.points_applied_to_debt,
            expires_at=_ts(res.expires_at),
            rate_version=res.rate_version,
            available_points=res.available_points,
            available_from=_ts(res.available_from),
            rule_version=res.rule_version,
        )

    async def redeem(self, req: pb.RedeemRequest, _ctx) -> pb.RedeemResponse:  # type: ignore[no-untyped-def]
        cmd = Redeem(req.request_id, req.member_id, req.order_id, req.points, req.amount_fen)
        limits = current_caller().limits
        limits.check_order("amount_fen", req.amount_fen)
        limits.check_points("points", req.points, limits.max_points_per_redeem)
        res = await self.offload(
            functools.partial(self.ledger.redeem, cmd, max_points=limits.max_points_per_redeem)
        )
        return pb.RedeemResponse(
            redemption_id=res.redemption_id,
            points_redeemed=res.points_redeemed,
            value_fen=res.value_fen,
            available_points=res.available_points,
            rate_version=res.rate_version,
        )

    async def refund(self, req: pb.RefundRequest, _ctx) -> pb.RefundResponse:  # type: ignore[no-untyped-def]
        cmd = Refund(
            req.request_id,
            req.order_id,
            full=req.full,
            amount_fen=req.partial.amount_fen,
            points=req.partial.points,
        )
        res = await self.offload(self.ledger.refund, cmd)
        return pb.RefundResponse(
            points_clawed_back=res.points_clawed_back,
            points_added_to_debt=res.points_added_to_debt,
            points_returned=res.points_returned,
            available_points=res.available_points,
            debt_points=res.debt_points,
        )

    async def get_balance(self, req: pb.GetBalanceRequest, _ctx) -> pb.GetBalanceResponse:  # type: ignore[no-untyped-def]
        bal = await self.offload(self.ledger.balance, req.member_id, req.expiring_within_days)
        return pb.GetBalanceResponse(
            available_points=bal.available_points,
            held_points=bal.held_points,
            expiring_points=bal.expiring_points,
            expiring_before=_ts(bal.expiring_before),
            lifetime_earned_points=bal.lifetime_earned_points,
            debt_points=bal.debt_points,
            available_value_fen=self.ledger.rate.value_of_points(bal.available_points),
            pending_points=bal.pending_points,
        )

    async def list_history(self, req: pb.ListHistoryRequest, _ctx) -> pb.ListHistoryResponse:  # type: ignore[no-untyped-def]
        entries, token = await self.offload(
            self.ledger.history, req.member_id, req.page_size, req.page_token
        )
        return pb.ListHistoryResponse(
            entries=[
                pb.HistoryEntry(
                    entry_id=e.entry_id,
                    kind=pb.EntryKind.Value(f"ENTRY_KIND_{e.kind}"),
                    available_delta=e.available_delta,
                    held_delta=e.held_delta,
                    debt_delta=e.debt_delta,
                    order_id=e.order_id,
                    created_at=_ts(e.created_at),
                    rate_version=e.rate_version,
                    rule_version=e.rule_version,
                )
                for e in entries
            ],
            next_page_token=token,
        )

    # -- cross-merchant redemption (this node as acquirer) ------------------------------------

    async def quote_cross(
        self, req: pb.QuoteCrossRedemptionRequest, _ctx
    ) -> pb.QuoteCrossRedemptionResponse:  # type: ignore[no-untyped-def]
        q = await self.cross.quote(req.issuer_id, req.points, req.amount_fen)
        return pb.QuoteCrossRedemptionResponse(
            quote_id=q.quote_id,
            points=q.points,
            value_fen=q.value_fen,
            fee_fen=q.fee_fen,
            rate_version=q.rate_version,
            expires_at=q.expires_at,
        )

    async def authorize_cross(
        self, req: pb.AuthorizeCrossRedemptionRequest, _ctx
    ) -> pb.AuthorizeCrossRedemptionResponse:  # type: ignore[no-untyped-def]
        limits = current_caller().limits
        limits.check_order("amount_fen", req.amount_fen)
        limits.check_points("points", req.points, limits.max_points_per_redeem)
        a = await self.cross.authorize(
            req.request_id,
            req.issuer_id,
            req.member_id,
            req.order_id,
            req.points,
            req.amount_fen,
            req.consent_code,
            req.quote_id,
            req.consent_max_points,
            req.consent_order_id,
        )
        return pb.AuthorizeCrossRedemptionResponse(
            authorization_id=a.authorization_id,
            points=a.points,
            value_fen=a.value_fen,
            fee_fen=a.fee_fen,
            hold_expires_at=a.hold_expires_at,
        )

    async def capture_cross(
        self, req: pb.CaptureCrossRedemptionRequest, _ctx
    ) -> pb.CaptureCrossRedemptionResponse:  # type: ignore[no-untyped-def]
        r = await self.cross.capture(req.request_id, req.authorization_id)
        return pb.CaptureCrossRedemptionResponse(
            clearing_id=r.clearing_id,
            issuer_id=r.issuer_id,
            points=r.points,
            value_fen=r.value_fen,
            fee_fen=r.fee_fen,
            settlement_period=r.settlement_period,
        )

    async def void_cross(
        self, req: pb.VoidCrossRedemptionRequest, _ctx
    ) -> pb.VoidCrossRedemptionResponse:  # type: ignore[no-untyped-def]
        v = await self.cross.void(req.request_id, req.authorization_id)
        return pb.VoidCrossRedemptionResponse(
            authorization_id=v.authorization_id, voided=v.status == xpb.AUTHORIZATION_STATUS_VOIDED
        )

    async def get_portfolio(self, req: pb.GetPortfolioRequest, _ctx) -> pb.GetPortfolioResponse:  # type: ignore[no-untyped-def]
        if len({c.issuer_id for c in req.consents}) != len(req.consents):
            raise InvalidArgument("DUPLICATE_ISSUER", "each issuer may be named once in consents")
        p = await self.cross.portfolio(
            req.member_id, {c.issuer_id: c.consent_code for c in req.consents}
        )
        lines = [
            pb.PortfolioLine(
                issuer_id=b.issuer_id,
                display_name=b.display_name,
                available_points=b.available_points,
                value_fen=b.value_fen,
                reachable=b.reachable,
                consent_refused=b.consent_refused,
            )
            for b in p.balances
        ]
        return pb.GetPortfolioResponse(
            lines=lines, total_value_fen=sum(line.value_fen for line in lines if line.reachable)
        )

    # -- engagement and tiers -----------------------------------------------------------------

    async def check_in(self, req: pb.CheckInRequest, _ctx) -> pb.CheckInResponse:  # type: ignore[no-untyped-def]
        res = await self.offload(self.ledger.check_in, req.request_id, req.member_id)
        return pb.CheckInResponse(
            points_awarded=res.points_awarded,
            streak_days=res.count,
            breakdown=[_line(b) for b in res.breakdown],
        )

    async def record_engagement(
        self, req: pb.RecordEngagementRequest, _ctx
    ) -> pb.RecordEngagementResponse:  # type: ignore[no-untyped-def]
        kind = {pb.ENGAGEMENT_KIND_REVIEW: "review", pb.ENGAGEMENT_KIND_SHARE: "share"}.get(
            req.kind
        )
        if kind is None:
            raise InvalidArgument("UNKNOWN_KIND", "kind must be REVIEW or SHARE")
        res = await self.offload(
            self.ledger.engage, req.request_id, req.member_id, kind, req.reference
        )
        return pb.RecordEngagementResponse(points_awarded=res.points_awarded, count_today=res.count)

    async def get_member_profile(
        self, req: pb.GetMemberProfileRequest, _ctx
    ) -> pb.GetMemberProfileResponse:  # type: ignore[no-untyped-def]
        p = await self.offload(self.ledger.profile, req.member_id)
        # The member's facts, segment and tags as the last nightly run left them (read only).
        known = await self.offload(MarketingService(self.ledger).stored_member, req.member_id)
        m = p.member
        return pb.GetMemberProfileResponse(
            member=pb.Member(
                member_id=m.member_id,
                referral_code=m.referral_code,
                enrolled_at=_ts(m.enrolled_at),
            ),
            tier=p.tier,
            next_tier=p.next_tier,
            measure=p.measure,
            measure_value=p.measure_value,
            next_threshold=p.next_threshold,
            grace_until=_ts(p.grace_until),
            pending_points=p.pending_points,
            **marketing_api.profile_fields(known),
        )

    async def upgrade_tier(self, req: pb.UpgradeTierRequest, _ctx) -> pb.UpgradeTierResponse:  # type: ignore[no-untyped-def]
        res = await self.offload(
            self.ledger.upgrade_tier, req.request_id, req.member_id, req.target_tier
        )
        return pb.UpgradeTierResponse(
            tier=res.tier, points_spent=res.points_spent, available_points=res.available_points
        )


def _line(b) -> pb.EarnBreakdownLine:  # type: ignore[no-untyped-def]
    return pb.EarnBreakdownLine(rule_id=b.rule_id, description=b.description, points=b.points)


def _group_committed(ledger: NodeLedger, committers: int) -> Callable[[], Awaitable[None]]:
    """Turns on the ledger's group commit; returns what turns it off once calls have finished."""
    groups = [GroupCommit(ledger.engine, name=f"node-ledger-{k}") for k in range(committers)]
    ledger.use_group_commit(*groups)

    async def stop() -> None:
        ledger.use_group_commit()
        for group in groups:
            group.close()

    return stop


def default_committers(ledger: NodeLedger) -> int:
    """SQLite has one writer at a time, and each commit is an fsync: one committer, every
    request in flight in its batch, one fsync per batch. PostgreSQL runs transactions side by
    side and already shares one WAL flush among the commits that arrive together; a batch's
    statements, on the other hand, are one round trip after another on one connection, which
    measured slower than one transaction per request (bench/node_bench.py: the "no group
    commit" cell): none there unless asked for (`coalition node serve --group-commit N`)."""
    return 1 if is_sqlite(ledger.engine) else 0


def build_server(
    ledger: NodeLedger,
    listen: str,
    *,
    workers: int = 16,
    coalition: CoalitionLink | None = None,
    limits: Limits = NO_LIMITS,
    insecure_no_auth: bool = False,
    credentials: grpc.ServerCredentials | None = None,
    auth_cache_seconds: float = 2.0,
    group_commit: int | None = None,
) -> tuple[Server, Offload]:
    """The node's gRPC server (not yet started) and the pool its blocking work runs on.

    Every MerchantNodeService and RulesAdminService caller presents an API key (merchant_node/
    auth; `limits` are the node's defaults under each client's own); `insecure_no_auth` serves
    them to anyone, for a laptop only. `credentials`: TLS (or mTLS) on the listener.

    With a `coalition` link the node also serves the exchange as an issuer (IssuerService,
    authenticated by the exchange's signatures) and its POS can spend other issuers' points here
    (the cross-redemption RPCs).

    The POS's earns and redeems in flight are committed together (coalition_kernel/
    group_commit.py), each with its own answer, by `group_commit` committers (None: the
    database's default, `default_committers`; 0: one transaction per request).
    """
    offload = Offload(workers)
    auth = NodeAuth(
        ledger.engine,
        offload,
        defaults=limits,
        required=not insecure_no_auth,
        cache_seconds=auth_cache_seconds,
    )
    if insecure_no_auth:
        log.warning(
            "INSECURE: this node serves its POS and admin APIs without API keys "
            "(--insecure-no-auth); anyone who reaches %s can mint and spend points",
            listen,
        )
    cross = None
    handlers = []
    cleanups: list[Callable[[], Awaitable[None]]] = []
    committers = default_committers(ledger) if group_commit is None else group_commit
    if committers:
        cleanups.append(_group_committed(ledger, committers))
    if coalition is not None:
        signer = Signer(coalition.merchant_id, coalition.private_key, coalition.clock)
        link = ExchangeLink(coalition.exchange_endpoint, signer, coalition.exchange_key)
        cleanups.append(link.close)
        cross = CrossRedemptions(ledger.engine, link, offload, coalition.clock)
        verifier = Verifier(
            coalition.merchant_id,
            StaticKeys({EXCHANGE_ID: coalition.exchange_key}),
            clock=coalition.clock,
        )
        issuing = issuer.IssuerServicer(ledger, signer, verifier, offload)
        handlers.append((issuer.SERVICE, generic_handler(issuer.SERVICE, issuing.handlers())))
    merchant_id = coalition.merchant_id if coalition else ""
    servicer = MerchantNodeServicer(ledger, offload, cross, merchant_id)
    pos = auth.guard(servicer.handlers(), MERCHANT_NODE_SCOPES)
    handlers.insert(0, (SERVICE, generic_handler(SERVICE, pos)))
    admin = RulesAdminServicer(ledger, offload)
    admin_handlers = auth.guard(admin.handlers(), dict.fromkeys(admin.handlers(), ADMIN))
    handlers.append((rules_admin.SERVICE, generic_handler(rules_admin.SERVICE, admin_handlers)))
    # Member intelligence (merchant_node/marketing): segments, churn, triggers; admin only.
    intelligence = MarketingServicer(MarketingService(ledger, merchant_id=merchant_id), offload)
    guarded = auth.guard(intelligence.handlers(), dict.fromkeys(intelligence.handlers(), ADMIN))
    handlers.append((marketing_api.SERVICE, generic_handler(marketing_api.SERVICE, guarded)))
    # Business figures on this process's /metrics (coalition_kernel.telemetry), read from the
    # rollups at scrape time; removed when the server stops.
    cleanups.append(register_figures(NodeFigures(ledger.engine, merchant_id)))
    server = Server(handlers, listen=listen, cleanups=cleanups, credentials=credentials)
    return server, offload
