"""SQL of the mall: items in and out of rows, stock taken and put back, orders and coupons."""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, replace
from datetime import datetime

from sqlalchemy import Connection, Row, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from coalition_kernel.errors import FailedPrecondition, NotFound
from merchant_node.ledger.schema import members
from merchant_node.mall.catalog import Buyer, Item
from merchant_node.mall.schema import mall_audit, mall_coupons, mall_items, mall_orders
from merchant_node.marketing.schema import member_segments

# Live orders count against limits; cancelled and lapsed ones never happened for the member.
COUNTED = ("awaiting_payment", "confirmed", "fulfilled", "refunded")
_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # 32 letters (5 bits), no 0/O, 1/I
CODE_LENGTH = 20  # 100 bits from the secrets module


def new_coupon_code() -> str:
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalize_code(code: str) -> str:
    return code.replace("-", "").replace(" ", "").upper()


def item_from_row(row: Row) -> Item:
    return Item(
        item_id=row.item_id,
        kind=row.kind,
        title=row.title,
        description=row.description,
        price_points=row.price_points,
        price_fen=row.price_fen,
        stock_total=row.stock_total,
        stock_left=row.stock_left,
        per_member_limit=row.per_member_limit,
        per_member_daily_limit=row.per_member_daily_limit,
        available_from=row.available_from,
        available_until=row.available_until,
        tiers=tuple(json.loads(row.tiers)),
        priority_hours=row.priority_hours,
        priority_top_n=row.priority_top_n,
        priority_tiers=tuple(json.loads(row.priority_tiers)),
        coupon_value_fen=row.coupon_value_fen,
        coupon_valid_days=row.coupon_valid_days,
        active=row.active,
        segments=tuple(json.loads(row.segments)),
        tags=tuple(json.loads(row.tags)),
        coupon_min_spend_fen=row.coupon_min_spend_fen,
    )


def _values(item: Item, now: datetime) -> dict:  # type: ignore[type-arg]
    values = asdict(item)
    values["tiers"] = json.dumps(list(item.tiers))
    values["priority_tiers"] = json.dumps(list(item.priority_tiers))
    values["segments"] = json.dumps(list(item.segments))
    values["tags"] = json.dumps(list(item.tags))
    values["updated_at"] = now
    return values


def get_item(conn: Connection, item_id: str, *, lock: bool = False) -> Item:
    stmt = select(mall_items).where(mall_items.c.item_id == item_id)
    row = conn.execute(stmt.with_for_update() if lock else stmt).first()
    if row is None:
        raise NotFound("ITEM_NOT_FOUND", f"no item {item_id} in this mall")
    return item_from_row(row)


def list_items(conn: Connection) -> list[Item]:
    rows = conn.execute(select(mall_items).order_by(mall_items.c.item_id)).all()
    return [item_from_row(r) for r in rows]


def save_item(conn: Connection, item: Item, actor: str, now: datetime) -> Item:
    """Creates or replaces an item; its stock left follows the change of its total stock."""
    old = conn.execute(
        select(mall_items).where(mall_items.c.item_id == item.item_id).with_for_update()
    ).first()
    if old is None:
        item = replace(item, stock_left=item.stock_total)
        conn.execute(mall_items.insert().values(**_values(item, now)))
        action = "create"
    else:
        sold = old.stock_total - old.stock_left
        if item.stock_total < sold:
            raise FailedPrecondition(
                "STOCK_BELOW_SOLD",
                f"{sold} of item {item.item_id} are sold or reserved; stock_total cannot be lower",
            )
        item = replace(item, stock_left=item.stock_total - sold)
        conn.execute(
            update(mall_items)
            .where(mall_items.c.item_id == item.item_id)
            .values(**_values(item, now))
        )
        action = "update"
    audit(conn, item, action, actor, now)
    return item


def audit(conn: Connection, item: Item, action: str, actor: str, now: datetime) -> None:
    document = json.dumps(asdict(item), default=str, sort_keys=True, ensure_ascii=False)
    conn.execute(
        mall_audit.insert().values(
            item_id=item.item_id, action=action, actor=actor, document=document, at=now
        )
    )


def take_stock(conn: Connection, item_id: str, quantity: int) -> bool:
    """Takes `quantity` off the shelf if there are that many (one atomic UPDATE)."""
    result = conn.execute(
        update(mall_items)
        .where(mall_items.c.item_id == item_id, mall_items.c.stock_left >= quantity)
        .values(stock_left=mall_items.c.stock_left - quantity)
    )
    return result.rowcount == 1


def put_back_stock(conn: Connection, item_id: str, quantity: int) -> None:
    conn.execute(
        update(mall_items)
        .where(mall_items.c.item_id == item_id)
        .values(stock_left=mall_items.c.stock_left + quantity)
    )


def bought(conn: Connection, member_id: str, item_id: str, day: str) -> tuple[int, int]:
    """How many of the item the member bought ever, and on `day` (live orders only)."""
    q = func.coalesce(func.sum(mall_orders.c.quantity), 0)
    where = (
        mall_orders.c.member_id == member_id,
        mall_orders.c.item_id == item_id,
        mall_orders.c.status.in_(COUNTED),
    )
    ever = conn.execute(select(q).where(*where)).scalar_one()
    today = conn.execute(select(q).where(*where, mall_orders.c.local_day == day)).scalar_one()
    return int(ever), int(today)


def buyer(conn: Connection, member_id: str) -> Buyer:
    """The member's tier and rank by lifetime points (1 = most; ties share the better rank)."""
    row = conn.execute(
        select(members.c.tier, members.c.lifetime_earned).where(members.c.member_id == member_id)
    ).first()
    if row is None:
        raise NotFound("MEMBER_NOT_FOUND", f"member {member_id} is not enrolled at this merchant")
    above = conn.execute(
        select(func.count()).where(members.c.lifetime_earned > row.lifetime_earned)
    ).scalar_one()
    return with_audience(conn, Buyer(member_id, row.tier or "", int(above) + 1))


def with_audience(conn: Connection, buyer: Buyer) -> Buyer:
    """The buyer with the marketing room's current segment and tags (none if not segmented)."""
    row = conn.execute(
        select(member_segments.c.segment, member_segments.c.tags)
        .join(members, members.c.id == member_segments.c.member_pk)
        .where(members.c.member_id == buyer.member_id)
    ).first()
    if row is None:
        return buyer
    tags = tuple(t for t in row.tags.split(",") if t)
    return replace(buyer, segment=row.segment, tags=tags)


def get_order(conn: Connection, order_id: str, *, lock: bool = False) -> Row:
    stmt = select(mall_orders).where(mall_orders.c.order_id == order_id)
    row = conn.execute(stmt.with_for_update() if lock else stmt).first()
    if row is None:
        raise NotFound("ORDER_NOT_FOUND", f"no mall order {order_id}")
    return row


def set_order(conn: Connection, order_id: str, **values: object) -> None:
    conn.execute(update(mall_orders).where(mall_orders.c.order_id == order_id).values(**values))


def coupon_codes(conn: Connection, order_id: str) -> list[str]:
    return list(
        conn.execute(
            select(mall_coupons.c.code)
            .where(mall_coupons.c.order_id == order_id)
            .order_by(mall_coupons.c.code)
        ).scalars()
    )


@dataclass(frozen=True)
class OrderView:
    order_id: str
    member_id: str
    item_id: str
    quantity: int
    points: int
    cash_fen: int
    status: str
    created_at: datetime
    pay_by: datetime | None
    payment_ref: str
    fulfilment_note: str
    coupon_codes: list[str]
    issuer_id: str


def order_view(conn: Connection, order_id: str) -> OrderView:
    row = get_order(conn, order_id)
    return OrderView(
        row.order_id,
        row.member_id,
        row.item_id,
        row.quantity,
        row.points,
        row.cash_fen,
        row.status,
        row.created_at,
        row.pay_by,
        row.payment_ref or "",
        row.fulfilment_note or "",
        coupon_codes(conn, order_id),
        row.issuer_id,
    )


def insert_ignoring_duplicates(conn: Connection, table, rows: list[dict]) -> None:  # type: ignore[no-untyped-def, type-arg]
    make = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(make(table).on_conflict_do_nothing(), rows)
