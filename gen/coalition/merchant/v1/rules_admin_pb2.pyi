import datetime

from coalition.merchant.v1 import merchant_node_pb2 as _merchant_node_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ProgramVersion(_message.Message):
    __slots__ = ("version", "document", "digest", "effective_from", "applied_at", "applied_by")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_FROM_FIELD_NUMBER: _ClassVar[int]
    APPLIED_AT_FIELD_NUMBER: _ClassVar[int]
    APPLIED_BY_FIELD_NUMBER: _ClassVar[int]
    version: int
    document: str
    digest: str
    effective_from: _timestamp_pb2.Timestamp
    applied_at: _timestamp_pb2.Timestamp
    applied_by: str
    def __init__(self, version: _Optional[int] = ..., document: _Optional[str] = ..., digest: _Optional[str] = ..., effective_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., applied_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., applied_by: _Optional[str] = ...) -> None: ...

class GetProgramRequest(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: int
    def __init__(self, version: _Optional[int] = ...) -> None: ...

class GetProgramResponse(_message.Message):
    __slots__ = ("program",)
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    program: ProgramVersion
    def __init__(self, program: _Optional[_Union[ProgramVersion, _Mapping]] = ...) -> None: ...

class ListProgramVersionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListProgramVersionsResponse(_message.Message):
    __slots__ = ("versions",)
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[ProgramVersion]
    def __init__(self, versions: _Optional[_Iterable[_Union[ProgramVersion, _Mapping]]] = ...) -> None: ...

class ValidateProgramRequest(_message.Message):
    __slots__ = ("document",)
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    document: str
    def __init__(self, document: _Optional[str] = ...) -> None: ...

class ValidateProgramResponse(_message.Message):
    __slots__ = ("valid", "errors")
    VALID_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    errors: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, valid: _Optional[bool] = ..., errors: _Optional[_Iterable[str]] = ...) -> None: ...

class ApplyProgramRequest(_message.Message):
    __slots__ = ("request_id", "document", "effective_from", "applied_by", "base_version")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_FROM_FIELD_NUMBER: _ClassVar[int]
    APPLIED_BY_FIELD_NUMBER: _ClassVar[int]
    BASE_VERSION_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    document: str
    effective_from: _timestamp_pb2.Timestamp
    applied_by: str
    base_version: int
    def __init__(self, request_id: _Optional[str] = ..., document: _Optional[str] = ..., effective_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., applied_by: _Optional[str] = ..., base_version: _Optional[int] = ...) -> None: ...

class ApplyProgramResponse(_message.Message):
    __slots__ = ("version", "digest")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    version: int
    digest: str
    def __init__(self, version: _Optional[int] = ..., digest: _Optional[str] = ...) -> None: ...

class SimulateEarnRequest(_message.Message):
    __slots__ = ("purchase", "document", "tier", "first_purchase", "birth_month")
    PURCHASE_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    FIRST_PURCHASE_FIELD_NUMBER: _ClassVar[int]
    BIRTH_MONTH_FIELD_NUMBER: _ClassVar[int]
    purchase: _merchant_node_pb2.EarnRequest
    document: str
    tier: str
    first_purchase: bool
    birth_month: int
    def __init__(self, purchase: _Optional[_Union[_merchant_node_pb2.EarnRequest, _Mapping]] = ..., document: _Optional[str] = ..., tier: _Optional[str] = ..., first_purchase: _Optional[bool] = ..., birth_month: _Optional[int] = ...) -> None: ...

class SimulateEarnResponse(_message.Message):
    __slots__ = ("points", "breakdown", "pending_days")
    POINTS_FIELD_NUMBER: _ClassVar[int]
    BREAKDOWN_FIELD_NUMBER: _ClassVar[int]
    PENDING_DAYS_FIELD_NUMBER: _ClassVar[int]
    points: int
    breakdown: _containers.RepeatedCompositeFieldContainer[_merchant_node_pb2.EarnBreakdownLine]
    pending_days: int
    def __init__(self, points: _Optional[int] = ..., breakdown: _Optional[_Iterable[_Union[_merchant_node_pb2.EarnBreakdownLine, _Mapping]]] = ..., pending_days: _Optional[int] = ...) -> None: ...

class ListBudgetPoolsRequest(_message.Message):
    __slots__ = ("pool_ids",)
    POOL_IDS_FIELD_NUMBER: _ClassVar[int]
    pool_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, pool_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class BudgetPoolStatus(_message.Message):
    __slots__ = ("pool_id", "budget_points", "granted_points")
    POOL_ID_FIELD_NUMBER: _ClassVar[int]
    BUDGET_POINTS_FIELD_NUMBER: _ClassVar[int]
    GRANTED_POINTS_FIELD_NUMBER: _ClassVar[int]
    pool_id: str
    budget_points: int
    granted_points: int
    def __init__(self, pool_id: _Optional[str] = ..., budget_points: _Optional[int] = ..., granted_points: _Optional[int] = ...) -> None: ...

class ListBudgetPoolsResponse(_message.Message):
    __slots__ = ("pools",)
    POOLS_FIELD_NUMBER: _ClassVar[int]
    pools: _containers.RepeatedCompositeFieldContainer[BudgetPoolStatus]
    def __init__(self, pools: _Optional[_Iterable[_Union[BudgetPoolStatus, _Mapping]]] = ...) -> None: ...

class GetCampaignReportRequest(_message.Message):
    __slots__ = ("campaign_id", "starts_at", "ends_at", "baseline_starts_at", "baseline_ends_at")
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    STARTS_AT_FIELD_NUMBER: _ClassVar[int]
    ENDS_AT_FIELD_NUMBER: _ClassVar[int]
    BASELINE_STARTS_AT_FIELD_NUMBER: _ClassVar[int]
    BASELINE_ENDS_AT_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    starts_at: _timestamp_pb2.Timestamp
    ends_at: _timestamp_pb2.Timestamp
    baseline_starts_at: _timestamp_pb2.Timestamp
    baseline_ends_at: _timestamp_pb2.Timestamp
    def __init__(self, campaign_id: _Optional[str] = ..., starts_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ends_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., baseline_starts_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., baseline_ends_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class OrderFigures(_message.Message):
    __slots__ = ("orders", "revenue_fen", "points", "members")
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    REVENUE_FEN_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    orders: int
    revenue_fen: int
    points: int
    members: int
    def __init__(self, orders: _Optional[int] = ..., revenue_fen: _Optional[int] = ..., points: _Optional[int] = ..., members: _Optional[int] = ...) -> None: ...

class GetCampaignReportResponse(_message.Message):
    __slots__ = ("campaign_id", "rule_ids", "pools", "points_granted", "fen_per_point", "points_cost_fen", "participating", "control_group", "window", "baseline")
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    RULE_IDS_FIELD_NUMBER: _ClassVar[int]
    POOLS_FIELD_NUMBER: _ClassVar[int]
    POINTS_GRANTED_FIELD_NUMBER: _ClassVar[int]
    FEN_PER_POINT_FIELD_NUMBER: _ClassVar[int]
    POINTS_COST_FEN_FIELD_NUMBER: _ClassVar[int]
    PARTICIPATING_FIELD_NUMBER: _ClassVar[int]
    CONTROL_GROUP_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    rule_ids: _containers.RepeatedScalarFieldContainer[str]
    pools: _containers.RepeatedCompositeFieldContainer[BudgetPoolStatus]
    points_granted: int
    fen_per_point: str
    points_cost_fen: int
    participating: OrderFigures
    control_group: OrderFigures
    window: OrderFigures
    baseline: OrderFigures
    def __init__(self, campaign_id: _Optional[str] = ..., rule_ids: _Optional[_Iterable[str]] = ..., pools: _Optional[_Iterable[_Union[BudgetPoolStatus, _Mapping]]] = ..., points_granted: _Optional[int] = ..., fen_per_point: _Optional[str] = ..., points_cost_fen: _Optional[int] = ..., participating: _Optional[_Union[OrderFigures, _Mapping]] = ..., control_group: _Optional[_Union[OrderFigures, _Mapping]] = ..., window: _Optional[_Union[OrderFigures, _Mapping]] = ..., baseline: _Optional[_Union[OrderFigures, _Mapping]] = ...) -> None: ...
