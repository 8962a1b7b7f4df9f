"""The node's gRPC entrypoint: translate the message, call the ledger, translate the answer."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp

from coalition.merchant.v1 import merchant_node_pb2 as pb
from coalition_kernel.errors import InvalidArgument
from coalition_kernel.rpc import Offload, Server, generic_handler
from merchant_node.ledger.commands import Earn, Enroll, Redeem, Refund
from merchant_node.ledger.service import NodeLedger
from merchant_node.rules.base import LineItem

SERVICE = pb.DESCRIPTOR.services_by_name["MerchantNodeService"]
_MIN_TS = datetime(2000, 1, 1, tzinfo=UTC)
_MAX_TS = datetime(2200, 1, 1, tzinfo=UTC)


def _ts(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


def _time_of(msg, field: str) -> datetime | None:  # type: ignore[no-untyped-def]
    if not msg.HasField(field):
        return None
    ts = getattr(msg, field)
    if not 0 <= ts.nanos < 1_000_000_000:
        raise InvalidArgument("MALFORMED_TIMESTAMP", f"{field}.nanos must be 0-999999999")
    try:
        value = ts.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError) as exc:
        raise InvalidArgument("MALFORMED_TIMESTAMP", f"{field} is not a valid time") from exc
    if not _MIN_TS <= value < _MAX_TS:
        raise InvalidArgument("MALFORMED_TIMESTAMP", f"{field} is outside 2000-2200")
    return value


class MerchantNodeServicer:
    def __init__(self, ledger: NodeLedger, offload: Offload) -> None:
        self.ledger = ledger
        self.offload = offload

    def handlers(self) -> dict:  # type: ignore[type-arg]
        return {
            "EnrollMember": self.enroll_member,
            "Earn": self.earn,
            "Redeem": self.redeem,
            "Refund": self.refund,
            "GetBalance": self.get_balance,
            "ListHistory": self.list_history,
        }

    async def enroll_member(self, req: pb.EnrollMemberRequest, _ctx) -> pb.EnrollMemberResponse:  # type: ignore[no-untyped-def]
        cmd = Enroll(req.request_id, req.member_id, req.phone, req.display_name, req.referral_code)
        res = await self.offload(self.ledger.enroll, cmd)
        member = pb.Member(
            member_id=res.member_id,
            referral_code=res.referral_code,
            referred_by_code=res.referred_by_code,
            enrolled_at=_ts(res.enrolled_at),
        )
        return pb.EnrollMemberResponse(member=member)

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
        )
        res = await self.offload(self.ledger.earn, cmd)
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
        )

    async def redeem(self, req: pb.RedeemRequest, _ctx) -> pb.RedeemResponse:  # type: ignore[no-untyped-def]
        cmd = Redeem(req.request_id, req.member_id, req.order_id, req.points, req.amount_fen)
        res = await self.offload(self.ledger.redeem, cmd)
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


def build_server(ledger: NodeLedger, listen: str, *, workers: int = 16) -> tuple[Server, Offload]:
    """The node's gRPC server (not yet started) and the pool its blocking work runs on."""
    offload = Offload(workers)
    servicer = MerchantNodeServicer(ledger, offload)
    handler = generic_handler(SERVICE, servicer.handlers())
    return Server([(SERVICE, handler)], listen=listen), offload
