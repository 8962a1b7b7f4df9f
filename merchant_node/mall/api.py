"""The mall's two services: translate the message, authorize the caller (one call), call the
mall, translate the answer. Transport-free: each method takes the request and the caller's
metadata (gRPC metadata or HTTP headers), so gRPC (grpc_server.py) and the Connect HTTP/JSON
API (http_api.py) serve the very same methods."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from coalition.merchant.v1 import mall_pb2 as pb
from coalition_kernel.errors import PermissionDenied, Unauthenticated
from coalition_kernel.rpc import Offload
from merchant_node.mall import convert as cv
from merchant_node.mall.report import report_message
from merchant_node.mall.service import Mall

ADMIN, POS, MEMBER = "admin", "pos", "member"
Metadata = Mapping[str, str]
Method = Callable[[Any, Metadata], Awaitable[Any]]


def bearer(metadata: Metadata) -> str:
    value = metadata.get("authorization", "")
    if not value.startswith("Bearer "):
        raise Unauthenticated("MISSING_CREDENTIAL", "present 'authorization: Bearer <credential>'")
    return value.removeprefix("Bearer ").strip()


class StaffAuth(Protocol):
    """Proves a merchant-side caller (admin or POS) and its scope; returns who it is."""

    async def __call__(self, metadata: Metadata, scope: str, method: str) -> str: ...


class TokenStaffAuth:
    """The node's admin token for both scopes: the same check RulesAdminService makes. The
    node's per-client API keys (merchant_node/auth) replace it through the same one call."""

    def __init__(self, token: str) -> None:
        self.token = token

    async def __call__(self, metadata: Metadata, scope: str, method: str) -> str:
        if not self.token:
            raise PermissionDenied("ADMIN_DISABLED", "this node has no admin token configured")
        if not hmac.compare_digest(bearer(metadata).encode(), self.token.encode()):
            raise Unauthenticated(
                "BAD_ADMIN_TOKEN", f"{method} needs the node's {scope} credential"
            )
        return scope


class _Invocation:
    """What NodeAuth reads of a gRPC context: the caller's metadata."""

    def __init__(self, metadata: Metadata) -> None:
        self.metadata = tuple(metadata.items())

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self.metadata


class NodeKeyStaffAuth:
    """The node's per-client API keys (merchant_node/auth, `NodeAuth.authorize`): admin methods
    need a key with the admin scope, the POS's methods one with the pos scope. The same check
    for gRPC and for the HTTP API, whose headers are handed over as metadata."""

    def __init__(self, node_auth: Any) -> None:
        self.node_auth = node_auth

    async def __call__(self, metadata: Metadata, scope: str, method: str) -> str:
        client = await self.node_auth.authorize(_Invocation(metadata), scope, method)
        return str(getattr(client, "name", scope))


class MallApi:
    """Every method of MallAdminService and MallService, keyed by service then method name."""

    def __init__(self, mall: Mall, offload: Offload, staff: StaffAuth) -> None:
        self.mall = mall
        self.offload = offload
        self.staff = staff

    def _staff(self, scope: str, name: str, fn: Callable[[Any, str], Awaitable[Any]]) -> Method:
        async def call(req: Any, md: Metadata) -> Any:
            actor = await self.staff(md, scope, name)
            return await fn(req, actor)

        return call

    def _member(self, fn: Callable[[Any, str], Awaitable[Any]]) -> Method:
        async def call(req: Any, md: Metadata) -> Any:
            return await fn(req, self.mall.member_of(bearer(md)))

        return call

    def admin_methods(self) -> dict[str, Method]:
        m, run = self.mall, self.offload
        methods: dict[str, Callable[[Any, str], Awaitable[Any]]] = {
            "UpsertItem": lambda r, who: self._item(
                run(m.upsert_item, r.request_id, cv.item_in(r.item), who), pb.UpsertItemResponse
            ),
            "ListItems": self._list_items,
            "RetireItem": lambda r, who: self._item(
                run(m.retire_item, r.request_id, r.item_id, who), pb.RetireItemResponse
            ),
            "IssueMemberToken": self._issue_token,
            "FulfilOrder": lambda r, _: self._order(
                run(m.fulfil, r.request_id, r.order_id, r.note), pb.FulfilOrderResponse
            ),
            "RefundOrder": lambda r, _: self._order(
                run(m.refund, r.request_id, r.order_id), pb.RefundOrderResponse
            ),
            "SweepLapsedOrders": self._sweep,
            "CreateLottery": self._create_lottery,
            "RevealLottery": self._reveal,
            "GetMallReport": self._report,
        }
        return {name: self._staff(ADMIN, name, fn) for name, fn in methods.items()}

    def member_methods(self) -> dict[str, Method]:
        m, run = self.mall, self.offload
        member: dict[str, Callable[[Any, str], Awaitable[Any]]] = {
            "BrowseItems": self._browse,
            "BuyItem": self._buy,
            "CancelOrder": lambda r, who: self._order(
                run(m.cancel, r.request_id, who, r.order_id), pb.CancelOrderResponse
            ),
            "ListMyOrders": self._my_orders,
            "ListMyCoupons": self._my_coupons,
            "GetMyBalance": self._my_balance,
            "Draw": self._draw,
            "GetLottery": self._get_lottery,
        }
        pos: dict[str, Callable[[Any, str], Awaitable[Any]]] = {
            "ConfirmPayment": lambda r, _: self._order(
                run(m.confirm_payment, r.request_id, r.order_id, r.payment_ref, r.amount_fen),
                pb.ConfirmPaymentResponse,
            ),
            "RedeemCoupon": self._redeem_coupon,
        }
        out = {name: self._member(fn) for name, fn in member.items()}
        out.update({name: self._staff(POS, name, fn) for name, fn in pos.items()})
        return out

    # -- translations ----------------------------------------------------------------------------

    async def _item(self, work: Awaitable[Any], response: Any) -> Any:
        return response(item=cv.item_out(await work))

    async def _order(self, work: Awaitable[Any], response: Any) -> Any:
        return response(order=cv.order_out(await work))

    async def _list_items(self, _req: Any, _who: str) -> pb.ListItemsResponse:
        items = await self.offload(self.mall.items)
        return pb.ListItemsResponse(items=[cv.item_out(i) for i in items])

    async def _issue_token(self, req: Any, _who: str) -> pb.IssueMemberTokenResponse:
        token, expires = await self.offload(self.mall.issue_token, req.member_id, req.ttl_seconds)
        return pb.IssueMemberTokenResponse(token=token, expires_at=cv.ts(expires))

    async def _sweep(self, _req: Any, _who: str) -> pb.SweepLapsedOrdersResponse:
        return pb.SweepLapsedOrdersResponse(lapsed=await self.offload(self.mall.sweep_lapsed))

    async def _create_lottery(self, req: Any, _who: str) -> pb.CreateLotteryResponse:
        spec = cv.lottery_in(req.lottery)
        made = await self.offload(self.mall.create_lottery, req.request_id, spec, req.lottery.seed)
        return pb.CreateLotteryResponse(lottery=cv.lottery_out(made))

    async def _reveal(self, req: Any, _who: str) -> pb.RevealLotteryResponse:
        shown = await self.offload(self.mall.reveal, req.request_id, req.lottery_id, req.seed)
        return pb.RevealLotteryResponse(lottery=cv.lottery_out(shown))

    async def _report(self, req: Any, _who: str) -> pb.GetMallReportResponse:
        start, end = cv.time_of(req, "start"), cv.time_of(req, "end")
        return await self.offload(report_message, self.mall, start, end)

    async def _browse(self, _req: Any, who: str) -> pb.BrowseItemsResponse:
        items = await self.offload(self.mall.browse, who)
        return pb.BrowseItemsResponse(items=[cv.item_out(i) for i in items])

    async def _buy(self, req: Any, who: str) -> pb.BuyItemResponse:
        if req.issuer_id:
            order = await self.mall.buy_with_issuer(
                req.request_id,
                who,
                req.item_id,
                req.quantity,
                req.issuer_id,
                req.consent_code,
                req.consent_max_points,
            )
        else:
            order = await self.offload(
                self.mall.buy, req.request_id, who, req.item_id, req.quantity
            )
        return pb.BuyItemResponse(order=cv.order_out(order))

    async def _my_orders(self, _req: Any, who: str) -> pb.ListMyOrdersResponse:
        orders = await self.offload(self.mall.orders_of, who)
        return pb.ListMyOrdersResponse(orders=[cv.order_out(o) for o in orders])

    async def _my_coupons(self, _req: Any, who: str) -> pb.ListMyCouponsResponse:
        found = await self.offload(self.mall.coupons_of, who)
        return pb.ListMyCouponsResponse(coupons=[cv.coupon_out(c) for c in found])

    async def _my_balance(self, _req: Any, who: str) -> pb.GetMyBalanceResponse:
        bal = await self.offload(self.mall.balance, who)
        return pb.GetMyBalanceResponse(
            member_id=who, available_points=bal.available_points, held_points=bal.held_points
        )

    async def _draw(self, req: Any, who: str) -> pb.DrawResponse:
        d = await self.offload(self.mall.draw, req.request_id, who, req.lottery_id)
        return pb.DrawResponse(
            draw_id=d.draw_id,
            roll=d.roll,
            drawn_prize_id=d.drawn_prize_id,
            awarded=d.awarded,
            coupon_code=d.coupon_code,
            points_spent=d.points_spent,
        )

    async def _get_lottery(self, req: Any, _who: str) -> pb.GetLotteryResponse:
        return pb.GetLotteryResponse(
            lottery=cv.lottery_out(await self.offload(self.mall.lottery, req.lottery_id))
        )

    async def _redeem_coupon(self, req: Any, _who: str) -> pb.RedeemCouponResponse:
        c = await self.offload(
            self.mall.redeem_coupon, req.request_id, req.code, req.till_id, req.order_amount_fen
        )
        return pb.RedeemCouponResponse(coupon=cv.coupon_out(c))
