"""The catalog's domain: what an item is, when it is valid, and who may buy it when.
Plain Python, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from coalition_kernel.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from merchant_node.ledger.commands import check_id
from merchant_node.mall.schema import ITEM_KINDS

LOCAL = ZoneInfo("Asia/Shanghai")  # per-day limits count the member's local day
MAX_POINTS = 10**12
MAX_STOCK = 10**9
CODE_KINDS = ("coupon", "virtual_card")  # items whose fulfilment is a code issued at payment


@dataclass(frozen=True)
class Item:
    item_id: str
    kind: str
    title: str
    price_points: int
    stock_total: int
    description: str = ""
    price_fen: int = 0
    stock_left: int = -1  # -1: as many as stock_total (a new item)
    per_member_limit: int = 0
    per_member_daily_limit: int = 0
    available_from: datetime | None = None
    available_until: datetime | None = None
    tiers: tuple[str, ...] = ()
    priority_hours: int = 0
    priority_top_n: int = 0
    priority_tiers: tuple[str, ...] = ()
    coupon_value_fen: int = 0
    coupon_valid_days: int = 0
    active: bool = True
    segments: tuple[str, ...] = ()  # only members now in one of these segments (empty: all)
    tags: tuple[str, ...] = ()  # only members now carrying one of these tags (empty: all)
    coupon_min_spend_fen: int = 0  # coupons bought need an order this large at the till

    @property
    def priority_opens_at(self) -> datetime | None:
        if self.available_from is None or not self.priority_hours:
            return None
        return self.available_from - timedelta(hours=self.priority_hours)


@dataclass(frozen=True)
class Buyer:
    """What eligibility needs to know of a member: tier, rank by lifetime points (1 = top), and
    the marketing room's current segment and tags ("" and () when not yet segmented)."""

    member_id: str
    tier: str
    rank: int = field(default=0)
    segment: str = ""
    tags: tuple[str, ...] = ()


def validate(item: Item) -> Item:
    """The item as stored, or INVALID_ARGUMENT naming the first field at fault."""
    check_id("item_id", item.item_id)
    if item.kind not in ITEM_KINDS:
        raise InvalidArgument("BAD_ITEM", f"kind must be one of {', '.join(ITEM_KINDS)}")
    if not item.title.strip() or len(item.title) > 200:
        raise InvalidArgument("BAD_ITEM", "title is required (at most 200 characters)")
    if len(item.description) > 4000:
        raise InvalidArgument("BAD_ITEM", "description is at most 4000 characters")
    for name in ("price_points", "price_fen", "per_member_limit", "per_member_daily_limit"):
        if not 0 <= getattr(item, name) <= MAX_POINTS:
            raise InvalidArgument("BAD_ITEM", f"{name} must be 0-{MAX_POINTS}")
    if item.price_points == 0:
        raise InvalidArgument("BAD_ITEM", "price_points must be positive: this is a points mall")
    if not 0 <= item.stock_total <= MAX_STOCK:
        raise InvalidArgument("BAD_ITEM", f"stock_total must be 0-{MAX_STOCK}")
    if item.available_from and item.available_until and item.available_from >= item.available_until:
        raise InvalidArgument("BAD_ITEM", "available_from must be before available_until")
    if not 0 <= item.priority_hours <= 24 * 30 or not 0 <= item.priority_top_n <= 10**6:
        raise InvalidArgument("BAD_ITEM", "priority_hours is 0-720, priority_top_n 0-1000000")
    if item.priority_hours and item.available_from is None:
        raise InvalidArgument("BAD_ITEM", "a priority window needs available_from")
    if item.priority_hours and not (item.priority_top_n or item.priority_tiers):
        raise InvalidArgument("BAD_ITEM", "a priority window needs priority_top_n or tiers")
    for tier in (*item.tiers, *item.priority_tiers):
        check_id("tier", tier)
    # Any well-formed name is accepted, not only those of today's segment definitions: the
    # definitions are re-applied over time, and an item must not become invalid when they are.
    # A name no member carries simply reserves the item for no one until one does.
    for name in item.segments:
        check_id("segment", name, max_len=32)
    for tag in item.tags:
        check_id("tag", tag)
    if len(item.segments) > 50 or len(item.tags) > 50:
        raise InvalidArgument("BAD_ITEM", "at most 50 segments and 50 tags per item")
    if item.kind in CODE_KINDS:
        if not 1 <= item.coupon_valid_days <= 3650:
            raise InvalidArgument("BAD_ITEM", "a coupon's coupon_valid_days must be 1-3650")
        if not 0 <= item.coupon_value_fen <= MAX_POINTS:
            raise InvalidArgument("BAD_ITEM", "coupon_value_fen must not be negative")
    if not 0 <= item.coupon_min_spend_fen <= MAX_POINTS:
        raise InvalidArgument("BAD_ITEM", f"coupon_min_spend_fen must be 0-{MAX_POINTS}")
    if item.coupon_min_spend_fen and item.kind not in CODE_KINDS:
        raise InvalidArgument("BAD_ITEM", "coupon_min_spend_fen is for coupons and cards only")
    return item


def check_on_sale(item: Item, buyer: Buyer, now: datetime) -> None:
    """Refuses (FAILED_PRECONDITION / PERMISSION_DENIED) a purchase outside the item's window,
    tier or priority; passes otherwise."""
    if not item.active:
        raise FailedPrecondition("ITEM_RETIRED", f"item {item.item_id} is no longer on sale")
    if item.available_until is not None and now >= item.available_until:
        raise FailedPrecondition("ITEM_NOT_ON_SALE", f"item {item.item_id} sale has ended")
    if item.tiers and buyer.tier not in item.tiers:
        raise PermissionDenied(
            "TIER_REQUIRED", f"item {item.item_id} is for tiers {', '.join(item.tiers)}"
        )
    if not in_audience(item, buyer):
        raise PermissionDenied("ITEM_RESERVED", f"item {item.item_id} is for {_audience(item)}")
    if item.available_from is None or now >= item.available_from:
        return
    opens = item.priority_opens_at
    if opens is not None and now >= opens and is_priority(item, buyer):
        return
    raise FailedPrecondition(
        "ITEM_NOT_ON_SALE",
        f"item {item.item_id} goes on sale at {item.available_from.isoformat()}",
    )


def is_priority(item: Item, buyer: Buyer) -> bool:
    if buyer.tier and buyer.tier in item.priority_tiers:
        return True
    return bool(item.priority_top_n) and 0 < buyer.rank <= item.priority_top_n


def visible(item: Item, buyer: Buyer, now: datetime) -> bool:
    """On the member's shelf now: on sale to them, or soon (a window not yet open is shown)."""
    if not item.active or (item.available_until is not None and now >= item.available_until):
        return False
    return not (item.tiers and buyer.tier not in item.tiers) and in_audience(item, buyer)


def in_audience(item: Item, buyer: Buyer) -> bool:
    """Within the item's segment and tag reservation: in one of its segments (if it names any)
    and carrying one of its tags (if it names any)."""
    if item.segments and buyer.segment not in item.segments:
        return False
    return not item.tags or bool(set(item.tags) & set(buyer.tags))


def _audience(item: Item) -> str:
    parts = [f"segments {', '.join(item.segments)}"] if item.segments else []
    parts += [f"members tagged {' or '.join(item.tags)}"] if item.tags else []
    return " and ".join(parts)


def local_day(at: datetime) -> str:
    return at.astimezone(LOCAL).date().isoformat()


def check_limits(item: Item, quantity: int, bought_ever: int, bought_today: int) -> None:
    if item.per_member_limit and bought_ever + quantity > item.per_member_limit:
        raise FailedPrecondition(
            "LIMIT_REACHED",
            f"at most {item.per_member_limit} of item {item.item_id} per member; "
            f"{bought_ever} already bought",
            limit=str(item.per_member_limit),
        )
    if item.per_member_daily_limit and bought_today + quantity > item.per_member_daily_limit:
        raise FailedPrecondition(
            "DAILY_LIMIT_REACHED",
            f"at most {item.per_member_daily_limit} of item {item.item_id} per member per day",
            limit=str(item.per_member_daily_limit),
        )


def check_quantity(quantity: int) -> int:
    quantity = quantity or 1
    if not 1 <= quantity <= 100:
        raise InvalidArgument("BAD_QUANTITY", "quantity must be 1-100")
    return quantity
