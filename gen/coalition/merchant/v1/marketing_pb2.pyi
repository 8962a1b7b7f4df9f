import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DefinitionsKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEFINITIONS_KIND_UNSPECIFIED: _ClassVar[DefinitionsKind]
    DEFINITIONS_KIND_SEGMENTS: _ClassVar[DefinitionsKind]
    DEFINITIONS_KIND_TRIGGERS: _ClassVar[DefinitionsKind]
DEFINITIONS_KIND_UNSPECIFIED: DefinitionsKind
DEFINITIONS_KIND_SEGMENTS: DefinitionsKind
DEFINITIONS_KIND_TRIGGERS: DefinitionsKind

class ValidateDefinitionsRequest(_message.Message):
    __slots__ = ("kind", "document")
    KIND_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    kind: DefinitionsKind
    document: str
    def __init__(self, kind: _Optional[_Union[DefinitionsKind, str]] = ..., document: _Optional[str] = ...) -> None: ...

class ValidateDefinitionsResponse(_message.Message):
    __slots__ = ("valid", "errors", "canonical")
    VALID_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    CANONICAL_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    errors: _containers.RepeatedScalarFieldContainer[str]
    canonical: str
    def __init__(self, valid: _Optional[bool] = ..., errors: _Optional[_Iterable[str]] = ..., canonical: _Optional[str] = ...) -> None: ...

class DefinitionsVersion(_message.Message):
    __slots__ = ("kind", "version", "document", "digest", "applied_at", "applied_by")
    KIND_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    APPLIED_AT_FIELD_NUMBER: _ClassVar[int]
    APPLIED_BY_FIELD_NUMBER: _ClassVar[int]
    kind: DefinitionsKind
    version: int
    document: str
    digest: str
    applied_at: _timestamp_pb2.Timestamp
    applied_by: str
    def __init__(self, kind: _Optional[_Union[DefinitionsKind, str]] = ..., version: _Optional[int] = ..., document: _Optional[str] = ..., digest: _Optional[str] = ..., applied_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., applied_by: _Optional[str] = ...) -> None: ...

class ApplyDefinitionsRequest(_message.Message):
    __slots__ = ("kind", "document", "applied_by")
    KIND_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    APPLIED_BY_FIELD_NUMBER: _ClassVar[int]
    kind: DefinitionsKind
    document: str
    applied_by: str
    def __init__(self, kind: _Optional[_Union[DefinitionsKind, str]] = ..., document: _Optional[str] = ..., applied_by: _Optional[str] = ...) -> None: ...

class ApplyDefinitionsResponse(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: DefinitionsVersion
    def __init__(self, version: _Optional[_Union[DefinitionsVersion, _Mapping]] = ...) -> None: ...

class ListDefinitionVersionsRequest(_message.Message):
    __slots__ = ("kind",)
    KIND_FIELD_NUMBER: _ClassVar[int]
    kind: DefinitionsKind
    def __init__(self, kind: _Optional[_Union[DefinitionsKind, str]] = ...) -> None: ...

class ListDefinitionVersionsResponse(_message.Message):
    __slots__ = ("versions",)
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[DefinitionsVersion]
    def __init__(self, versions: _Optional[_Iterable[_Union[DefinitionsVersion, _Mapping]]] = ...) -> None: ...

class GetMemberSegmentRequest(_message.Message):
    __slots__ = ("member_id",)
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    def __init__(self, member_id: _Optional[str] = ...) -> None: ...

class MemberFacts(_message.Message):
    __slots__ = ("recency_days", "tenure_days", "orders_30d", "orders_90d", "orders_365d", "orders_total", "spend_30d_fen", "spend_90d_fen", "spend_365d_fen", "spend_total_fen", "avg_order_90d_fen", "avg_order_365d_fen", "points_paid_share_bps", "redemption_rate_bps", "campaign_share_bps", "evening_share_bps", "top_category_recent", "top_category_before", "category_shift", "p_alive_bps", "expected_orders_90d_milli", "expected_order_value_fen", "last_order_at")
    RECENCY_DAYS_FIELD_NUMBER: _ClassVar[int]
    TENURE_DAYS_FIELD_NUMBER: _ClassVar[int]
    ORDERS_30D_FIELD_NUMBER: _ClassVar[int]
    ORDERS_90D_FIELD_NUMBER: _ClassVar[int]
    ORDERS_365D_FIELD_NUMBER: _ClassVar[int]
    ORDERS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    SPEND_30D_FEN_FIELD_NUMBER: _ClassVar[int]
    SPEND_90D_FEN_FIELD_NUMBER: _ClassVar[int]
    SPEND_365D_FEN_FIELD_NUMBER: _ClassVar[int]
    SPEND_TOTAL_FEN_FIELD_NUMBER: _ClassVar[int]
    AVG_ORDER_90D_FEN_FIELD_NUMBER: _ClassVar[int]
    AVG_ORDER_365D_FEN_FIELD_NUMBER: _ClassVar[int]
    POINTS_PAID_SHARE_BPS_FIELD_NUMBER: _ClassVar[int]
    REDEMPTION_RATE_BPS_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_SHARE_BPS_FIELD_NUMBER: _ClassVar[int]
    EVENING_SHARE_BPS_FIELD_NUMBER: _ClassVar[int]
    TOP_CATEGORY_RECENT_FIELD_NUMBER: _ClassVar[int]
    TOP_CATEGORY_BEFORE_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_SHIFT_FIELD_NUMBER: _ClassVar[int]
    P_ALIVE_BPS_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_ORDERS_90D_MILLI_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_ORDER_VALUE_FEN_FIELD_NUMBER: _ClassVar[int]
    LAST_ORDER_AT_FIELD_NUMBER: _ClassVar[int]
    recency_days: int
    tenure_days: int
    orders_30d: int
    orders_90d: int
    orders_365d: int
    orders_total: int
    spend_30d_fen: int
    spend_90d_fen: int
    spend_365d_fen: int
    spend_total_fen: int
    avg_order_90d_fen: int
    avg_order_365d_fen: int
    points_paid_share_bps: int
    redemption_rate_bps: int
    campaign_share_bps: int
    evening_share_bps: int
    top_category_recent: str
    top_category_before: str
    category_shift: bool
    p_alive_bps: int
    expected_orders_90d_milli: int
    expected_order_value_fen: int
    last_order_at: _timestamp_pb2.Timestamp
    def __init__(self, recency_days: _Optional[int] = ..., tenure_days: _Optional[int] = ..., orders_30d: _Optional[int] = ..., orders_90d: _Optional[int] = ..., orders_365d: _Optional[int] = ..., orders_total: _Optional[int] = ..., spend_30d_fen: _Optional[int] = ..., spend_90d_fen: _Optional[int] = ..., spend_365d_fen: _Optional[int] = ..., spend_total_fen: _Optional[int] = ..., avg_order_90d_fen: _Optional[int] = ..., avg_order_365d_fen: _Optional[int] = ..., points_paid_share_bps: _Optional[int] = ..., redemption_rate_bps: _Optional[int] = ..., campaign_share_bps: _Optional[int] = ..., evening_share_bps: _Optional[int] = ..., top_category_recent: _Optional[str] = ..., top_category_before: _Optional[str] = ..., category_shift: _Optional[bool] = ..., p_alive_bps: _Optional[int] = ..., expected_orders_90d_milli: _Optional[int] = ..., expected_order_value_fen: _Optional[int] = ..., last_order_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Label(_message.Message):
    __slots__ = ("id", "name", "reason")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    reason: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class GetMemberSegmentResponse(_message.Message):
    __slots__ = ("facts", "r_score", "f_score", "m_score", "segment", "tags", "churn_cause", "definitions_version")
    FACTS_FIELD_NUMBER: _ClassVar[int]
    R_SCORE_FIELD_NUMBER: _ClassVar[int]
    F_SCORE_FIELD_NUMBER: _ClassVar[int]
    M_SCORE_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    CHURN_CAUSE_FIELD_NUMBER: _ClassVar[int]
    DEFINITIONS_VERSION_FIELD_NUMBER: _ClassVar[int]
    facts: MemberFacts
    r_score: int
    f_score: int
    m_score: int
    segment: Label
    tags: _containers.RepeatedCompositeFieldContainer[Label]
    churn_cause: Label
    definitions_version: int
    def __init__(self, facts: _Optional[_Union[MemberFacts, _Mapping]] = ..., r_score: _Optional[int] = ..., f_score: _Optional[int] = ..., m_score: _Optional[int] = ..., segment: _Optional[_Union[Label, _Mapping]] = ..., tags: _Optional[_Iterable[_Union[Label, _Mapping]]] = ..., churn_cause: _Optional[_Union[Label, _Mapping]] = ..., definitions_version: _Optional[int] = ...) -> None: ...

class ListAtRiskRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class AtRiskMember(_message.Message):
    __slots__ = ("member_id", "segment", "cause", "recency_days", "p_alive_bps", "expected_orders_90d_milli", "spend_365d_fen")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    CAUSE_FIELD_NUMBER: _ClassVar[int]
    RECENCY_DAYS_FIELD_NUMBER: _ClassVar[int]
    P_ALIVE_BPS_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_ORDERS_90D_MILLI_FIELD_NUMBER: _ClassVar[int]
    SPEND_365D_FEN_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    segment: str
    cause: str
    recency_days: int
    p_alive_bps: int
    expected_orders_90d_milli: int
    spend_365d_fen: int
    def __init__(self, member_id: _Optional[str] = ..., segment: _Optional[str] = ..., cause: _Optional[str] = ..., recency_days: _Optional[int] = ..., p_alive_bps: _Optional[int] = ..., expected_orders_90d_milli: _Optional[int] = ..., spend_365d_fen: _Optional[int] = ...) -> None: ...

class ListAtRiskResponse(_message.Message):
    __slots__ = ("members",)
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    members: _containers.RepeatedCompositeFieldContainer[AtRiskMember]
    def __init__(self, members: _Optional[_Iterable[_Union[AtRiskMember, _Mapping]]] = ...) -> None: ...

class GetTriggerReportRequest(_message.Message):
    __slots__ = ("trigger_id",)
    TRIGGER_ID_FIELD_NUMBER: _ClassVar[int]
    trigger_id: str
    def __init__(self, trigger_id: _Optional[str] = ...) -> None: ...

class GetTriggerReportResponse(_message.Message):
    __slots__ = ("trigger_id", "treated", "treated_converted", "control", "control_converted", "treated_rate_bps", "control_rate_bps", "uplift_bps", "treated_spend_fen", "control_spend_fen", "incremental_spend_fen", "cost_points", "cost_coupon_fen")
    TRIGGER_ID_FIELD_NUMBER: _ClassVar[int]
    TREATED_FIELD_NUMBER: _ClassVar[int]
    TREATED_CONVERTED_FIELD_NUMBER: _ClassVar[int]
    CONTROL_FIELD_NUMBER: _ClassVar[int]
    CONTROL_CONVERTED_FIELD_NUMBER: _ClassVar[int]
    TREATED_RATE_BPS_FIELD_NUMBER: _ClassVar[int]
    CONTROL_RATE_BPS_FIELD_NUMBER: _ClassVar[int]
    UPLIFT_BPS_FIELD_NUMBER: _ClassVar[int]
    TREATED_SPEND_FEN_FIELD_NUMBER: _ClassVar[int]
    CONTROL_SPEND_FEN_FIELD_NUMBER: _ClassVar[int]
    INCREMENTAL_SPEND_FEN_FIELD_NUMBER: _ClassVar[int]
    COST_POINTS_FIELD_NUMBER: _ClassVar[int]
    COST_COUPON_FEN_FIELD_NUMBER: _ClassVar[int]
    trigger_id: str
    treated: int
    treated_converted: int
    control: int
    control_converted: int
    treated_rate_bps: int
    control_rate_bps: int
    uplift_bps: int
    treated_spend_fen: int
    control_spend_fen: int
    incremental_spend_fen: int
    cost_points: int
    cost_coupon_fen: int
    def __init__(self, trigger_id: _Optional[str] = ..., treated: _Optional[int] = ..., treated_converted: _Optional[int] = ..., control: _Optional[int] = ..., control_converted: _Optional[int] = ..., treated_rate_bps: _Optional[int] = ..., control_rate_bps: _Optional[int] = ..., uplift_bps: _Optional[int] = ..., treated_spend_fen: _Optional[int] = ..., control_spend_fen: _Optional[int] = ..., incremental_spend_fen: _Optional[int] = ..., cost_points: _Optional[int] = ..., cost_coupon_fen: _Optional[int] = ...) -> None: ...

class SetMemberContactRequest(_message.Message):
    __slots__ = ("member_id", "email", "preferred_channel", "quiet_hours")
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    PREFERRED_CHANNEL_FIELD_NUMBER: _ClassVar[int]
    QUIET_HOURS_FIELD_NUMBER: _ClassVar[int]
    member_id: str
    email: str
    preferred_channel: str
    quiet_hours: str
    def __init__(self, member_id: _Optional[str] = ..., email: _Optional[str] = ..., preferred_channel: _Optional[str] = ..., quiet_hours: _Optional[str] = ...) -> None: ...

class SetMemberContactResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
