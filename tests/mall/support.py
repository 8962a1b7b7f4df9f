"""What the mall's tests share: a mall over a test ledger, members with points, items."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa

from coalition_kernel.rpc import Offload, Server
from merchant_node.ledger.commands import Earn, Enroll
from merchant_node.ledger.service import NodeLedger
from merchant_node.mall.api import TokenStaffAuth
from merchant_node.mall.catalog import Item
from merchant_node.mall.node import MallNode
from merchant_node.mall.schema import mall_coupons, mall_items
from merchant_node.mall.service import Mall, MallSettings

TOKEN_KEY = b"k" * 32


def open_mall(ledger: NodeLedger, **kwargs) -> Mall:  # type: ignore[no-untyped-def]
    return Mall(ledger, MallSettings(token_key=TOKEN_KEY, **kwargs))


def member_with_points(ledger: NodeLedger, member_id: str, points: int) -> str:
    """Enrolls a member and earns it `points` (1 point per yuan: 100 fen each)."""
    ledger.enroll(Enroll(f"enr-{member_id}", member_id))
    if points:
        ledger.earn(
            Earn(f"earn-{member_id}", member_id, f"o-{member_id}", points * 100, "POS", None)
        )
    return member_id


def available(ledger: NodeLedger, member_id: str) -> int:
    return ledger.balance(member_id).available_points


def stock_left(ledger: NodeLedger, item_id: str) -> int:
    with ledger.engine.connect() as conn:
        return conn.execute(
            sa.select(mall_items.c.stock_left).where(mall_items.c.item_id == item_id)
        ).scalar_one()


def coupon_statuses(ledger: NodeLedger, order_id: str) -> list[str]:
    with ledger.engine.connect() as conn:
        return sorted(
            conn.execute(
                sa.select(mall_coupons.c.status).where(mall_coupons.c.order_id == order_id)
            ).scalars()
        )


def coupon_item(item_id: str = "tea-coupon", stock: int = 10, **kw) -> Item:  # type: ignore[no-untyped-def]
    base = dict(
        item_id=item_id,
        kind="coupon",
        title="¥5 tea coupon",
        price_points=500,
        stock_total=stock,
        coupon_value_fen=500,
        coupon_valid_days=30,
    )
    base.update(kw)
    return Item(**base)  # type: ignore[arg-type]


def pickup_item(item_id: str = "mug", stock: int = 5, **kw) -> Item:  # type: ignore[no-untyped-def]
    base = dict(
        item_id=item_id, kind="pickup", title="Tea mug", price_points=800, stock_total=stock
    )
    base.update(kw)
    return Item(**base)  # type: ignore[arg-type]


PAY_WINDOW = timedelta(minutes=15)


ADMIN_TOKEN = "admin-secret"


@dataclass
class RunningMall:
    target: str
    http_port: int
    mall: Mall


@asynccontextmanager
async def start_mall(
    ledger: NodeLedger,
    *,
    http: bool = True,
    workers: int = 16,
    origins=("https://shop.example",),
    cross=None,
) -> AsyncIterator[RunningMall]:  # type: ignore[no-untyped-def]
    """The node's gRPC server with the mall's two services, and the mall's HTTP/JSON API."""
    mall = open_mall(ledger)
    mall.cross = cross
    offload = Offload(workers)
    server = Server([], listen="127.0.0.1:0")
    node = MallNode(
        mall,
        offload,
        TokenStaffAuth(ADMIN_TOKEN),
        http_listen="127.0.0.1:0" if http else None,
        cors_origins=origins,
        sweep_every=None,
    )
    node.attach(server)
    port = await server.start()
    http_port = await node.start()
    try:
        yield RunningMall(f"127.0.0.1:{port}", http_port, mall)
    finally:
        await server.stop(1)
        offload.shutdown()


STAFF = (("authorization", f"Bearer {ADMIN_TOKEN}"),)


def member_md(mall: Mall, member_id: str) -> tuple[tuple[str, str], ...]:
    token, _ = mall.issue_token(member_id, 3600)
    return (("authorization", f"Bearer {token}"),)
