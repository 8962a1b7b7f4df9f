"""One checked way from a request's google.protobuf.Timestamp to a datetime.

protobuf's `ToDatetime` raises ValueError/OverflowError on `seconds = 2^63−1` or `nanos = −1`,
which a servicer would let escape as UNKNOWN; and a time in year 9999 is valid protobuf yet
overflows the first `+ timedelta` after it. Every time a caller sends is read here: outside
2000-01-01 … 2200-01-01 (UTC), or not a valid Timestamp, it is INVALID_ARGUMENT
`MALFORMED_TIMESTAMP` naming the field (ErrorInfo metadata `field`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from coalition_kernel.errors import InvalidArgument

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)  # exclusive


def checked(ts: Timestamp, field: str) -> datetime:
    """The moment `ts` names (UTC), or INVALID_ARGUMENT MALFORMED_TIMESTAMP naming `field`."""
    if not 0 <= ts.nanos < 1_000_000_000:
        raise InvalidArgument(
            "MALFORMED_TIMESTAMP", f"{field}.nanos must be 0-999999999", field=field
        )
    if not EARLIEST.timestamp() <= ts.seconds < LATEST.timestamp():
        raise InvalidArgument(
            "MALFORMED_TIMESTAMP",
            f"{field} must be between {EARLIEST.date()} and {LATEST.date()} (UTC)",
            field=field,
        )
    try:
        return ts.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError) as exc:  # unreachable after the range check; kept safe
        raise InvalidArgument(
            "MALFORMED_TIMESTAMP", f"{field} is not a valid time", field=field
        ) from exc


def optional(message: Message, field: str, prefix: str = "") -> datetime | None:
    """`message.field` checked, or None when it is unset."""
    if not message.HasField(field):
        return None
    return checked(getattr(message, field), prefix + field)
