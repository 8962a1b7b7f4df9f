import datetime

from coalition.envelope.v1 import envelope_pb2 as _envelope_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class HoldStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HOLD_STATUS_UNSPECIFIED: _ClassVar[HoldStatus]
    HOLD_STATUS_PENDING: _ClassVar[HoldStatus]
    HOLD_STATUS_POSTED: _ClassVar[HoldStatus]
    HOLD_STATUS_VOIDED: _ClassVar[HoldStatus]
    HOLD_STATUS_EXPIRED: _ClassVar[HoldStatus]

class StatementSide(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATEMENT_SIDE_UNSPECIFIED: _ClassVar[StatementSide]
    STATEMENT_SIDE_ISSUER: _ClassVar[StatementSide]
    STATEMENT_SIDE_ACQUIRER: _ClassVar[StatementSide]
HOLD_STATUS_UNSPECIFIED: HoldStatus
HOLD_STATUS_PENDING: HoldStatus
HOLD_STATUS_POSTED: HoldStatus
HOLD_STATUS_VOIDED: HoldStatus
HOLD_STATUS_EXPIRED: HoldStatus
STATEMENT_SIDE_UNSPECIFIED: StatementSide
STATEMENT_SIDE_ISSUER: StatementSide
STATEMENT_SIDE_ACQUIRER: StatementSide

class PlaceHoldRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class PlaceHoldResponse(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class PostHoldRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class PostHoldResponse(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class VoidHoldRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class VoidHoldResponse(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class GetMemberBalanceRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class GetMemberBalanceResponse(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class GetStatementRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class GetStatementResponse(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class GetBreakageRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class GetBreakageResponse(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class PlaceHoldCommand(_message.Message):
    __slots__ = ("header", "hold_id", "member_id", "points", "consent_code", "acquirer_id", "ttl_seconds", "consent_max_points", "consent_order_id", "fen_per_point", "rate_version")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    CONSENT_CODE_FIELD_NUMBER: _ClassVar[int]
    ACQUIRER_ID_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CONSENT_MAX_POINTS_FIELD_NUMBER: _ClassVar[int]
    CONSENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    FEN_PER_POINT_FIELD_NUMBER: _ClassVar[int]
    RATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    header: _envelope_pb2.MessageHeader
    hold_id: str
    member_id: str
    points: int
    consent_code: str
    acquirer_id: str
    ttl_seconds: int
    consent_max_points: int
    consent_order_id: str
    fen_per_point: str
    rate_version: int
    def __init__(self, header: _Optional[_Union[_envelope_pb2.MessageHeader, _Mapping]] = ..., hold_id: _Optional[str] = ..., member_id: _Optional[str] = ..., points: _Optional[int] = ..., consent_code: _Optional[str] = ..., acquirer_id: _Optional[str] = ..., ttl_seconds: _Optional[int] = ..., consent_max_points: _Optional[int] = ..., consent_order_id: _Optional[str] = ..., fen_per_point: _Optional[str] = ..., rate_version: _Optional[int] = ...) -> None: ...

class PostHoldCommand(_message.Message):
    __slots__ = ("header", "hold_id", "settlement_period")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    SETTLEMENT_PERIOD_FIELD_NUMBER: _ClassVar[int]
    header: _envelope_pb2.MessageHeader
    hold_id: str
    settlement_period: str
    def __init__(self, header: _Optional[_Union[_envelope_pb2.MessageHeader, _Mapping]] = ..., hold_id: _Optional[str] = ..., settlement_period: _Optional[str] = ...) -> None: ...

class VoidHoldCommand(_message.Message):
    __slots__ = ("header", "hold_id")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    header: _envelope_pb2.MessageHeader
    hold_id: str
    def __init__(self, header: _Optional[_Union[_envelope_pb2.MessageHeader, _Mapping]] = ..., hold_id: _Optional[str] = ...) -> None: ...

class HoldReceipt(_message.Message):
    __slots__ = ("header", "hold_id", "status", "points", "expires_at", "member_id")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    header: _envelope_pb2.MessageHeader
    hold_id: str
    status: HoldStatus
    points: int
    expires_at: _timestamp_pb2.Timestamp
    member_id: str
    def __init__(self, header: _Optional[_Union[_envelope_pb2.MessageHeader, _Mapping]] = ..., hold_id: _Optional[str] = ..., status: _Optional[_Union[HoldStatus, str]] = ..., points: _Optional[int] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., member_id: _Optional[str] = ...) -> None: ...

class MemberBalanceCommand(_message.Message):
    __slots__ = ("header", "member_id", "consent_code", "acquirer_id")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    CONSENT_CODE_FIELD_NUMBER: _ClassVar[int]
    ACQUIRER_ID_FIELD_NUMBER: _ClassVar[int]
    header: _envelope_pb2.MessageHeader
    member_id: str
    consent_code: str
    acquirer_id: str
    def __init__(self, header: _Optional[_Union[_envelope_pb2.MessageHeader, _Mapping]] = ..., member_id: _Optional[str] = ..., consent_code: _Optional[str] = ..., acquirer_id: _Optional[str] = ...) -> None: ...

class MemberBalanceReceipt(_message.Message):
    __slots__ = ("header", "member_id", "available_points", "enrolled")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_POINTS_FIELD_NUMBER: _ClassVar[int]
    ENROLLED_FIELD_NUMBER: _ClassVar[int]
    header: _envelope_pb2.MessageHeader
    member_id: str
    available_points: int
    enrolled: bool
    def __init__(self, header: _Optional[_Union[_envelope_pb2.MessageHeader, _Mapping]] = ..., member_id: _Optional[str] = ..., available_points: _Optional[int] = ..., enrolled: _Optional[bool] = ...) -> None: ...

class StatementCommand(_message.Message):
    __slots__ = ("header", "settlement_period", "side", "after_id", "limit")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    SETTLEMENT_PERIOD_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    AFTER_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    header: _envelope_pb2.MessageHeader
    settlement_period: str
    side: StatementSide
    after_id: str
    limit: int
    def __init__(self, header: _Optional[_Union[_envelope_pb2.MessageHeader, _Mapping]] = ..., settlement_period: _Optional[str] = ..., side: _Optional[_Union[StatementSide, str]] = ..., after_id: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class StatementEntry(_message.Message):
    __slots__ = ("authorization_id", "issuer_id", "points", "value_fen", "fee_fen")
    AUTHORIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    ISSUER_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    VALUE_FEN_FIELD_NUMBER: _ClassVar[int]
    FEE_FEN_FIELD_NUMBER: _ClassVar[int]
    authorization_id: str
    issuer_id: str
    points: int
    value_fen: int
    fee_fen: int
    def __init__(self, authorization_id: _Optional[str] = ..., issuer_id: _Optional[str] = ..., points: _Optional[int] = ..., value_fen: _Optional[int] = ..., fee_fen: _Optional[int] = ...) -> None: ...

class StatementReceipt(_message.Message):
    __slots__ = ("header", "settlement_period", "side", "entries", "next_after_id")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    SETTLEMENT_PERIOD_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_AFTER_ID_FIELD_NUMBER: _ClassVar[int]
    header: _envelope_pb2.MessageHeader
    settlement_period: str
    side: StatementSide
    entries: _containers.RepeatedCompositeFieldContainer[StatementEntry]
    next_after_id: str
    def __init__(self, header: _Optional[_Union[_envelope_pb2.MessageHeader, _Mapping]] = ..., settlement_period: _Optional[str] = ..., side: _Optional[_Union[StatementSide, str]] = ..., entries: _Optional[_Iterable[_Union[StatementEntry, _Mapping]]] = ..., next_after_id: _Optional[str] = ...) -> None: ...

class BreakageCommand(_message.Message):
    __slots__ = ("header", "settlement_period")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    SETTLEMENT_PERIOD_FIELD_NUMBER: _ClassVar[int]
    header: _envelope_pb2.MessageHeader
    settlement_period: str
    def __init__(self, header: _Optional[_Union[_envelope_pb2.MessageHeader, _Mapping]] = ..., settlement_period: _Optional[str] = ...) -> None: ...

class BreakageLine(_message.Message):
    __slots__ = ("rate_version", "points", "value_fen")
    RATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    VALUE_FEN_FIELD_NUMBER: _ClassVar[int]
    rate_version: int
    points: int
    value_fen: int
    def __init__(self, rate_version: _Optional[int] = ..., points: _Optional[int] = ..., value_fen: _Optional[int] = ...) -> None: ...

class BreakageReceipt(_message.Message):
    __slots__ = ("header", "settlement_period", "lines")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    SETTLEMENT_PERIOD_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    header: _envelope_pb2.MessageHeader
    settlement_period: str
    lines: _containers.RepeatedCompositeFieldContainer[BreakageLine]
    def __init__(self, header: _Optional[_Union[_envelope_pb2.MessageHeader, _Mapping]] = ..., settlement_period: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[BreakageLine, _Mapping]]] = ...) -> None: ...
