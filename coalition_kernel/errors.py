"""Domain errors and their one mapping to gRPC status with a google.rpc.ErrorInfo reason."""

from __future__ import annotations

from collections.abc import Mapping

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

ERROR_DOMAIN = "coalition.points"


class CoalitionError(Exception):
    """A refusal a partner can act on: a gRPC code, a stable reason and a message."""

    code: grpc.StatusCode = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(self, reason: str, message: str, **metadata: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.metadata = {k: str(v) for k, v in metadata.items()}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reason}: {self.message})"


class InvalidArgument(CoalitionError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(CoalitionError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(CoalitionError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(CoalitionError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class PermissionDenied(CoalitionError):
    code = grpc.StatusCode.PERMISSION_DENIED


class Unauthenticated(CoalitionError):
    code = grpc.StatusCode.UNAUTHENTICATED


class Unavailable(CoalitionError):
    code = grpc.StatusCode.UNAVAILABLE


class Aborted(CoalitionError):
    code = grpc.StatusCode.ABORTED


class DeadlineExceeded(CoalitionError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class ResourceExhausted(CoalitionError):
    """Too many attempts from one caller: slow down (e.g. RATE_LIMITED, CONSENT_RATE_LIMITED)."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


_BY_CODE = {
    cls.code.name: cls
    for cls in (
        InvalidArgument,
        NotFound,
        AlreadyExists,
        FailedPrecondition,
        PermissionDenied,
        Unauthenticated,
        Unavailable,
        Aborted,
        DeadlineExceeded,
        ResourceExhausted,
    )
}


def error_from_record(
    code_name: str, reason: str, message: str, metadata: Mapping[str, str] | None = None
) -> CoalitionError:
    """Rebuilds a stored refusal, so that a retried request is refused exactly as before (or a
    peer's refusal, passed on with its metadata, e.g. INSUFFICIENT_POINTS' available_points)."""
    return _BY_CODE.get(code_name, FailedPrecondition)(reason, message, **(metadata or {}))


# A refusal's message and metadata travel in gRPC trailers, which peers cap (16 KiB by default):
# a message echoing a caller's 70 KB field would turn a clear refusal into RESOURCE_EXHAUSTED
# "Stream removed". Messages and metadata values are cut to these lengths.
MAX_MESSAGE_CHARS = 1000
MAX_METADATA_CHARS = 200


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def to_grpc_status(err: CoalitionError) -> grpc.Status:
    metadata = {_cut(k, 64): _cut(v, MAX_METADATA_CHARS) for k, v in err.metadata.items()}
    info = error_details_pb2.ErrorInfo(reason=err.reason, domain=ERROR_DOMAIN, metadata=metadata)
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(
        code=getattr(code_pb2, err.code.name),
        message=_cut(err.message, MAX_MESSAGE_CHARS),
        details=[detail],
    )
    return rpc_status.to_status(status)


def error_info_of(err: grpc.RpcError) -> error_details_pb2.ErrorInfo | None:
    """The ErrorInfo a server attached to a failed call, for clients and tests."""
    status = rpc_status.from_call(err)  # type: ignore[arg-type]
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    return None


def error_from_rpc(err: grpc.aio.AioRpcError, peer: str, reason_prefix: str) -> CoalitionError:
    """A peer's refusal passed on with its code and reason, so callers see what the peer said;
    a timeout is `<PREFIX>_TIMEOUT` (ambiguous: retry with the same request id) and a peer that
    could not be reached, or answered without a reason, is `<PREFIX>_UNAVAILABLE`. A peer's own
    UNAVAILABLE with a reason (e.g. the exchange's ISSUER_UNAVAILABLE) keeps that reason."""
    code = err.code()
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return DeadlineExceeded(
            f"{reason_prefix}_TIMEOUT",
            f"{peer} did not answer in time; retry with the same request_id",
        )
    info = error_info_of(err)
    if info is None:  # a transport failure, or a peer that gave no reason
        return Unavailable(
            f"{reason_prefix}_UNAVAILABLE", f"{peer} is unreachable: {err.details()}"
        )
    return error_from_record(code.name, info.reason, f"{peer}: {err.details()}", info.metadata)
