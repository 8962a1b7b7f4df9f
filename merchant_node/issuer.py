"""The node as issuer: the exchange's signed hold commands on this merchant's points, and this
node's statements of what it booked, and of what expired, in a settlement period.

Only the exchange may call (`sender="exchange"`); every command is verified before it is parsed
and every answer is signed by this node, binding it to the command it answers.
"""

from __future__ import annotations

import logging
from datetime import date

from coalition.envelope.v1.envelope_pb2 import SignedEnvelope
from coalition.issuer.v1 import issuer_pb2 as ipb
from coalition_kernel.envelope import EXCHANGE_ID, Signer, Verifier
from coalition_kernel.errors import FailedPrecondition
from coalition_kernel.points import format_ratio, parse_ratio
from coalition_kernel.rpc import Offload
from merchant_node.ledger.commands import PlaceHold, check_period
from merchant_node.ledger.expiry import BreakageReport, day_range
from merchant_node.ledger.holds import HoldResult
from merchant_node.ledger.service import NodeLedger
from merchant_node.ledger.statement import StatementPage, StatementQuery

log = logging.getLogger(__name__)

SERVICE = ipb.DESCRIPTOR.services_by_name["IssuerService"]
_STATUS = {
    "pending": ipb.HOLD_STATUS_PENDING,
    "posted": ipb.HOLD_STATUS_POSTED,
    "voided": ipb.HOLD_STATUS_VOIDED,
    "expired": ipb.HOLD_STATUS_EXPIRED,
}
_SIDES = {ipb.STATEMENT_SIDE_ISSUER: "issuer", ipb.STATEMENT_SIDE_ACQUIRER: "acquirer"}
# The zone of the exchange's settlement days: a period's breakage is what expired between its
# local midnights there.
SETTLEMENT_ZONE = "Asia/Shanghai"


class IssuerServicer:
    def __init__(
        self, ledger: NodeLedger, signer: Signer, verifier: Verifier, offload: Offload
    ) -> None:
        self.ledger = ledger
        self.signer = signer
        self.verifier = verifier
        self.offload = offload

    def handlers(self) -> dict:  # type: ignore[type-arg]
        return {
            "PlaceHold": self.place_hold,
            "PostHold": self.post_hold,
            "VoidHold": self.void_hold,
            "GetMemberBalance": self.get_member_balance,
            "GetStatement": self.get_statement,
            "GetBreakage": self.get_breakage,
        }

    async def _open(self, envelope: SignedEnvelope, expected):  # type: ignore[no-untyped-def]
        return await self.offload(self.verifier.open, envelope, expected, EXCHANGE_ID)

    def _answer(self, message, request: SignedEnvelope, request_id: str) -> SignedEnvelope:  # type: ignore[no-untyped-def]
        return self.signer.seal(
            message, audience=EXCHANGE_ID, request_id=request_id, answering=request
        )

    def _receipt(
        self, result: HoldResult, request: SignedEnvelope, request_id: str
    ) -> SignedEnvelope:
        receipt = ipb.HoldReceipt(
            hold_id=result.hold_ref,
            status=_STATUS[result.status],
            points=result.points,
            member_id=result.member_id,
        )
        receipt.expires_at.FromDatetime(result.expires_at)
        return self._answer(receipt, request, request_id)

    async def place_hold(self, req: ipb.PlaceHoldRequest, _ctx) -> ipb.PlaceHoldResponse:  # type: ignore[no-untyped-def]
        cmd = await self._open(req.envelope, ipb.PlaceHoldCommand)
        self._check_point_value(cmd)
        hold = PlaceHold(
            request_id=f"x:{cmd.header.request_id}",  # the exchange's ids, apart from the POS's
            hold_ref=cmd.hold_id,
            member_id=cmd.member_id,
            points=cmd.points,
            ttl_seconds=cmd.ttl_seconds,
            consent_code=cmd.consent_code,
            acquirer_id=cmd.acquirer_id,
            consent_max_points=cmd.consent_max_points,
            consent_order_id=cmd.consent_order_id,
            issuer_id=self.signer.signer_id,
        )
        result = await self.offload(self.ledger.place_hold, hold)
        return ipb.PlaceHoldResponse(
            envelope=self._receipt(result, req.envelope, cmd.header.request_id)
        )

    def _check_point_value(self, cmd: ipb.PlaceHoldCommand) -> None:
        """One value of a point on both sides: the exchange prices a redemption at the value it
        registered for this merchant; a value this node does not hold is refused before anything
        is held (and said in the node's log, for the merchant to take up with the operator)."""
        if not cmd.fen_per_point:
            return  # an exchange that does not say: nothing to compare
        own = self.ledger.rate.fen_per_point
        try:
            registered = parse_ratio(cmd.fen_per_point)
        except (ValueError, ZeroDivisionError):
            registered = None
        if registered == own:
            return
        log.error(
            "the exchange prices this merchant's points at %s fen (registry rate version %d); "
            "this node's configuration says %s: holds are refused until they agree",
            cmd.fen_per_point,
            cmd.rate_version,
            format_ratio(own),
        )
        raise FailedPrecondition(
            "POINT_VALUE_MISMATCH",
            f"the exchange prices {self.signer.signer_id}'s points at {cmd.fen_per_point} fen "
            f"(rate version {cmd.rate_version}) but the issuer values them at "
            f"{format_ratio(own)} fen: nothing was held; the operator and the merchant must agree "
            "on one value (coalition operator set-terms --fen-per-point, or the node's "
            "fen_per_point)",
            registered_fen_per_point=cmd.fen_per_point,
            issuer_fen_per_point=format_ratio(own),
        )

    async def post_hold(self, req: ipb.PostHoldRequest, _ctx) -> ipb.PostHoldResponse:  # type: ignore[no-untyped-def]
        cmd = await self._open(req.envelope, ipb.PostHoldCommand)
        result = await self.offload(
            self.ledger.post_hold,
            f"x:{cmd.header.request_id}",
            cmd.hold_id,
            cmd.settlement_period,
        )
        return ipb.PostHoldResponse(
            envelope=self._receipt(result, req.envelope, cmd.header.request_id)
        )

    async def void_hold(self, req: ipb.VoidHoldRequest, _ctx) -> ipb.VoidHoldResponse:  # type: ignore[no-untyped-def]
        cmd = await self._open(req.envelope, ipb.VoidHoldCommand)
        result = await self.offload(
            self.ledger.void_hold, f"x:{cmd.header.request_id}", cmd.hold_id
        )
        return ipb.VoidHoldResponse(
            envelope=self._receipt(result, req.envelope, cmd.header.request_id)
        )

    async def get_member_balance(
        self, req: ipb.GetMemberBalanceRequest, _ctx
    ) -> ipb.GetMemberBalanceResponse:  # type: ignore[no-untyped-def]
        cmd = await self._open(req.envelope, ipb.MemberBalanceCommand)
        # Only with the member's portfolio code for the asking merchant; without it, a member
        # unknown here and a known one are refused alike.
        balance = await self.offload(
            self.ledger.consented_balance,
            cmd.member_id,
            cmd.consent_code,
            self.signer.signer_id,
            cmd.acquirer_id,
        )
        receipt = ipb.MemberBalanceReceipt(
            member_id=cmd.member_id, available_points=balance.available_points, enrolled=True
        )
        return ipb.GetMemberBalanceResponse(
            envelope=self._answer(receipt, req.envelope, cmd.header.request_id)
        )

    async def get_statement(self, req: ipb.GetStatementRequest, _ctx) -> ipb.GetStatementResponse:  # type: ignore[no-untyped-def]
        cmd = await self._open(req.envelope, ipb.StatementCommand)
        query = StatementQuery(
            cmd.settlement_period, _SIDES.get(cmd.side, ""), cmd.after_id, cmd.limit
        )
        page: StatementPage = await self.offload(self.ledger.statement, query)
        receipt = ipb.StatementReceipt(
            settlement_period=cmd.settlement_period,
            side=cmd.side,
            entries=[
                ipb.StatementEntry(
                    authorization_id=e.authorization_id,
                    issuer_id=e.issuer_id,
                    points=e.points,
                    value_fen=e.value_fen,
                    fee_fen=e.fee_fen,
                )
                for e in page.entries
            ],
            next_after_id=page.next_after_id,
        )
        return ipb.GetStatementResponse(
            envelope=self._answer(receipt, req.envelope, cmd.header.request_id)
        )

    async def get_breakage(self, req: ipb.GetBreakageRequest, _ctx) -> ipb.GetBreakageResponse:  # type: ignore[no-untyped-def]
        cmd = await self._open(req.envelope, ipb.BreakageCommand)
        period = check_period("settlement_period", cmd.settlement_period)
        day = date.fromisoformat(period)
        start, end = day_range(day, day, SETTLEMENT_ZONE)
        report: BreakageReport = await self.offload(
            lambda: self.ledger.breakage_report(start, end, timezone=SETTLEMENT_ZONE, by="day")
        )
        receipt = ipb.BreakageReceipt(
            settlement_period=period,
            lines=[
                ipb.BreakageLine(
                    rate_version=line.rate_version, points=line.points, value_fen=line.value_fen
                )
                for line in report.lines
                if line.period == period and line.points
            ],
        )
        return ipb.GetBreakageResponse(
            envelope=self._answer(receipt, req.envelope, cmd.header.request_id)
        )
