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

class AuthorizationStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUTHORIZATION_STATUS_UNSPECIFIED: _ClassVar[AuthorizationStatus]
    AUTHORIZATION_STATUS_PENDING: _ClassVar[AuthorizationStatus]
    AUTHORIZATION_STATUS_AUTHORIZED: _ClassVar[AuthorizationStatus]
    AUTHORIZATION_STATUS_CAPTURED: _ClassVar[AuthorizationStatus]
    AUTHORIZATION_STATUS_VOIDED: _ClassVar[AuthorizationStatus]
    AUTHORIZATION_STATUS_FAILED: _ClassVar[AuthorizationStatus]

class SettlementBatchStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SETTLEMENT_BATCH_STATUS_UNSPECIFIED: _ClassVar[SettlementBatchStatus]
    SETTLEMENT_BATCH_STATUS_OPEN: _ClassVar[SettlementBatchStatus]
    SETTLEMENT_BATCH_STATUS_CLOSED: _ClassVar[SettlementBatchStatus]
    SETTLEMENT_BATCH_STATUS_RECONCILED: _ClassVar[SettlementBatchStatus]
    SETTLEMENT_BATCH_STATUS_APPROVED: _ClassVar[SettlementBatchStatus]
    SETTLEMENT_BATCH_STATUS_PAID: _ClassVar[SettlementBatchStatus]
    SETTLEMENT_BATCH_STATUS_CONFIRMED: _ClassVar[SettlementBatchStatus]
    SETTLEMENT_BATCH_STATUS_DISPUTED: _ClassVar[SettlementBatchStatus]

class MerchantStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MERCHANT_STATUS_UNSPECIFIED: _ClassVar[MerchantStatus]
    MERCHANT_STATUS_ACTIVE: _ClassVar[MerchantStatus]
    MERCHANT_STATUS_SUSPENDED: _ClassVar[MerchantStatus]

class PartnershipKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PARTNERSHIP_KIND_UNSPECIFIED: _ClassVar[PartnershipKind]
    PARTNERSHIP_KIND_JOINT_OFFER: _ClassVar[PartnershipKind]
    PARTNERSHIP_KIND_RELATED_PRODUCT_OFFER: _ClassVar[PartnershipKind]
AUTHORIZATION_STATUS_UNSPECIFIED: AuthorizationStatus
AUTHORIZATION_STATUS_PENDING: AuthorizationStatus
AUTHORIZATION_STATUS_AUTHORIZED: AuthorizationStatus
AUTHORIZATION_STATUS_CAPTURED: AuthorizationStatus
AUTHORIZATION_STATUS_VOIDED: AuthorizationStatus
AUTHORIZATION_STATUS_FAILED: AuthorizationStatus
SETTLEMENT_BATCH_STATUS_UNSPECIFIED: SettlementBatchStatus
SETTLEMENT_BATCH_STATUS_OPEN: SettlementBatchStatus
SETTLEMENT_BATCH_STATUS_CLOSED: SettlementBatchStatus
SETTLEMENT_BATCH_STATUS_RECONCILED: SettlementBatchStatus
SETTLEMENT_BATCH_STATUS_APPROVED: SettlementBatchStatus
SETTLEMENT_BATCH_STATUS_PAID: SettlementBatchStatus
SETTLEMENT_BATCH_STATUS_CONFIRMED: SettlementBatchStatus
SETTLEMENT_BATCH_STATUS_DISPUTED: SettlementBatchStatus
MERCHANT_STATUS_UNSPECIFIED: MerchantStatus
MERCHANT_STATUS_ACTIVE: MerchantStatus
MERCHANT_STATUS_SUSPENDED: MerchantStatus
PARTNERSHIP_KIND_UNSPECIFIED: PartnershipKind
PARTNERSHIP_KIND_JOINT_OFFER: PartnershipKind
PARTNERSHIP_KIND_RELATED_PRODUCT_OFFER: PartnershipKind

class GetQuoteRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class GetQuoteResponse(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class AuthorizeRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class AuthorizeResponse(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class CaptureRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class CaptureResponse(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class VoidRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class VoidResponse(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class GetPortfolioRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class GetPortfolioResponse(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class FetchAuditSliceRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class FetchAuditSliceResponse(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class GetSettlementProofRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class GetSettlementProofResponse(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class OnboardMerchantRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class OnboardMerchantResponse(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class RotateKeyRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class RotateKeyResponse(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class SetMerchantStatusRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class SetMerchantStatusResponse(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class SetMerchantTermsRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class SetMerchantTermsResponse(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class ListMerchantsRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class ListMerchantsResponse(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class GetAffinityRequest(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class GetAffinityResponse(_message.Message):
    __slots__ = ("envelope",)
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    envelope: _envelope_pb2.SignedEnvelope
    def __init__(self, envelope: _Optional[_Union[_envelope_pb2.SignedEnvelope, _Mapping]] = ...) -> None: ...

class QuoteCommand(_message.Message):
    __slots__ = ("header", "issuer_id", "points", "amount_fen")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    ISSUER_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FEN_FIELD_NUMBER: _ClassVar[int]
    header: _envelope_pb2.MessageHeader
    issuer_id: str
    points: int
    amount_fen: int
    def __init__(self, header: _Optional[_Union[_envelope_pb2.MessageHeader, _Mapping]] = ..., issuer_id: _Optional[str] = ..., points: _Optional[int] = ..., amount_fen: _Optional[int] = ...) -> None: ...

class QuoteReceipt(_message.Message):
    __slots__ = ("header", "quote_id", "issuer_id", "points", "value_fen", "fee_fen", "rate_version", "expires_at")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    QUOTE_ID_FIELD_NUMBER: _ClassVar[int]
    ISSUER_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    VALUE_FEN_FIELD_NUMBER: _ClassVar[int]
    FEE_FEN_FIELD_NUMBER: _ClassVar[int]
    RATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    header: _envelope_pb2.MessageHeader
    quote_id: str
    issuer_id: str
    points: int
    value_fen: int
    fee_fen: int
    rate_version: int
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, header: _Optional[_Union[_envelope_pb2.MessageHeader, _Mapping]] = ..., quote_id: _Optional[str] = ..., issuer_id: _Optional[str] = ..., points: _Optional[int] = ..., value_fen: _Optional[int] = ..., fee_fen: _Optional[int] = ..., rate_version: _Optional[int] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AuthorizeCommand(_message.Message):
    __slots__ = ("header", "issuer_id", "member_id", "order_id", "points", "amount_fen", "consent_code", "quote_id", "consent_max_points", "consent_order_id")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    ISSUER_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FEN_FIELD_NUMBER: _ClassVar[int]
    CONSENT_CODE_FIELD_NUMBER: _ClassVar[int]
    QUOTE_ID_FIELD_NUMBER: _ClassVar[int]
    CONSENT_MAX_POINTS_FIELD_NUMBER: _ClassVar[int]
    CONSENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    header: _envelope_pb2.MessageHeader
    issuer_id: str
    member_id: str
    order_id: str
    points: int
    amount_fen: int
    consent_code: str
    quote_id: str
    consent_max_points: int
    consent_order_id: str
    def __init__(self, header: _Optional[_Union[_envelope_pb2.MessageHeader, _Mapping]] = ..., issuer_id: _Optional[str] = ..., member_id: _Optional[str] = ..., order_id: _Optional[str] = ..., points: _Optional[int] = ..., amount_fen: _Optional[int] = ..., consent_code: _Optional[str] = ..., quote_id: _Optional[str] = ..., consent_max_points: _Optional[int] = ..., consent_order_id: _Optional[str] = ...) -> None: ...

class AuthorizeReceipt(_message.Message):
    __slots__ = ("header", "authorization_id", "issuer_id", "member_id", "points", "value_fen", "fee_fen", "rate_version", "hold_expires_at", "status")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    AUTHORIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    ISSUER_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    VALUE_FEN_FIELD_NUMBER: _ClassVar[int]
    FEE_FEN_FIELD_NUMBER: _ClassVar[int]
    RATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    HOLD_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    header: _envelope_pb2.MessageHeader
    authorization_id: str
    issuer_id: str
    member_id: str
    points: int
    value_fen: int
    fee_fen: int
    rate_version: int
    hold_expires_at: _timestamp_pb2.Timestamp
    status: AuthorizationStatus
    def __init__(self, header: _Optional[_Union[_envelope_pb2.MessageHeader, _Mapping]] = ..., authorization_id: _Optional[str] = ..., issuer_id: _Optional[str] = ..., member_id: _Optional[str] = ..., points: _Optional[int] = ..., value_fen: _Optional[int] = ..., fee_fen: _Optional[int] = ..., rate_version: _Optional[int] = ..., hold_expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status: _Optional[_Union[AuthorizationStatus, str]] = ...) -> None: ...

class CaptureCommand(_message.Message):
    __slots__ = ("header", "authorization_id")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    AUTHORIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    header: _envelope_pb2.MessageHeader
    authorization_id: str
    def __init__(self, header: _Optional[_Union[_envelope_pb2.MessageHeader, _Mapping]] = ..., authorization_id: _Optional[str] = ...) -> None: ...

class CaptureReceipt(_message.Message):
    __slots__ = ("header", "record")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    RECORD_FIELD_NUMBER: _ClassVar[int]
    header: _envelope_pb2.MessageHeader
    record: ClearingRecord
    def __init__(self, header: _Optional[_Union[_envelope_pb2.MessageHeader, _Mapping]] = ..., record: _Optional[_Union[ClearingRecord, _Mapping]] = ...) -> None: ...

class VoidCommand(_message.Message):
    __slots__ = ("header", "authorization_id")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    AUTHORIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    header: _envelope_pb2.MessageHeader
    authorization_id: str
    def __init__(self, header: _Optional[_Union[_envelope_pb2.MessageHeader, _Mapping]] = ..., authorization_id: _Optional[str] = ...) -> None: ...

class VoidReceipt(_message.Message):
    __slots__ = ("header", "authorization_id", "status")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    AUTHORIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    header: _envelope_pb2.MessageHeader
    authorization_id: str
    status: AuthorizationStatus
    def __init__(self, header: _Optional[_Union[_envelope_pb2.MessageHeader, _Mapping]] = ..., authorization_id: _Optional[str] = ..., status: _Optional[_Union[AuthorizationStatus, str]] = ...) -> None: ...

class ClearingRecord(_message.Message):
    __slots__ = ("clearing_id", "authorization_id", "issuer_id", "acquirer_id", "member_id", "order_id", "points", "value_fen", "fee_fen", "rate_version", "settlement_period", "authorized_at", "captured_at", "acquirer_envelope", "issuer_envelope")
    CLEARING_ID_FIELD_NUMBER: _ClassVar[int]
    AUTHORIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    ISSUER_ID_FIELD_NUMBER: _ClassVar[int]
    ACQUIRER_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    VALUE_FEN_FIELD_NUMBER: _ClassVar[int]
    FEE_FEN_FIELD_NUMBER: _ClassVar[int]
    RATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    SETTLEMENT_PERIOD_FIELD_NUMBER: _ClassVar[int]
    AUTHORIZED_AT_FIELD_NUMBER: _ClassVar[int]
    CAPTURED_AT_FIELD_NUMBER: _ClassVar[int]
    ACQUIRER_ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    ISSUER_ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    clearing_id: str
    authorization_id: str
    issuer_id: str
    acquirer_id: str
    member_id: str
    order_id: str
    points: int
    value_fen: int
    fee_fen: int
    rate_version: int
    settlement_period: str
    authorized_at: _timestamp_pb2.Timestamp
    captured_at: _timestamp_pb2.Timestamp
    acquirer_envelope: bytes
    issuer_envelope: bytes
    def __init__(self, clearing_id: _Optional[str] = ..., authorization_id: _Optional[str] = ..., issuer_id: _Optional[str] = ..., acquirer_id: _Optional[str] = ..., member_id: _Optional[str] = ..., order_id: _Optional[str] = ..., points: _Optional[int] = ..., value_fen: _Optional[int] = ..., fee_fen: _Optional[int] = ..., rate_version: _Optional[int] = ..., settlement_period: _Optional[str] = ..., authorized_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., captured_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., acquirer_envelope: _Optional[bytes] = ..., issuer_envelope: _Optional[bytes] = ...) -> None: ...

class PortfolioCommand(_message.Message):
    __slots__ = ("header", "member_id", "consents")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    CONSENTS_FIELD_NUMBER: _ClassVar[int]
    header: _envelope_pb2.MessageHeader
    member_id: str
    consents: _containers.RepeatedCompositeFieldContainer[IssuerConsent]
    def __init__(self, header: _Optional[_Union[_envelope_pb2.MessageHeader, _Mapping]] = ..., member_id: _Optional[str] = ..., consents: _Optional[_Iterable[_Union[IssuerConsent, _Mapping]]] = ...) -> None: ...

class IssuerConsent(_message.Message):
    __slots__ = ("issuer_id", "consent_code")
    ISSUER_ID_FIELD_NUMBER: _ClassVar[int]
    CONSENT_CODE_FIELD_NUMBER: _ClassVar[int]
    issuer_id: str
    consent_code: str
    def __init__(self, issuer_id: _Optional[str] = ..., consent_code: _Optional[str] = ...) -> None: ...

class RefusalRecord(_message.Message):
    __slots__ = ("envelope_sha256", "envelope_size", "claimed_signer_id", "claimed_key_id", "payload_type", "reason", "peer")
    ENVELOPE_SHA256_FIELD_NUMBER: _ClassVar[int]
    ENVELOPE_SIZE_FIELD_NUMBER: _ClassVar[int]
    CLAIMED_SIGNER_ID_FIELD_NUMBER: _ClassVar[int]
    CLAIMED_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_TYPE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    envelope_sha256: bytes
    envelope_size: int
    claimed_signer_id: str
    claimed_key_id: str
    payload_type: str
    reason: str
    peer: str
    def __init__(self, envelope_sha256: _Optional[bytes] = ..., envelope_size: _Optional[int] = ..., claimed_signer_id: _Optional[str] = ..., claimed_key_id: _Optional[str] = ..., payload_type: _Optional[str] = ..., reason: _Optional[str] = ..., peer: _Optional[str] = ...) -> None: ...

class IssuerBalance(_message.Message):
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

class PortfolioReceipt(_message.Message):
    __slots__ = ("header", "member_id", "balances")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    BALANCES_FIELD_NUMBER: _ClassVar[int]
    header: _envelope_pb2.MessageHeader
    member_id: str
    balances: _containers.RepeatedCompositeFieldContainer[IssuerBalance]
    def __init__(self, header: _Optional[_Union[_envelope_pb2.MessageHeader, _Mapping]] = ..., member_id: _Optional[str] = ..., balances: _Optional[_Iterable[_Union[IssuerBalance, _Mapping]]] = ...) -> None: ...

class AuditSliceCommand(_message.Message):
    __slots__ = ("header", "after_sequence", "limit")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    header: _envelope_pb2.MessageHeader
    after_sequence: int
    limit: int
    def __init__(self, header: _Optional[_Union[_envelope_pb2.MessageHeader, _Mapping]] = ..., after_sequence: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class AuditEntry(_message.Message):
    __slots__ = ("sequence", "direction", "peer_id", "envelope", "previous_hash", "entry_hash", "recorded_at", "outcome")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    PEER_ID_FIELD_NUMBER: _ClassVar[int]
    ENVELOPE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_HASH_FIELD_NUMBER: _ClassVar[int]
    ENTRY_HASH_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    direction: str
    peer_id: str
    envelope: bytes
    previous_hash: bytes
    entry_hash: bytes
    recorded_at: _timestamp_pb2.Timestamp
    outcome: str
    def __init__(self, sequence: _Optional[int] = ..., direction: _Optional[str] = ..., peer_id: _Optional[str] = ..., envelope: _Optional[bytes] = ..., previous_hash: _Optional[bytes] = ..., entry_hash: _Optional[bytes] = ..., recorded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., outcome: _Optional[str] = ...) -> None: ...

class AuditSliceReceipt(_message.Message):
    __slots__ = ("header", "entries", "head_sequence", "head_hash")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    HEAD_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    HEAD_HASH_FIELD_NUMBER: _ClassVar[int]
    header: _envelope_pb2.MessageHeader
    entries: _containers.RepeatedCompositeFieldContainer[AuditEntry]
    head_sequence: int
    head_hash: bytes
    def __init__(self, header: _Optional[_Union[_envelope_pb2.MessageHeader, _Mapping]] = ..., entries: _Optional[_Iterable[_Union[AuditEntry, _Mapping]]] = ..., head_sequence: _Optional[int] = ..., head_hash: _Optional[bytes] = ...) -> None: ...

class SettlementProofCommand(_message.Message):
    __slots__ = ("header", "settlement_period")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    SETTLEMENT_PERIOD_FIELD_NUMBER: _ClassVar[int]
    header: _envelope_pb2.MessageHeader
    settlement_period: str
    def __init__(self, header: _Optional[_Union[_envelope_pb2.MessageHeader, _Mapping]] = ..., settlement_period: _Optional[str] = ...) -> None: ...

class SettlementEntry(_message.Message):
    __slots__ = ("authorization_id", "clearing_id", "issuer_id", "acquirer_id", "points", "value_fen", "fee_fen", "rate_version", "settlement_period")
    AUTHORIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    CLEARING_ID_FIELD_NUMBER: _ClassVar[int]
    ISSUER_ID_FIELD_NUMBER: _ClassVar[int]
    ACQUIRER_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    VALUE_FEN_FIELD_NUMBER: _ClassVar[int]
    FEE_FEN_FIELD_NUMBER: _ClassVar[int]
    RATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    SETTLEMENT_PERIOD_FIELD_NUMBER: _ClassVar[int]
    authorization_id: str
    clearing_id: str
    issuer_id: str
    acquirer_id: str
    points: int
    value_fen: int
    fee_fen: int
    rate_version: int
    settlement_period: str
    def __init__(self, authorization_id: _Optional[str] = ..., clearing_id: _Optional[str] = ..., issuer_id: _Optional[str] = ..., acquirer_id: _Optional[str] = ..., points: _Optional[int] = ..., value_fen: _Optional[int] = ..., fee_fen: _Optional[int] = ..., rate_version: _Optional[int] = ..., settlement_period: _Optional[str] = ...) -> None: ...

class InclusionProof(_message.Message):
    __slots__ = ("leaf_index", "tree_size", "audit_path")
    LEAF_INDEX_FIELD_NUMBER: _ClassVar[int]
    TREE_SIZE_FIELD_NUMBER: _ClassVar[int]
    AUDIT_PATH_FIELD_NUMBER: _ClassVar[int]
    leaf_index: int
    tree_size: int
    audit_path: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, leaf_index: _Optional[int] = ..., tree_size: _Optional[int] = ..., audit_path: _Optional[_Iterable[bytes]] = ...) -> None: ...

class ProvenSettlementEntry(_message.Message):
    __slots__ = ("entry", "proof")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    PROOF_FIELD_NUMBER: _ClassVar[int]
    entry: SettlementEntry
    proof: InclusionProof
    def __init__(self, entry: _Optional[_Union[SettlementEntry, _Mapping]] = ..., proof: _Optional[_Union[InclusionProof, _Mapping]] = ...) -> None: ...

class SettlementPosition(_message.Message):
    __slots__ = ("payable_fen", "receivable_fen", "fee_fen", "net_fen", "breakage_fen", "breakage_value_fen", "breakage_operator_bps")
    PAYABLE_FEN_FIELD_NUMBER: _ClassVar[int]
    RECEIVABLE_FEN_FIELD_NUMBER: _ClassVar[int]
    FEE_FEN_FIELD_NUMBER: _ClassVar[int]
    NET_FEN_FIELD_NUMBER: _ClassVar[int]
    BREAKAGE_FEN_FIELD_NUMBER: _ClassVar[int]
    BREAKAGE_VALUE_FEN_FIELD_NUMBER: _ClassVar[int]
    BREAKAGE_OPERATOR_BPS_FIELD_NUMBER: _ClassVar[int]
    payable_fen: int
    receivable_fen: int
    fee_fen: int
    net_fen: int
    breakage_fen: int
    breakage_value_fen: int
    breakage_operator_bps: int
    def __init__(self, payable_fen: _Optional[int] = ..., receivable_fen: _Optional[int] = ..., fee_fen: _Optional[int] = ..., net_fen: _Optional[int] = ..., breakage_fen: _Optional[int] = ..., breakage_value_fen: _Optional[int] = ..., breakage_operator_bps: _Optional[int] = ...) -> None: ...

class SettlementProofReceipt(_message.Message):
    __slots__ = ("header", "settlement_period", "batch_id", "status", "record_count", "commitment_root", "entries", "position")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    SETTLEMENT_PERIOD_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RECORD_COUNT_FIELD_NUMBER: _ClassVar[int]
    COMMITMENT_ROOT_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    header: _envelope_pb2.MessageHeader
    settlement_period: str
    batch_id: str
    status: SettlementBatchStatus
    record_count: int
    commitment_root: bytes
    entries: _containers.RepeatedCompositeFieldContainer[ProvenSettlementEntry]
    position: SettlementPosition
    def __init__(self, header: _Optional[_Union[_envelope_pb2.MessageHeader, _Mapping]] = ..., settlement_period: _Optional[str] = ..., batch_id: _Optional[str] = ..., status: _Optional[_Union[SettlementBatchStatus, str]] = ..., record_count: _Optional[int] = ..., commitment_root: _Optional[bytes] = ..., entries: _Optional[_Iterable[_Union[ProvenSettlementEntry, _Mapping]]] = ..., position: _Optional[_Union[SettlementPosition, _Mapping]] = ...) -> None: ...

class MerchantKey(_message.Message):
    __slots__ = ("key_id", "public_key", "valid_from", "valid_until")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    public_key: bytes
    valid_from: _timestamp_pb2.Timestamp
    valid_until: _timestamp_pb2.Timestamp
    def __init__(self, key_id: _Optional[str] = ..., public_key: _Optional[bytes] = ..., valid_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., valid_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Merchant(_message.Message):
    __slots__ = ("merchant_id", "display_name", "status", "fen_per_point", "rate_version", "fee_bps", "endpoint", "keys", "net_debit_cap_fen", "breakage_operator_bps")
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    FEN_PER_POINT_FIELD_NUMBER: _ClassVar[int]
    RATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    FEE_BPS_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    NET_DEBIT_CAP_FEN_FIELD_NUMBER: _ClassVar[int]
    BREAKAGE_OPERATOR_BPS_FIELD_NUMBER: _ClassVar[int]
    merchant_id: str
    display_name: str
    status: MerchantStatus
    fen_per_point: str
    rate_version: int
    fee_bps: int
    endpoint: str
    keys: _containers.RepeatedCompositeFieldContainer[MerchantKey]
    net_debit_cap_fen: int
    breakage_operator_bps: int
    def __init__(self, merchant_id: _Optional[str] = ..., display_name: _Optional[str] = ..., status: _Optional[_Union[MerchantStatus, str]] = ..., fen_per_point: _Optional[str] = ..., rate_version: _Optional[int] = ..., fee_bps: _Optional[int] = ..., endpoint: _Optional[str] = ..., keys: _Optional[_Iterable[_Union[MerchantKey, _Mapping]]] = ..., net_debit_cap_fen: _Optional[int] = ..., breakage_operator_bps: _Optional[int] = ...) -> None: ...

class OnboardMerchantCommand(_message.Message):
    __slots__ = ("header", "merchant_id", "display_name", "fen_per_point", "fee_bps", "endpoint", "public_key")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    FEN_PER_POINT_FIELD_NUMBER: _ClassVar[int]
    FEE_BPS_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    header: _envelope_pb2.MessageHeader
    merchant_id: str
    display_name: str
    fen_per_point: str
    fee_bps: int
    endpoint: str
    public_key: bytes
    def __init__(self, header: _Optional[_Union[_envelope_pb2.MessageHeader, _Mapping]] = ..., merchant_id: _Optional[str] = ..., display_name: _Optional[str] = ..., fen_per_point: _Optional[str] = ..., fee_bps: _Optional[int] = ..., endpoint: _Optional[str] = ..., public_key: _Optional[bytes] = ...) -> None: ...

class RotateKeyCommand(_message.Message):
    __slots__ = ("header", "merchant_id", "public_key", "old_keys_valid_until", "new_key_valid_from")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    OLD_KEYS_VALID_UNTIL_FIELD_NUMBER: _ClassVar[int]
    NEW_KEY_VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    header: _envelope_pb2.MessageHeader
    merchant_id: str
    public_key: bytes
    old_keys_valid_until: _timestamp_pb2.Timestamp
    new_key_valid_from: _timestamp_pb2.Timestamp
    def __init__(self, header: _Optional[_Union[_envelope_pb2.MessageHeader, _Mapping]] = ..., merchant_id: _Optional[str] = ..., public_key: _Optional[bytes] = ..., old_keys_valid_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., new_key_valid_from: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SetMerchantStatusCommand(_message.Message):
    __slots__ = ("header", "merchant_id", "status")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    header: _envelope_pb2.MessageHeader
    merchant_id: str
    status: MerchantStatus
    def __init__(self, header: _Optional[_Union[_envelope_pb2.MessageHeader, _Mapping]] = ..., merchant_id: _Optional[str] = ..., status: _Optional[_Union[MerchantStatus, str]] = ...) -> None: ...

class SetMerchantTermsCommand(_message.Message):
    __slots__ = ("header", "merchant_id", "fen_per_point", "fee_bps", "endpoint", "net_debit_cap_fen", "breakage_operator_bps")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    FEN_PER_POINT_FIELD_NUMBER: _ClassVar[int]
    FEE_BPS_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    NET_DEBIT_CAP_FEN_FIELD_NUMBER: _ClassVar[int]
    BREAKAGE_OPERATOR_BPS_FIELD_NUMBER: _ClassVar[int]
    header: _envelope_pb2.MessageHeader
    merchant_id: str
    fen_per_point: str
    fee_bps: int
    endpoint: str
    net_debit_cap_fen: int
    breakage_operator_bps: int
    def __init__(self, header: _Optional[_Union[_envelope_pb2.MessageHeader, _Mapping]] = ..., merchant_id: _Optional[str] = ..., fen_per_point: _Optional[str] = ..., fee_bps: _Optional[int] = ..., endpoint: _Optional[str] = ..., net_debit_cap_fen: _Optional[int] = ..., breakage_operator_bps: _Optional[int] = ...) -> None: ...

class ListMerchantsCommand(_message.Message):
    __slots__ = ("header",)
    HEADER_FIELD_NUMBER: _ClassVar[int]
    header: _envelope_pb2.MessageHeader
    def __init__(self, header: _Optional[_Union[_envelope_pb2.MessageHeader, _Mapping]] = ...) -> None: ...

class MerchantReceipt(_message.Message):
    __slots__ = ("header", "merchant")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    MERCHANT_FIELD_NUMBER: _ClassVar[int]
    header: _envelope_pb2.MessageHeader
    merchant: Merchant
    def __init__(self, header: _Optional[_Union[_envelope_pb2.MessageHeader, _Mapping]] = ..., merchant: _Optional[_Union[Merchant, _Mapping]] = ...) -> None: ...

class MerchantListReceipt(_message.Message):
    __slots__ = ("header", "merchants")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    MERCHANTS_FIELD_NUMBER: _ClassVar[int]
    header: _envelope_pb2.MessageHeader
    merchants: _containers.RepeatedCompositeFieldContainer[Merchant]
    def __init__(self, header: _Optional[_Union[_envelope_pb2.MessageHeader, _Mapping]] = ..., merchants: _Optional[_Iterable[_Union[Merchant, _Mapping]]] = ...) -> None: ...

class AffinityCommand(_message.Message):
    __slots__ = ("header", "days", "min_members")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    MIN_MEMBERS_FIELD_NUMBER: _ClassVar[int]
    header: _envelope_pb2.MessageHeader
    days: int
    min_members: int
    def __init__(self, header: _Optional[_Union[_envelope_pb2.MessageHeader, _Mapping]] = ..., days: _Optional[int] = ..., min_members: _Optional[int] = ...) -> None: ...

class AffinityFlow(_message.Message):
    __slots__ = ("issuer_id", "acquirer_id", "members", "redemptions", "points", "value_fen", "lift_bp")
    ISSUER_ID_FIELD_NUMBER: _ClassVar[int]
    ACQUIRER_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    REDEMPTIONS_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    VALUE_FEN_FIELD_NUMBER: _ClassVar[int]
    LIFT_BP_FIELD_NUMBER: _ClassVar[int]
    issuer_id: str
    acquirer_id: str
    members: int
    redemptions: int
    points: int
    value_fen: int
    lift_bp: int
    def __init__(self, issuer_id: _Optional[str] = ..., acquirer_id: _Optional[str] = ..., members: _Optional[int] = ..., redemptions: _Optional[int] = ..., points: _Optional[int] = ..., value_fen: _Optional[int] = ..., lift_bp: _Optional[int] = ...) -> None: ...

class SharedCustomers(_message.Message):
    __slots__ = ("first_merchant_id", "second_merchant_id", "members")
    FIRST_MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    SECOND_MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    first_merchant_id: str
    second_merchant_id: str
    members: int
    def __init__(self, first_merchant_id: _Optional[str] = ..., second_merchant_id: _Optional[str] = ..., members: _Optional[int] = ...) -> None: ...

class PartnershipSuggestion(_message.Message):
    __slots__ = ("kind", "offering_merchant_id", "audience_merchant_id", "score_bp", "members")
    KIND_FIELD_NUMBER: _ClassVar[int]
    OFFERING_MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    AUDIENCE_MERCHANT_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_BP_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    kind: PartnershipKind
    offering_merchant_id: str
    audience_merchant_id: str
    score_bp: int
    members: int
    def __init__(self, kind: _Optional[_Union[PartnershipKind, str]] = ..., offering_merchant_id: _Optional[str] = ..., audience_merchant_id: _Optional[str] = ..., score_bp: _Optional[int] = ..., members: _Optional[int] = ...) -> None: ...

class AffinityReceipt(_message.Message):
    __slots__ = ("header", "window_start", "window_end", "min_members", "flows", "shared", "suggestions", "suppressed_flows")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    WINDOW_END_FIELD_NUMBER: _ClassVar[int]
    MIN_MEMBERS_FIELD_NUMBER: _ClassVar[int]
    FLOWS_FIELD_NUMBER: _ClassVar[int]
    SHARED_FIELD_NUMBER: _ClassVar[int]
    SUGGESTIONS_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSED_FLOWS_FIELD_NUMBER: _ClassVar[int]
    header: _envelope_pb2.MessageHeader
    window_start: _timestamp_pb2.Timestamp
    window_end: _timestamp_pb2.Timestamp
    min_members: int
    flows: _containers.RepeatedCompositeFieldContainer[AffinityFlow]
    shared: _containers.RepeatedCompositeFieldContainer[SharedCustomers]
    suggestions: _containers.RepeatedCompositeFieldContainer[PartnershipSuggestion]
    suppressed_flows: int
    def __init__(self, header: _Optional[_Union[_envelope_pb2.MessageHeader, _Mapping]] = ..., window_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., window_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., min_members: _Optional[int] = ..., flows: _Optional[_Iterable[_Union[AffinityFlow, _Mapping]]] = ..., shared: _Optional[_Iterable[_Union[SharedCustomers, _Mapping]]] = ..., suggestions: _Optional[_Iterable[_Union[PartnershipSuggestion, _Mapping]]] = ..., suppressed_flows: _Optional[int] = ...) -> None: ...
