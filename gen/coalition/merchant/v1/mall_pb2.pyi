import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ItemKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ITEM_KIND_UNSPECIFIED: _ClassVar[ItemKind]
    ITEM_KIND_PICKUP: _ClassVar[ItemKind]
    ITEM_KIND_DELIVERY: _ClassVar[ItemKind]
    ITEM_KIND_COUPON: _ClassVar[ItemKind]
    ITEM_KIND_VIRTUAL_CARD: _ClassVar[ItemKind]

class OrderStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_STATUS_UNSPECIFIED: _ClassVar[OrderStatus]
    ORDER_STATUS_AWAITING_PAYMENT: _ClassVar[OrderStatus]
    ORDER_STATUS_CONFIRMED: _ClassVar[OrderStatus]
    ORDER_STATUS_FULFILLED: _ClassVar[OrderStatus]
    ORDER_STATUS_CANCELLED: _ClassVar[OrderStatus]
    ORDER_STATUS_LAPSED: _ClassVar[OrderStatus]
    ORDER_STATUS_REFUNDED: _ClassVar[OrderStatus]

class CouponStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COUPON_STATUS_UNSPECIFIED: _ClassVar[CouponStatus]
    COUPON_STATUS_ISSUED: _ClassVar[CouponStatus]
    COUPON_STATUS_REDEEMED: _ClassVar[CouponStatus]
    COUPON_STATUS_EXPIRED: _ClassVar[CouponStatus]
    COUPON_STATUS_WITHDRAWN: _ClassVar[CouponStatus]
ITEM_KIND_UNSPECIFIED: ItemKind
ITEM_KIND_PICKUP: ItemKind
ITEM_KIND_DELIVERY: ItemKind
ITEM_KIND_COUPON: ItemKind
ITEM_KIND_VIRTUAL_CARD: ItemKind
ORDER_STATUS_UNSPECIFIED: OrderStatus
ORDER_STATUS_AWAITING_PAYMENT: OrderStatus
ORDER_STATUS_CONFIRMED: OrderStatus
ORDER_STATUS_FULFILLED: OrderStatus
ORDER_STATUS_CANCELLED: OrderStatus
ORDER_STATUS_LAPSED: OrderStatus
ORDER_STATUS_REFUNDED: OrderStatus
COUPON_STATUS_UNSPECIFIED: CouponStatus
COUPON_STATUS_ISSUED: CouponStatus
COUPON_STATUS_REDEEMED: CouponStatus
COUPON_STATUS_EXPIRED: CouponStatus
COUPON_STATUS_WITHDRAWN: CouponStatus

class Item(_message.Message):
    __slots__ = ("item_id", "kind", "title", "description", "price_points", "price_fen", "stock_total", "stock_left", "per_member_limit", "per_member_daily_limit", "available_from", "available_until", "tiers", "priority_hours", "priority_top_n", "priority_tiers", "coupon_value_fen", "coupon_valid_days", "active", "segments", "tags", "coupon_min_spend_fen")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PRICE_POINTS_FIELD_NUMBER: _ClassVar[int]
    PRICE_FEN_FIELD_NUMBER: _ClassVar[int]
    STOCK_TOTAL_FIELD_NUMBER: _ClassVar[int]
    STOCK_LEFT_FIELD_NUMBER: _ClassVar[int]
    PER_MEMBER_LIMIT_FIELD_NUMBER: _ClassVar[int]
    PER_MEMBER_DAILY_LIMIT_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FROM_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_UNTIL_FIELD_NUMBER: _ClassVar[int]
    TIERS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_HOURS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_TOP_N_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_TIERS_FIELD_NUMBER: _ClassVar[int]
    COUPON_VALUE_FEN_FIELD_NUMBER: _ClassVar[int]
    COUPON_VALID_DAYS_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    COUPON_MIN_SPEND_FEN_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    kind: ItemKind
    title: str
    description: str
    price_points: int
    price_fen: int
    stock_total: int
    stock_left: int
    per_member_limit: int
    per_member_daily_limit: int
    available_from: _timestamp_pb2.Timestamp
    available_until: _timestamp_pb2.Timestamp
    tiers: _containers.RepeatedScalarFieldContainer[str]
    priority_hours: int
    priority_top_n: int
    priority_tiers: _containers.RepeatedScalarFieldContainer[str]
    coupon_value_fen: int
    coupon_valid_days: int
    active: bool
    segments: _containers.RepeatedScalarFieldContainer[str]
    tags: _containers.RepeatedScalarFieldContainer[str]
    coupon_min_spend_fen: int
    def __init__(self, item_id: _Optional[str] = ..., kind: _Optional[_Union[ItemKind, str]] = ..., title: _Optional[str] = ..., description: _Optional[str] = ..., price_points: _Optional[int] = ..., price_fen: _Optional[int] = ..., stock_total: _Optional[int] = ..., stock_left: _Optional[int] = ..., per_member_limit: _Optional[int] = ..., per_member_daily_limit: _Optional[int] = ..., available_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., available_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tiers: _Optional[_Iterable[str]] = ..., priority_hours: _Optional[int] = ..., priority_top_n: _Optional[int] = ..., priority_tiers: _Optional[_Iterable[str]] = ..., coupon_value_fen: _Optional[int] = ..., coupon_valid_days: _Optional[int] = ..., active: _Optional[bool] = ..., segments: _Optional[_Iterable[str]] = ..., tags: _Optional[_Iterable[str]] = ..., coupon_min_spend_fen: _Optional[int] = ...) -> None: ...

class UpsertItemRequest(_message.Message):
    __slots__ = ("request_id", "item")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ITEM_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    item: Item
    def __init__(self, request_id: _Optional[str] = ..., item: _Optional[_Union[Item, _Mapping]] = ...) -> None: ...

class UpsertItemResponse(_message.Message):
    __slots__ = ("item",)
    ITEM_FIELD_NUMBER: _ClassVar[int]
    item: Item
    def __init__(self, item: _Optional[_Union[Item, _Mapping]] = ...) -> None: ...

class ListItemsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListItemsResponse(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Item]
    def __init__(self, items: _Optional[_Iterable[_Union[Item, _Mapping]]] = ...) -> None: ...

class RetireItemRequest(_message.Message):
    __slots__ = ("request_id", "item_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    item_id: str
    def __init__(self, request_id: _Optional[str] = ..., item_id: _Optional[str] = ...) -> None: ...

class RetireItemResponse(_message.Message):
    __slots__ = ("item",)
    ITEM_FIELD_NUMBER: _ClassVar[int]
    item: Item
    def __init__(self, item: _Optional[_Union[Item, _Mapping]] = ...) -> None: ...

class IssueMemberTokenRequest(_message.Message):
    __slots__ = ("member_id", "ttl_seconds")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    ttl_seconds: int
    def __init__(self, member_id: _Optional[str] = ..., ttl_seconds: _Optional[int] = ...) -> None: ...

class IssueMemberTokenResponse(_message.Message):
    __slots__ = ("token", "expires_at")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    token: str
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, token: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Order(_message.Message):
    __slots__ = ("order_id", "member_id", "item_id", "quantity", "points", "cash_fen", "status", "created_at", "pay_by", "payment_ref", "fulfilment_note", "coupon_codes", "issuer_id")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    CASH_FEN_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    PAY_BY_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_REF_FIELD_NUMBER: _ClassVar[int]
    FULFILMENT_NOTE_FIELD_NUMBER: _ClassVar[int]
    COUPON_CODES_FIELD_NUMBER: _ClassVar[int]
    ISSUER_ID_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    member_id: str
    item_id: str
    quantity: int
    points: int
    cash_fen: int
    status: OrderStatus
    created_at: _timestamp_pb2.Timestamp
    pay_by: _timestamp_pb2.Timestamp
    payment_ref: str
    fulfilment_note: str
    coupon_codes: _containers.RepeatedScalarFieldContainer[str]
    issuer_id: str
    def __init__(self, order_id: _Optional[str] = ..., member_id: _Optional[str] = ..., item_id: _Optional[str] = ..., quantity: _Optional[int] = ..., points: _Optional[int] = ..., cash_fen: _Optional[int] = ..., status: _Optional[_Union[OrderStatus, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., pay_by: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., payment_ref: _Optional[str] = ..., fulfilment_note: _Optional[str] = ..., coupon_codes: _Optional[_Iterable[str]] = ..., issuer_id: _Optional[str] = ...) -> None: ...

class FulfilOrderRequest(_message.Message):
    __slots__ = ("request_id", "order_id", "note")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    order_id: str
    note: str
    def __init__(self, request_id: _Optional[str] = ..., order_id: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class FulfilOrderResponse(_message.Message):
    __slots__ = ("order",)
    ORDER_FIELD_NUMBER: _ClassVar[int]
    order: Order
    def __init__(self, order: _Optional[_Union[Order, _Mapping]] = ...) -> None: ...

class RefundOrderRequest(_message.Message):
    __slots__ = ("request_id", "order_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    order_id: str
    def __init__(self, request_id: _Optional[str] = ..., order_id: _Optional[str] = ...) -> None: ...

class RefundOrderResponse(_message.Message):
    __slots__ = ("order",)
    ORDER_FIELD_NUMBER: _ClassVar[int]
    order: Order
    def __init__(self, order: _Optional[_Union[Order, _Mapping]] = ...) -> None: ...

class SweepLapsedOrdersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SweepLapsedOrdersResponse(_message.Message):
    __slots__ = ("lapsed",)
    LAPSED_FIELD_NUMBER: _ClassVar[int]
    lapsed: int
    def __init__(self, lapsed: _Optional[int] = ...) -> None: ...

class Prize(_message.Message):
    __slots__ = ("prize_id", "title", "weight", "stock", "stock_left", "value_fen", "valid_days")
    PRIZE_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    STOCK_FIELD_NUMBER: _ClassVar[int]
    STOCK_LEFT_FIELD_NUMBER: _ClassVar[int]
    VALUE_FEN_FIELD_NUMBER: _ClassVar[int]
    VALID_DAYS_FIELD_NUMBER: _ClassVar[int]
    prize_id: str
    title: str
    weight: int
    stock: int
    stock_left: int
    value_fen: int
    valid_days: int
    def __init__(self, prize_id: _Optional[str] = ..., title: _Optional[str] = ..., weight: _Optional[int] = ..., stock: _Optional[int] = ..., stock_left: _Optional[int] = ..., value_fen: _Optional[int] = ..., valid_days: _Optional[int] = ...) -> None: ...

class Lottery(_message.Message):
    __slots__ = ("lottery_id", "title", "price_points", "total_weight", "prizes", "budget_fen", "awarded_fen", "commitment", "seed", "opens_at", "closes_at", "recipe")
    LOTTERY_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    PRICE_POINTS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    PRIZES_FIELD_NUMBER: _ClassVar[int]
    BUDGET_FEN_FIELD_NUMBER: _ClassVar[int]
    AWARDED_FEN_FIELD_NUMBER: _ClassVar[int]
    COMMITMENT_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    OPENS_AT_FIELD_NUMBER: _ClassVar[int]
    CLOSES_AT_FIELD_NUMBER: _ClassVar[int]
    RECIPE_FIELD_NUMBER: _ClassVar[int]
    lottery_id: str
    title: str
    price_points: int
    total_weight: int
    prizes: _containers.RepeatedCompositeFieldContainer[Prize]
    budget_fen: int
    awarded_fen: int
    commitment: str
    seed: str
    opens_at: _timestamp_pb2.Timestamp
    closes_at: _timestamp_pb2.Timestamp
    recipe: str
    def __init__(self, lottery_id: _Optional[str] = ..., title: _Optional[str] = ..., price_points: _Optional[int] = ..., total_weight: _Optional[int] = ..., prizes: _Optional[_Iterable[_Union[Prize, _Mapping]]] = ..., budget_fen: _Optional[int] = ..., awarded_fen: _Optional[int] = ..., commitment: _Optional[str] = ..., seed: _Optional[str] = ..., opens_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., closes_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., recipe: _Optional[str] = ...) -> None: ...

class CreateLotteryRequest(_message.Message):
    __slots__ = ("request_id", "lottery")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    LOTTERY_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    lottery: Lottery
    def __init__(self, request_id: _Optional[str] = ..., lottery: _Optional[_Union[Lottery, _Mapping]] = ...) -> None: ...

class CreateLotteryResponse(_message.Message):
    __slots__ = ("lottery",)
    LOTTERY_FIELD_NUMBER: _ClassVar[int]
    lottery: Lottery
    def __init__(self, lottery: _Optional[_Union[Lottery, _Mapping]] = ...) -> None: ...

class RevealLotteryRequest(_message.Message):
    __slots__ = ("request_id", "lottery_id", "seed")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    LOTTERY_ID_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    lottery_id: str
    seed: str
    def __init__(self, request_id: _Optional[str] = ..., lottery_id: _Optional[str] = ..., seed: _Optional[str] = ...) -> None: ...

class RevealLotteryResponse(_message.Message):
    __slots__ = ("lottery",)
    LOTTERY_FIELD_NUMBER: _ClassVar[int]
    lottery: Lottery
    def __init__(self, lottery: _Optional[_Union[Lottery, _Mapping]] = ...) -> None: ...

class GetMallReportRequest(_message.Message):
    __slots__ = ("start", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    def __init__(self, start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ItemReportLine(_message.Message):
    __slots__ = ("item_id", "sold", "points_taken", "cash_taken_fen", "stock_left")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    SOLD_FIELD_NUMBER: _ClassVar[int]
    POINTS_TAKEN_FIELD_NUMBER: _ClassVar[int]
    CASH_TAKEN_FEN_FIELD_NUMBER: _ClassVar[int]
    STOCK_LEFT_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    sold: int
    points_taken: int
    cash_taken_fen: int
    stock_left: int
    def __init__(self, item_id: _Optional[str] = ..., sold: _Optional[int] = ..., points_taken: _Optional[int] = ..., cash_taken_fen: _Optional[int] = ..., stock_left: _Optional[int] = ...) -> None: ...

class GetMallReportResponse(_message.Message):
    __slots__ = ("merchant_id", "items", "points_taken", "cash_taken_fen", "coupons_issued", "coupons_redeemed", "coupons_expired", "coupon_liability_fen", "lottery_points_taken", "cross_shop_orders", "cross_shop_value_fen")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    POINTS_TAKEN_FIELD_NUMBER: _ClassVar[int]
    CASH_TAKEN_FEN_FIELD_NUMBER: _ClassVar[int]
    COUPONS_ISSUED_FIELD_NUMBER: _ClassVar[int]
    COUPONS_REDEEMED_FIELD_NUMBER: _ClassVar[int]
    COUPONS_EXPIRED_FIELD_NUMBER: _ClassVar[int]
    COUPON_LIABILITY_FEN_FIELD_NUMBER: _ClassVar[int]
    LOTTERY_POINTS_TAKEN_FIELD_NUMBER: _ClassVar[int]
    CROSS_SHOP_ORDERS_FIELD_NUMBER: _ClassVar[int]
    CROSS_SHOP_VALUE_FEN_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    items: _containers.RepeatedCompositeFieldContainer[ItemReportLine]
    points_taken: int
    cash_taken_fen: int
    coupons_issued: int
    coupons_redeemed: int
    coupons_expired: int
    coupon_liability_fen: int
    lottery_points_taken: int
    cross_shop_orders: int
    cross_shop_value_fen: int
    def __init__(self, merchant_id: _Optional[str] = ..., items: _Optional[_Iterable[_Union[ItemReportLine, _Mapping]]] = ..., points_taken: _Optional[int] = ..., cash_taken_fen: _Optional[int] = ..., coupons_issued: _Optional[int] = ..., coupons_redeemed: _Optional[int] = ..., coupons_expired: _Optional[int] = ..., coupon_liability_fen: _Optional[int] = ..., lottery_points_taken: _Optional[int] = ..., cross_shop_orders: _Optional[int] = ..., cross_shop_value_fen: _Optional[int] = ...) -> None: ...

class BrowseItemsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class BrowseItemsResponse(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[Item]
    def __init__(self, items: _Optional[_Iterable[_Union[Item, _Mapping]]] = ...) -> None: ...

class BuyItemRequest(_message.Message):
    __slots__ = ("request_id", "item_id", "quantity", "issuer_id", "consent_code", "consent_max_points")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    ISSUER_ID_FIELD_NUMBER: _ClassVar[int]
    CONSENT_CODE_FIELD_NUMBER: _ClassVar[int]
    CONSENT_MAX_POINTS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    item_id: str
    quantity: int
    issuer_id: str
    consent_code: str
    consent_max_points: int
    def __init__(self, request_id: _Optional[str] = ..., item_id: _Optional[str] = ..., quantity: _Optional[int] = ..., issuer_id: _Optional[str] = ..., consent_code: _Optional[str] = ..., consent_max_points: _Optional[int] = ...) -> None: ...

class BuyItemResponse(_message.Message):
    __slots__ = ("order",)
    ORDER_FIELD_NUMBER: _ClassVar[int]
    order: Order
    def __init__(self, order: _Optional[_Union[Order, _Mapping]] = ...) -> None: ...

class CancelOrderRequest(_message.Message):
    __slots__ = ("request_id", "order_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    order_id: str
    def __init__(self, request_id: _Optional[str] = ..., order_id: _Optional[str] = ...) -> None: ...

class CancelOrderResponse(_message.Message):
    __slots__ = ("order",)
    ORDER_FIELD_NUMBER: _ClassVar[int]
    order: Order
    def __init__(self, order: _Optional[_Union[Order, _Mapping]] = ...) -> None: ...

class ListMyOrdersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListMyOrdersResponse(_message.Message):
    __slots__ = ("orders",)
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    orders: _containers.RepeatedCompositeFieldContainer[Order]
    def __init__(self, orders: _Optional[_Iterable[_Union[Order, _Mapping]]] = ...) -> None: ...

class Coupon(_message.Message):
    __slots__ = ("code", "item_id", "order_id", "value_fen", "status", "issued_at", "expires_at", "redeemed_at", "draw_id", "min_spend_fen")
    CODE_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    VALUE_FEN_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    REDEEMED_AT_FIELD_NUMBER: _ClassVar[int]
    DRAW_ID_FIELD_NUMBER: _ClassVar[int]
    MIN_SPEND_FEN_FIELD_NUMBER: _ClassVar[int]
    code: str
    item_id: str
    order_id: str
    value_fen: int
    status: CouponStatus
    issued_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    redeemed_at: _timestamp_pb2.Timestamp
    draw_id: str
    min_spend_fen: int
    def __init__(self, code: _Optional[str] = ..., item_id: _Optional[str] = ..., order_id: _Optional[str] = ..., value_fen: _Optional[int] = ..., status: _Optional[_Union[CouponStatus, str]] = ..., issued_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., redeemed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., draw_id: _Optional[str] = ..., min_spend_fen: _Optional[int] = ...) -> None: ...

class ListMyCouponsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListMyCouponsResponse(_message.Message):
    __slots__ = ("coupons",)
    COUPONS_FIELD_NUMBER: _ClassVar[int]
    coupons: _containers.RepeatedCompositeFieldContainer[Coupon]
    def __init__(self, coupons: _Optional[_Iterable[_Union[Coupon, _Mapping]]] = ...) -> None: ...

class GetMyBalanceRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetMyBalanceResponse(_message.Message):
    __slots__ = ("member_id", "available_points", "held_points")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_POINTS_FIELD_NUMBER: _ClassVar[int]
    HELD_POINTS_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    available_points: int
    held_points: int
    def __init__(self, member_id: _Optional[str] = ..., available_points: _Optional[int] = ..., held_points: _Optional[int] = ...) -> None: ...

class DrawRequest(_message.Message):
    __slots__ = ("request_id", "lottery_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    LOTTERY_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    lottery_id: str
    def __init__(self, request_id: _Optional[str] = ..., lottery_id: _Optional[str] = ...) -> None: ...

class DrawResponse(_message.Message):
    __slots__ = ("draw_id", "roll", "drawn_prize_id", "awarded", "coupon_code", "points_spent")
    DRAW_ID_FIELD_NUMBER: _ClassVar[int]
    ROLL_FIELD_NUMBER: _ClassVar[int]
    DRAWN_PRIZE_ID_FIELD_NUMBER: _ClassVar[int]
    AWARDED_FIELD_NUMBER: _ClassVar[int]
    COUPON_CODE_FIELD_NUMBER: _ClassVar[int]
    POINTS_SPENT_FIELD_NUMBER: _ClassVar[int]
    draw_id: str
    roll: int
    drawn_prize_id: str
    awarded: bool
    coupon_code: str
    points_spent: int
    def __init__(self, draw_id: _Optional[str] = ..., roll: _Optional[int] = ..., drawn_prize_id: _Optional[str] = ..., awarded: _Optional[bool] = ..., coupon_code: _Optional[str] = ..., points_spent: _Optional[int] = ...) -> None: ...

class GetLotteryRequest(_message.Message):
    __slots__ = ("lottery_id",)
    LOTTERY_ID_FIELD_NUMBER: _ClassVar[int]
    lottery_id: str
    def __init__(self, lottery_id: _Optional[str] = ...) -> None: ...

class GetLotteryResponse(_message.Message):
    __slots__ = ("lottery",)
    LOTTERY_FIELD_NUMBER: _ClassVar[int]
    lottery: Lottery
    def __init__(self, lottery: _Optional[_Union[Lottery, _Mapping]] = ...) -> None: ...

class ConfirmPaymentRequest(_message.Message):
    __slots__ = ("request_id", "order_id", "payment_ref", "amount_fen")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_REF_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FEN_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    order_id: str
    payment_ref: str
    amount_fen: int
    def __init__(self, request_id: _Optional[str] = ..., order_id: _Optional[str] = ..., payment_ref: _Optional[str] = ..., amount_fen: _Optional[int] = ...) -> None: ...

class ConfirmPaymentResponse(_message.Message):
    __slots__ = ("order",)
    ORDER_FIELD_NUMBER: _ClassVar[int]
    order: Order
    def __init__(self, order: _Optional[_Union[Order, _Mapping]] = ...) -> None: ...

class RedeemCouponRequest(_message.Message):
    __slots__ = ("request_id", "code", "till_id", "order_amount_fen")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    TILL_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_AMOUNT_FEN_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    code: str
    till_id: str
    order_amount_fen: int
    def __init__(self, request_id: _Optional[str] = ..., code: _Optional[str] = ..., till_id: _Optional[str] = ..., order_amount_fen: _Optional[int] = ...) -> None: ...

class RedeemCouponResponse(_message.Message):
    __slots__ = ("coupon",)
    COUPON_FIELD_NUMBER: _ClassVar[int]
    coupon: Coupon
    def __init__(self, coupon: _Optional[_Union[Coupon, _Mapping]] = ...) -> None: ...
