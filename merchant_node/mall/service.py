"""The mall's service layer: each use case in one transaction, idempotent by request id
(the ledger's own idempotency records: a retry returns the first answer or refusal)."""

from __future__ import annotations

import asyncio
import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Connection

from coalition_kernel.db import run_in_transaction
from coalition_kernel.errors import FailedPrecondition, InvalidArgument
from coalition_kernel.rpc import Offload
from merchant_node.acquirer import CrossRedemptions
from merchant_node.ledger import queries
from merchant_node.ledger.commands import check_id, check_request_id
from merchant_node.ledger.idempotency import run_idempotent
from merchant_node.ledger.service import NodeLedger
from merchant_node.ledger.store import Context
from merchant_node.mall import catalog, coupons, draws, orders, store, tokens
from merchant_node.mall import cross as cross_buy
from merchant_node.mall.catalog import Item

R = TypeVar("R")


@dataclass(frozen=True)
class _Cmd:
    """What a mutating request asked, hashed by the idempotency record (request_id aside)."""

    request_id: str
    operation: str
    member_id: str = ""
    subject: str = ""
    detail: str = ""
    quantity: int = 0

    def __post_init__(self) -> None:
        check_request_id(self.request_id)


def member_key(member_id: str, request_id: str) -> str:
    """A member's request id in the node's one idempotency table: members' apps choose their
    ids independently, so each member's ids are a namespace of their own."""
    check_request_id(request_id)
    key = f"m:{member_id}:{request_id}"
    if len(key) <= 128:
        return key
    return "m:" + hashlib.sha256(f"{member_id}\x00{request_id}".encode()).hexdigest()


@dataclass(frozen=True)
class MallSettings:
    token_key: bytes  # HMAC key of member tokens (a secret of the node's configuration)
    payment_window: timedelta = timedelta(minutes=15)  # points + cash: pay within this
    reminder_days: int = 3  # coupon expiry reminder this many days before
    reminder_channel: str = "webhook"
    merchant_id: str = ""  # named in reports


class Mall:
    """One merchant's points mall over its node's ledger. Thread-safe: share one per process."""

    def __init__(
        self,
        ledger: NodeLedger,
        settings: MallSettings,
        *,
        cross: CrossRedemptions | None = None,
        offload: Offload | None = None,
    ) -> None:
        self.ledger = ledger
        self.engine = ledger.engine
        self.settings = settings
        self.cross = cross  # the node's link to the exchange, for other issuers' points
        self.offload = offload  # the node's pool for blocking work (None: asyncio's default)

    async def blocking(self, fn: Callable[..., R], *args: Any) -> R:
        if self.offload is not None:
            return await self.offload(fn, *args)
        return await asyncio.to_thread(fn, *args)

    @property
    def now(self) -> datetime:
        return self.ledger.clock()

    def _ctx(self, request_id: str | None) -> Context:
        return self.ledger._context(request_id)

    def _once(self, cmd: _Cmd, result_type: type[R], work: Callable[[Connection], R]) -> R:
        return run_idempotent(
            self.engine, f"mall_{cmd.operation}", cmd, result_type, work, self.ledger.clock
        )

    def _read(self, work: Callable[[Connection], R]) -> R:
        return run_in_transaction(self.engine, work)

    # -- catalog -------------------------------------------------------------------------------

    def upsert_item(self, request_id: str, item: Item, actor: str) -> Item:
        catalog.validate(item)
        cmd = _Cmd(request_id, "upsert_item", subject=item.item_id, detail=repr(item))
        return self._once(cmd, Item, lambda c: store.save_item(c, item, actor, self.now))

    def retire_item(self, request_id: str, item_id: str, actor: str) -> Item:
        cmd = _Cmd(request_id, "retire_item", subject=check_id("item_id", item_id))

        def work(conn: Connection) -> Item:
            item = replace(store.get_item(conn, item_id, lock=True), active=False)
            return store.save_item(conn, item, actor, self.now)

        return self._once(cmd, Item, work)

    def items(self) -> list[Item]:
        return self._read(store.list_items)

    def browse(self, member_id: str) -> list[Item]:
        now = self.now

        def work(conn: Connection) -> list[Item]:
            buyer = store.buyer(conn, member_id)
            return [i for i in store.list_items(conn) if catalog.visible(i, buyer, now)]

        return self._read(work)

    # -- orders --------------------------------------------------------------------------------

    def buy(self, request_id: str, member_id: str, item_id: str, quantity: int) -> store.OrderView:
        quantity = catalog.check_quantity(quantity)
        key = member_key(member_id, request_id)
        cmd = _Cmd(key, "buy", member_id, check_id("item_id", item_id), quantity=quantity)
        window = self.settings.payment_window
        return self._once(
            cmd,
            store.OrderView,
            lambda c: orders.buy(c, self._ctx(key), member_id, item_id, quantity, window),
        )

    async def buy_with_issuer(
        self,
        request_id: str,
        member_id: str,
        item_id: str,
        quantity: int,
        issuer_id: str,
        consent_code: str,
        consent_max_points: int = 0,
    ) -> store.OrderView:
        """Buys with another coalition merchant's points, through the exchange (cross.py)."""
        if self.cross is None:
            raise FailedPrecondition(
                "EXCHANGE_NOT_CONFIGURED", "this node is not linked to a coalition exchange"
            )
        return await cross_buy.buy_with_issuer(
            self,
            self.cross,
            member_key(member_id, request_id),
            member_id,
            item_id,
            quantity,
            issuer_id,
            consent_code,
            consent_max_points,
        )

    def confirm_payment(
        self, request_id: str, order_id: str, payment_ref: str, amount_fen: int
    ) -> store.OrderView:
        check_id("payment_ref", payment_ref, max_len=128)
        cmd = _Cmd(request_id, "pay", subject=order_id, detail=f"{payment_ref}:{amount_fen}")
        return self._once(
            cmd,
            store.OrderView,
            lambda c: orders.confirm_payment(
                c, self._ctx(request_id), order_id, payment_ref, amount_fen
            ),
        )

    def cancel(self, request_id: str, member_id: str, order_id: str) -> store.OrderView:
        key = member_key(member_id, request_id)
        cmd = _Cmd(key, "cancel", member_id, check_id("order_id", order_id))
        return self._once(
            cmd,
            store.OrderView,
            lambda c: orders.cancel(c, self._ctx(key), order_id, member_id),
        )

    def fulfil(self, request_id: str, order_id: str, note: str) -> store.OrderView:
        if len(note) > 200:
            raise InvalidArgument("NOTE_TOO_LONG", "note is at most 200 characters")
        cmd = _Cmd(request_id, "fulfil", subject=check_id("order_id", order_id), detail=note)
        return self._once(
            cmd, store.OrderView, lambda c: orders.fulfil(c, self._ctx(request_id), order_id, note)
        )

    def refund(self, request_id: str, order_id: str) -> store.OrderView:
        cmd = _Cmd(request_id, "refund", subject=check_id("order_id", order_id))
        return self._once(
            cmd, store.OrderView, lambda c: orders.refund(c, self._ctx(request_id), order_id)
        )

    def order(self, order_id: str) -> store.OrderView:
        return self._read(lambda c: store.order_view(c, order_id))

    def orders_of(self, member_id: str) -> list[store.OrderView]:
        from sqlalchemy import select

        from merchant_node.mall.schema import mall_orders

        def work(conn: Connection) -> list[store.OrderView]:
            ids = conn.execute(
                select(mall_orders.c.order_id)
                .where(mall_orders.c.member_id == member_id)
                .order_by(mall_orders.c.created_at.desc(), mall_orders.c.order_id)
                .limit(200)
            ).scalars()
            return [store.order_view(conn, i) for i in list(ids)]

        return self._read(work)

    def sweep_lapsed(self, now: datetime | None = None) -> int:
        """Releases unpaid orders past their pay_by, one transaction each; how many lapsed."""
        at = now or self.now
        ctx = replace(self._ctx(None), now=at, clock=lambda: at)
        total = 0
        while due := self._read(lambda c: orders.due_orders(c, at)):
            lapsed = sum(self._read(functools.partial(_lapse, ctx=ctx, order_id=o)) for o in due)
            if not lapsed:
                return total  # nothing moved (paid meanwhile): the next sweep looks again
            total += lapsed
        return total

    # -- coupons -------------------------------------------------------------------------------

    def redeem_coupon(
        self, request_id: str, code: str, till_id: str, order_amount_fen: int = 0
    ) -> coupons.CouponView:
        """order_amount_fen: the order before the coupon, checked against its minimum spend."""
        check_id("till_id", till_id)
        if not 0 <= order_amount_fen <= 10**12:
            raise InvalidArgument("BAD_AMOUNT", "order_amount_fen must be 0-1000000000000")
        norm = store.normalize_code(code)
        detail = f"{till_id}:{order_amount_fen}" if order_amount_fen else till_id
        cmd = _Cmd(request_id, "redeem_coupon", subject=norm, detail=detail)
        return self._once(
            cmd,
            coupons.CouponView,
            lambda c: coupons.redeem(c, self.now, norm, till_id, order_amount_fen),
        )

    def coupons_of(self, member_id: str) -> list[coupons.CouponView]:
        return self._read(lambda c: coupons.of_member(c, member_id, self.now))

    def enqueue_coupon_reminders(self) -> int:
        s = self.settings
        return self._read(
            lambda c: coupons.enqueue_reminders(c, self.now, s.reminder_days, s.reminder_channel)
        )

    # -- lottery -------------------------------------------------------------------------------

    def create_lottery(
        self, request_id: str, spec: draws.LotteryView, seed_hex: str
    ) -> draws.LotteryView:
        # The seed is not part of the request's hash: it is a secret, not to be stored there.
        cmd = _Cmd(request_id, "create_lottery", subject=spec.lottery_id, detail=repr(spec))
        return self._once(
            cmd, draws.LotteryView, lambda c: draws.create(c, self.now, spec, seed_hex)
        )

    def draw(self, request_id: str, member_id: str, lottery_id: str) -> draws.DrawResult:
        key = member_key(member_id, request_id)
        cmd = _Cmd(key, "draw", member_id, check_id("lottery_id", lottery_id))
        return self._once(
            cmd,
            draws.DrawResult,
            lambda c: draws.draw(c, self._ctx(key), member_id, lottery_id, request_id),
        )

    def reveal(self, request_id: str, lottery_id: str, seed_hex: str) -> draws.LotteryView:
        cmd = _Cmd(
            request_id, "reveal", subject=check_id("lottery_id", lottery_id), detail=seed_hex
        )
        return self._once(
            cmd, draws.LotteryView, lambda c: draws.reveal(c, self.now, lottery_id, seed_hex)
        )

    def lottery(self, lottery_id: str) -> draws.LotteryView:
        return self._read(lambda c: draws.get(c, lottery_id))

    # -- members -------------------------------------------------------------------------------

    def _token_key(self) -> bytes:
        if len(self.settings.token_key) < 32:  # never sign with an empty or short key
            raise FailedPrecondition(
                "MEMBER_TOKENS_DISABLED",
                "this node has no member token key ([mall] token_key): no member API",
            )
        return self.settings.token_key

    def issue_token(self, member_id: str, ttl_seconds: int) -> tuple[str, datetime]:
        key = self._token_key()
        self._read(lambda c: store.buyer(c, member_id))  # enrolled members only
        return tokens.issue(key, member_id, self.now, ttl_seconds)

    def member_of(self, token: str) -> str:
        return tokens.verify(self._token_key(), token, self.now)

    def balance(self, member_id: str) -> Any:
        return self._read(lambda c: queries.balance(c, member_id, self.now, 30))


def _lapse(conn: Connection, *, ctx: Context, order_id: str) -> int:
    return int(orders.lapse(conn, ctx, order_id))
