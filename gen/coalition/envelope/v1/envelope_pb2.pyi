import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SignedEnvelope(_message.Message):
    __slots__ = ("payload", "payload_type", "signer_id", "key_id", "signature")
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_TYPE_FIELD_NUMBER: _ClassVar[int]
    SIGNER_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    payload: bytes
    payload_type: str
    signer_id: str
    key_id: str
    signature: bytes
    def __init__(self, payload: _Optional[bytes] = ..., payload_type: _Optional[str] = ..., signer_id: _Optional[str] = ..., key_id: _Optional[str] = ..., signature: _Optional[bytes] = ...) -> None: ...

class MessageHeader(_message.Message):
    __slots__ = ("request_id", "issued_at", "sender_id", "audience", "request_digest")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ISSUED_AT_FIELD_NUMBER: _ClassVar[int]
    SENDER_ID_FIELD_NUMBER: _ClassVar[int]
    AUDIENCE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_DIGEST_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    issued_at: _timestamp_pb2.Timestamp
    sender_id: str
    audience: str
    request_digest: bytes
    def __init__(self, request_id: _Optional[str] = ..., issued_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., sender_id: _Optional[str] = ..., audience: _Optional[str] = ..., request_digest: _Optional[bytes] = ...) -> None: ...
