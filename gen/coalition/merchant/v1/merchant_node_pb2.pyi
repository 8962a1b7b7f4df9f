import datetime

from coalition.merchant.v1 import marketing_pb2 as _marketing_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Channel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANNEL_UNSPECIFIED: _ClassVar[Channel]
    CHANNEL_POS: _ClassVar[Channel]
    CHANNEL_MINI_PROGRAM: _ClassVar[Channel]
    CHANNEL_WEB: _ClassVar[Channel]

class EntryKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENTRY_KIND_UNSPECIFIED: _ClassVar[EntryKind]
    ENTRY_KIND_EARN: _ClassVar[EntryKind]
    ENTRY_KIND_REDEEM: _ClassVar[EntryKind]
    ENTRY_KIND_CLAWBACK: _ClassVar[EntryKind]
    ENTRY_KIND_REDEMPTION_RETURN: _ClassVar[EntryKind]
    ENTRY_KIND_EXPIRE: _ClassVar[EntryKind]
    ENTRY_KIND_HOLD: _ClassVar[EntryKind]
    ENTRY_KIND_HOLD_POST: _ClassVar[EntryKind]
    ENTRY_KIND_HOLD_RELEASE: _ClassVar[EntryKind]
    ENTRY_KIND_REWARD: _ClassVar[EntryKind]

class EngagementKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENGAGEMENT_KIND_UNSPECIFIED: _ClassVar[EngagementKind]
    ENGAGEMENT_KIND_REVIEW: _ClassVar[EngagementKind]
    ENGAGEMENT_KIND_SHARE: _ClassVar[EngagementKind]
CHANNEL_UNSPECIFIED: Channel
CHANNEL_POS: Channel
CHANNEL_MINI_PROGRAM: Channel
CHANNEL_WEB: Channel
ENTRY_KIND_UNSPECIFIED: EntryKind
ENTRY_KIND_EARN: EntryKind
ENTRY_KIND_REDEEM: EntryKind
ENTRY_KIND_CLAWBACK: EntryKind
ENTRY_KIND_REDEMPTION_RETURN: EntryKind
ENTRY_KIND_EXPIRE: EntryKind
ENTRY_KIND_HOLD: EntryKind
ENTRY_KIND_HOLD_POST: EntryKind
ENTRY_KIND_HOLD_RELEASE: EntryKind
ENTRY_KIND_REWARD: EntryKind
ENGAGEMENT_KIND_UNSPECIFIED: EngagementKind
ENGAGEMENT_KIND_REVIEW: EngagementKind
ENGAGEMENT_KIND_SHARE: EngagementKind

class Member(_message.Message):
    __slots__ = ("member_id", "referral_code", "referred_by_code", "enrolled_at")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    REFERRAL_CODE_FIELD_NUMBER: _ClassVar[int]
    REFERRED_BY_CODE_FIELD_NUMBER: _ClassVar[int]
    ENROLLED_AT_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    referral_code: str
    referred_by_code: str
    enrolled_at: _timestamp_pb2.Timestamp
    def __init__(self, member_id: _Optional[str] = ..., referral_code: _Optional[str] = ..., referred_by_code: _Optional[str] = ..., enrolled_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class EnrollMemberRequest(_message.Message):
    __slots__ = ("request_id", "member_id", "phone", "display_name", "referral_code", "birth_month")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    PHONE_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    REFERRAL_CODE_FIELD_NUMBER: _ClassVar[int]
    BIRTH_MONTH_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    member_id: str
    phone: str
    display_name: str
    referral_code: str
    birth_month: int
    def __init__(self, request_id: _Optional[str] = ..., member_id: _Optional[str] = ..., phone: _Optional[str] = ..., display_name: _Optional[str] = ..., referral_code: _Optional[str] = ..., birth_month: _Optional[int] = ...) -> None: ...

class EnrollMemberResponse(_message.Message):
    __slots__ = ("member", "wallet_secret", "wallet_uri")
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    WALLET_SECRET_FIELD_NUMBER: _ClassVar[int]
    WALLET_URI_FIELD_NUMBER: _ClassVar[int]
    member: Member
    wallet_secret: str
    wallet_uri: str
    def __init__(self, member: _Optional[_Union[Member, _Mapping]] = ..., wallet_secret: _Optional[str] = ..., wallet_uri: _Optional[str] = ...) -> None: ...

class LineItem(_message.Message):
    __slots__ = ("sku", "category", "quantity", "unit_price_fen")
    SKU_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    UNIT_PRICE_FEN_FIELD_NUMBER: _ClassVar[int]
    sku: str
    category: str
    quantity: int
    unit_price_fen: int
    def __init__(self, sku: _Optional[str] = ..., category: _Optional[str] = ..., quantity: _Optional[int] = ..., unit_price_fen: _Optional[int] = ...) -> None: ...

class EarnRequest(_message.Message):
    __slots__ = ("request_id", "member_id", "order_id", "amount_fen", "line_items", "channel", "occurred_at", "points_paid_fen")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FEN_FIELD_NUMBER: _ClassVar[int]
    LINE_ITEMS_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    POINTS_PAID_FEN_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    member_id: str
    order_id: str
    amount_fen: int
    line_items: _containers.RepeatedCompositeFieldContainer[LineItem]
    channel: Channel
    occurred_at: _timestamp_pb2.Timestamp
    points_paid_fen: int
    def __init__(self, request_id: _Optional[str] = ..., member_id: _Optional[str] = ..., order_id: _Optional[str] = ..., amount_fen: _Optional[int] = ..., line_items: _Optional[_Iterable[_Union[LineItem, _Mapping]]] = ..., channel: _Optional[_Union[Channel, str]] = ..., occurred_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., points_paid_fen: _Optional[int] = ...) -> None: ...

class EarnBreakdownLine(_message.Message):
    __slots__ = ("rule_id", "description", "points")
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    rule_id: str
    description: str
    points: int
    def __init__(self, rule_id: _Optional[str] = ..., description: _Optional[str] = ..., points: _Optional[int] = ...) -> None: ...

class EarnResponse(_message.Message):
    __slots__ = ("points_earned", "breakdown", "points_applied_to_debt", "expires_at", "rate_version", "available_points", "available_from", "rule_version")
    POINTS_EARNED_FIELD_NUMBER: _ClassVar[int]
    BREAKDOWN_FIELD_NUMBER: _ClassVar[int]
    POINTS_APPLIED_TO_DEBT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    RATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_POINTS_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FROM_FIELD_NUMBER: _ClassVar[int]
    RULE_VERSION_FIELD_NUMBER: _ClassVar[int]
    points_earned: int
    breakdown: _containers.RepeatedCompositeFieldContainer[EarnBreakdownLine]
    points_applied_to_debt: int
    expires_at: _timestamp_pb2.Timestamp
    rate_version: int
    available_points: int
    available_from: _timestamp_pb2.Timestamp
    rule_version: str
    def __init__(self, points_earned: _Optional[int] = ..., breakdown: _Optional[_Iterable[_Union[EarnBreakdownLine, _Mapping]]] = ..., points_applied_to_debt: _Optional[int] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rate_version: _Optional[int] = ..., available_points: _Optional[int] = ..., available_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rule_version: _Optional[str] = ...) -> None: ...

class RedeemRequest(_message.Message):
    __slots__ = ("request_id", "member_id", "order_id", "points", "amount_fen")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FEN_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    member_id: str
    order_id: str
    points: int
    amount_fen: int
    def __init__(self, request_id: _Optional[str] = ..., member_id: _Optional[str] = ..., order_id: _Optional[str] = ..., points: _Optional[int] = ..., amount_fen: _Optional[int] = ...) -> None: ...

class RedeemResponse(_message.Message):
    __slots__ = ("redemption_id", "points_redeemed", "value_fen", "available_points", "rate_version")
    REDEMPTION_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_REDEEMED_FIELD_NUMBER: _ClassVar[int]
    VALUE_FEN_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_POINTS_FIELD_NUMBER: _ClassVar[int]
    RATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    redemption_id: str
    points_redeemed: int
    value_fen: int
    available_points: int
    rate_version: int
    def __init__(self, redemption_id: _Optional[str] = ..., points_redeemed: _Optional[int] = ..., value_fen: _Optional[int] = ..., available_points: _Optional[int] = ..., rate_version: _Optional[int] = ...) -> None: ...

class RefundRequest(_message.Message):
    __slots__ = ("request_id", "order_id", "full", "partial")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    FULL_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    order_id: str
    full: bool
    partial: PartialRefund
    def __init__(self, request_id: _Optional[str] = ..., order_id: _Optional[str] = ..., full: _Optional[bool] = ..., partial: _Optional[_Union[PartialRefund, _Mapping]] = ...) -> None: ...

class PartialRefund(_message.Message):
    __slots__ = ("amount_fen", "points")
    AMOUNT_FEN_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    amount_fen: int
    points: int
    def __init__(self, amount_fen: _Optional[int] = ..., points: _Optional[int] = ...) -> None: ...

class RefundResponse(_message.Message):
    __slots__ = ("points_clawed_back", "points_added_to_debt", "points_returned", "available_points", "debt_points")
    POINTS_CLAWED_BACK_FIELD_NUMBER: _ClassVar[int]
    POINTS_ADDED_TO_DEBT_FIELD_NUMBER: _ClassVar[int]
    POINTS_RETURNED_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_POINTS_FIELD_NUMBER: _ClassVar[int]
    DEBT_POINTS_FIELD_NUMBER: _ClassVar[int]
    points_clawed_back: int
    points_added_to_debt: int
    points_returned: int
    available_points: int
    debt_points: int
    def __init__(self, points_clawed_back: _Optional[int] = ..., points_added_to_debt: _Optional[int] = ..., points_returned: _Optional[int] = ..., available_points: _Optional[int] = ..., debt_points: _Optional[int] = ...) -> None: ...

class GetBalanceRequest(_message.Message):
    __slots__ = ("member_id", "expiring_within_days")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    EXPIRING_WITHIN_DAYS_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    expiring_within_days: int
    def __init__(self, member_id: _Optional[str] = ..., expiring_within_days: _Optional[int] = ...) -> None: ...

class GetBalanceResponse(_message.Message):
    __slots__ = ("available_points", "held_points", "expiring_points", "expiring_before", "lifetime_earned_points", "debt_points", "available_value_fen", "pending_points")
    AVAILABLE_POINTS_FIELD_NUMBER: _ClassVar[int]
    HELD_POINTS_FIELD_NUMBER: _ClassVar[int]
    EXPIRING_POINTS_FIELD_NUMBER: _ClassVar[int]
    EXPIRING_BEFORE_FIELD_NUMBER: _ClassVar[int]
    LIFETIME_EARNED_POINTS_FIELD_NUMBER: _ClassVar[int]
    DEBT_POINTS_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_VALUE_FEN_FIELD_NUMBER: _ClassVar[int]
    PENDING_POINTS_FIELD_NUMBER: _ClassVar[int]
    available_points: int
    held_points: int
    expiring_points: int
    expiring_before: _timestamp_pb2.Timestamp
    lifetime_earned_points: int
    debt_points: int
    available_value_fen: int
    pending_points: int
    def __init__(self, available_points: _Optional[int] = ..., held_points: _Optional[int] = ..., expiring_points: _Optional[int] = ..., expiring_before: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., lifetime_earned_points: _Optional[int] = ..., debt_points: _Optional[int] = ..., available_value_fen: _Optional[int] = ..., pending_points: _Optional[int] = ...) -> None: ...

class ListHistoryRequest(_message.Message):
    __slots__ = ("member_id", "page_size", "page_token")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    page_size: int
    page_token: str
    def __init__(self, member_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class HistoryEntry(_message.Message):
    __slots__ = ("entry_id", "kind", "available_delta", "held_delta", "debt_delta", "order_id", "created_at", "rate_version", "rule_version")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_DELTA_FIELD_NUMBER: _ClassVar[int]
    HELD_DELTA_FIELD_NUMBER: _ClassVar[int]
    DEBT_DELTA_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    RATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    RULE_VERSION_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    kind: EntryKind
    available_delta: int
    held_delta: int
    debt_delta: int
    order_id: str
    created_at: _timestamp_pb2.Timestamp
    rate_version: int
    rule_version: str
    def __init__(self, entry_id: _Optional[str] = ..., kind: _Optional[_Union[EntryKind, str]] = ..., available_delta: _Optional[int] = ..., held_delta: _Optional[int] = ..., debt_delta: _Optional[int] = ..., order_id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rate_version: _Optional[int] = ..., rule_version: _Optional[str] = ...) -> None: ...

class ListHistoryResponse(_message.Message):
    __slots__ = ("entries", "next_page_token")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[HistoryEntry]
    next_page_token: str
    def __init__(self, entries: _Optional[_Iterable[_Union[HistoryEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class QuoteCrossRedemptionRequest(_message.Message):
    __slots__ = ("issuer_id", "points", "amount_fen")
    ISSUER_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FEN_FIELD_NUMBER: _ClassVar[int]
    issuer_id: str
    points: int
    amount_fen: int
    def __init__(self, issuer_id: _Optional[str] = ..., points: _Optional[int] = ..., amount_fen: _Optional[int] = ...) -> None: ...

class QuoteCrossRedemptionResponse(_message.Message):
    __slots__ = ("quote_id", "points", "value_fen", "fee_fen", "rate_version", "expires_at")
    QUOTE_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    VALUE_FEN_FIELD_NUMBER: _ClassVar[int]
    FEE_FEN_FIELD_NUMBER: _ClassVar[int]
    RATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    quote_id: str
    points: int
    value_fen: int
    fee_fen: int
    rate_version: int
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, quote_id: _Optional[str] = ..., points: _Optional[int] = ..., value_fen: _Optional[int] = ..., fee_fen: _Optional[int] = ..., rate_version: _Optional[int] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AuthorizeCrossRedemptionRequest(_message.Message):
    __slots__ = ("request_id", "issuer_id", "member_id", "order_id", "points", "amount_fen", "consent_code", "quote_id", "consent_max_points", "consent_order_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ISSUER_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FEN_FIELD_NUMBER: _ClassVar[int]
    CONSENT_CODE_FIELD_NUMBER: _ClassVar[int]
    QUOTE_ID_FIELD_NUMBER: _ClassVar[int]
    CONSENT_MAX_POINTS_FIELD_NUMBER: _ClassVar[int]
    CONSENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    issuer_id: str
    member_id: str
    order_id: str
    points: int
    amount_fen: int
    consent_code: str
    quote_id: str
    consent_max_points: int
    consent_order_id: str
    def __init__(self, request_id: _Optional[str] = ..., issuer_id: _Optional[str] = ..., member_id: _Optional[str] = ..., order_id: _Optional[str] = ..., points: _Optional[int] = ..., amount_fen: _Optional[int] = ..., consent_code: _Optional[str] = ..., quote_id: _Optional[str] = ..., consent_max_points: _Optional[int] = ..., consent_order_id: _Optional[str] = ...) -> None: ...

class AuthorizeCrossRedemptionResponse(_message.Message):
    __slots__ = ("authorization_id", "points", "value_fen", "fee_fen", "hold_expires_at")
    AUTHORIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    VALUE_FEN_FIELD_NUMBER: _ClassVar[int]
    FEE_FEN_FIELD_NUMBER: _ClassVar[int]
    HOLD_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    authorization_id: str
    points: int
    value_fen: int
    fee_fen: int
    hold_expires_at: _timestamp_pb2.Timestamp
    def __init__(self, authorization_id: _Optional[str] = ..., points: _Optional[int] = ..., value_fen: _Optional[int] = ..., fee_fen: _Optional[int] = ..., hold_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CaptureCrossRedemptionRequest(_message.Message):
    __slots__ = ("request_id", "authorization_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    AUTHORIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    authorization_id: str
    def __init__(self, request_id: _Optional[str] = ..., authorization_id: _Optional[str] = ...) -> None: ...

class CaptureCrossRedemptionResponse(_message.Message):
    __slots__ = ("clearing_id", "issuer_id", "points", "value_fen", "fee_fen", "settlement_period")
    CLEARING_ID_FIELD_NUMBER: _ClassVar[int]
    ISSUER_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    VALUE_FEN_FIELD_NUMBER: _ClassVar[int]
    FEE_FEN_FIELD_NUMBER: _ClassVar[int]
    SETTLEMENT_PERIOD_FIELD_NUMBER: _ClassVar[int]
    clearing_id: str
    issuer_id: str
    points: int
    value_fen: int
    fee_fen: int
    settlement_period: str
    def __init__(self, clearing_id: _Optional[str] = ..., issuer_id: _Optional[str] = ..., points: _Optional[int] = ..., value_fen: _Optional[int] = ..., fee_fen: _Optional[int] = ..., settlement_period: _Optional[str] = ...) -> None: ...

class VoidCrossRedemptionRequest(_message.Message):
    __slots__ = ("request_id", "authorization_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    AUTHORIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    authorization_id: str
    def __init__(self, request_id: _Optional[str] = ..., authorization_id: _Optional[str] = ...) -> None: ...

class VoidCrossRedemptionResponse(_message.Message):
    __slots__ = ("authorization_id", "voided")
    AUTHORIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    VOIDED_FIELD_NUMBER: _ClassVar[int]
    authorization_id: str
    voided: bool
    def __init__(self, authorization_id: _Optional[str] = ..., voided: _Optional[bool] = ...) -> None: ...

class GetPortfolioRequest(_message.Message):
    __slots__ = ("member_id", "consents")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    CONSENTS_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    consents: _containers.RepeatedCompositeFieldContainer[PortfolioConsent]
    def __init__(self, member_id: _Optional[str] = ..., consents: _Optional[_Iterable[_Union[PortfolioConsent, _Mapping]]] = ...) -> None: ...

class PortfolioConsent(_message.Message):
    __slots__ = ("issuer_id", "consent_code")
    ISSUER_ID_FIELD_NUMBER: _ClassVar[int]
    CONSENT_CODE_FIELD_NUMBER: _ClassVar[int]
    issuer_id: str
    consent_code: str
    def __init__(self, issuer_id: _Optional[str] = ..., consent_code: _Optional[str] = ...) -> None: ...

class PortfolioLine(_message.Message):
    __slots__ = ("issuer_id", "display_name", "available_points", "value_fen", "reachable", "consent_refused")
    ISSUER_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_POINTS_FIELD_NUMBER: _ClassVar[int]
    VALUE_FEN_FIELD_NUMBER: _ClassVar[int]
    REACHABLE_FIELD_NUMBER: _ClassVar[int]
    CONSENT_REFUSED_FIELD_NUMBER: _ClassVar[int]
    issuer_id: str
    display_name: str
    available_points: int
    value_fen: int
    reachable: bool
    consent_refused: bool
    def __init__(self, issuer_id: _Optional[str] = ..., display_name: _Optional[str] = ..., available_points: _Optional[int] = ..., value_fen: _Optional[int] = ..., reachable: _Optional[bool] = ..., consent_refused: _Optional[bool] = ...) -> None: ...

class GetPortfolioResponse(_message.Message):
    __slots__ = ("lines", "total_value_fen")
    LINES_FIELD_NUMBER: _ClassVar[int]
    TOTAL_VALUE_FEN_FIELD_NUMBER: _ClassVar[int]
    lines: _containers.RepeatedCompositeFieldContainer[PortfolioLine]
    total_value_fen: int
    def __init__(self, lines: _Optional[_Iterable[_Union[PortfolioLine, _Mapping]]] = ..., total_value_fen: _Optional[int] = ...) -> None: ...

class CheckInRequest(_message.Message):
    __slots__ = ("request_id", "member_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    member_id: str
    def __init__(self, request_id: _Optional[str] = ..., member_id: _Optional[str] = ...) -> None: ...

class CheckInResponse(_message.Message):
    __slots__ = ("points_awarded", "streak_days", "breakdown")
    POINTS_AWARDED_FIELD_NUMBER: _ClassVar[int]
    STREAK_DAYS_FIELD_NUMBER: _ClassVar[int]
    BREAKDOWN_FIELD_NUMBER: _ClassVar[int]
    points_awarded: int
    streak_days: int
    breakdown: _containers.RepeatedCompositeFieldContainer[EarnBreakdownLine]
    def __init__(self, points_awarded: _Optional[int] = ..., streak_days: _Optional[int] = ..., breakdown: _Optional[_Iterable[_Union[EarnBreakdownLine, _Mapping]]] = ...) -> None: ...

class RecordEngagementRequest(_message.Message):
    __slots__ = ("request_id", "member_id", "kind", "reference")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    member_id: str
    kind: EngagementKind
    reference: str
    def __init__(self, request_id: _Optional[str] = ..., member_id: _Optional[str] = ..., kind: _Optional[_Union[EngagementKind, str]] = ..., reference: _Optional[str] = ...) -> None: ...

class RecordEngagementResponse(_message.Message):
    __slots__ = ("points_awarded", "count_today")
    POINTS_AWARDED_FIELD_NUMBER: _ClassVar[int]
    COUNT_TODAY_FIELD_NUMBER: _ClassVar[int]
    points_awarded: int
    count_today: int
    def __init__(self, points_awarded: _Optional[int] = ..., count_today: _Optional[int] = ...) -> None: ...

class GetMemberProfileRequest(_message.Message):
    __slots__ = ("member_id",)
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    def __init__(self, member_id: _Optional[str] = ...) -> None: ...

class GetMemberProfileResponse(_message.Message):
    __slots__ = ("member", "tier", "next_tier", "measure", "measure_value", "next_threshold", "grace_until", "pending_points", "facts", "facts_as_of", "segment", "tags", "churn_cause")
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    NEXT_TIER_FIELD_NUMBER: _ClassVar[int]
    MEASURE_FIELD_NUMBER: _ClassVar[int]
    MEASURE_VALUE_FIELD_NUMBER: _ClassVar[int]
    NEXT_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    GRACE_UNTIL_FIELD_NUMBER: _ClassVar[int]
    PENDING_POINTS_FIELD_NUMBER: _ClassVar[int]
    FACTS_FIELD_NUMBER: _ClassVar[int]
    FACTS_AS_OF_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    CHURN_CAUSE_FIELD_NUMBER: _ClassVar[int]
    member: Member
    tier: str
    next_tier: str
    measure: str
    measure_value: int
    next_threshold: int
    grace_until: _timestamp_pb2.Timestamp
    pending_points: int
    facts: _marketing_pb2.MemberFacts
    facts_as_of: _timestamp_pb2.Timestamp
    segment: _marketing_pb2.Label
    tags: _containers.RepeatedCompositeFieldContainer[_marketing_pb2.Label]
    churn_cause: _marketing_pb2.Label
    def __init__(self, member: _Optional[_Union[Member, _Mapping]] = ..., tier: _Optional[str] = ..., next_tier: _Optional[str] = ..., measure: _Optional[str] = ..., measure_value: _Optional[int] = ..., next_threshold: _Optional[int] = ..., grace_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., pending_points: _Optional[int] = ..., facts: _Optional[_Union[_marketing_pb2.MemberFacts, _Mapping]] = ..., facts_as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., segment: _Optional[_Union[_marketing_pb2.Label, _Mapping]] = ..., tags: _Optional[_Iterable[_Union[_marketing_pb2.Label, _Mapping]]] = ..., churn_cause: _Optional[_Union[_marketing_pb2.Label, _Mapping]] = ...) -> None: ...

class UpgradeTierRequest(_message.Message):
    __slots__ = ("request_id", "member_id", "target_tier")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    TARGET_TIER_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    member_id: str
    target_tier: str
    def __init__(self, request_id: _Optional[str] = ..., member_id: _Optional[str] = ..., target_tier: _Optional[str] = ...) -> None: ...

class UpgradeTierResponse(_message.Message):
    __slots__ = ("tier", "points_spent", "available_points")
    TIER_FIELD_NUMBER: _ClassVar[int]
    POINTS_SPENT_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_POINTS_FIELD_NUMBER: _ClassVar[int]
    tier: str
    points_spent: int
    available_points: int
    def __init__(self, tier: _Optional[str] = ..., points_spent: _Optional[int] = ..., available_points: _Optional[int] = ...) -> None: ...
