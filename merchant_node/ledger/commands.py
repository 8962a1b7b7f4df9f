"""The node's use cases as validated commands. Building one checks its input; a bad field raises
InvalidArgument naming the field, before anything touches the ledger."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from coalition_kernel.errors import InvalidArgument
from coalition_kernel.points import MAX_AMOUNT
from merchant_node.rules.base import LineItem

_ID = re.compile(r"^[A-Za-z0-9._:\-]+\Z")
_PHONE = re.compile(r"^\+?[0-9]{3,19}\Z")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
CHANNELS = ("POS", "MINI_PROGRAM", "WEB")


def check_id(field: str, value: str, *, max_len: int = 64) -> str:
    if not value:
        raise InvalidArgument("MISSING_FIELD", f"{field} is required")
    if len(value) > max_len:
        raise InvalidArgument("FIELD_TOO_LONG", f"{field} is longer than {max_len} characters")
    if not _ID.match(value):
        raise InvalidArgument(
            "MALFORMED_ID", f"{field} may contain only letters, digits, '.', '_', ':' and '-'"
        )
    return value


def check_amount(field: str, value: int, *, minimum: int = 1) -> int:
    if value < minimum:
        raise InvalidArgument(
            "AMOUNT_OUT_OF_RANGE", f"{field} must be at least {minimum}, got {value}"
        )
    if value > MAX_AMOUNT:
        raise InvalidArgument("AMOUNT_OUT_OF_RANGE", f"{field} must be at most {MAX_AMOUNT}")
    return value


def check_request_id(value: str) -> str:
    return check_id("request_id", value, max_len=128)


def check_period(field: str, value: str) -> str:
    """A settlement period's day stamp: "YYYY-MM-DD", a real calendar date."""
    if not value:
        raise InvalidArgument("MISSING_FIELD", f"{field} is required")
    try:
        if _DAY.fullmatch(value):
            date.fromisoformat(value)
            return value
    except ValueError:
        pass  # 2026-02-30 and the like
    raise InvalidArgument(
        "MALFORMED_PERIOD", f"{field} must be a calendar day YYYY-MM-DD, not {value!r}"
    )


@dataclass(frozen=True)
class Enroll:
    request_id: str
    member_id: str
    phone: str = ""
    display_name: str = ""
    referral_code: str = ""
    birth_month: int = 0
    # The API client enrolling her (its key id): part of the request, so only that client's
    # retry of this request id gets her wallet secret back (merchant_node/auth).
    client_id: str = ""

    def __post_init__(self) -> None:
        check_request_id(self.request_id)
        check_id("member_id", self.member_id)
        if not 0 <= self.birth_month <= 12:
            raise InvalidArgument(
                "MALFORMED_BIRTH_MONTH", "birth_month must be 1-12 (0: not given)"
            )
        if self.phone and not _PHONE.match(self.phone):
            raise InvalidArgument(
                "MALFORMED_PHONE", "phone must be 3-19 digits with an optional '+'"
            )
        if len(self.display_name) > 100:
            raise InvalidArgument("FIELD_TOO_LONG", "display_name is longer than 100 characters")
        if self.referral_code:
            check_id("referral_code", self.referral_code, max_len=16)


@dataclass(frozen=True)
class Earn:
    request_id: str
    member_id: str
    order_id: str
    amount_fen: int
    channel: str
    occurred_at: datetime | None
    line_items: tuple[LineItem, ...] = ()
    points_paid_fen: int = 0

    def __post_init__(self) -> None:
        check_request_id(self.request_id)
        check_id("member_id", self.member_id)
        check_id("order_id", self.order_id)
        check_amount("amount_fen", self.amount_fen)
        if not 0 <= self.points_paid_fen <= self.amount_fen:
            raise InvalidArgument(
                "AMOUNT_OUT_OF_RANGE", "points_paid_fen must be between 0 and amount_fen"
            )
        if self.channel not in CHANNELS:
            raise InvalidArgument(
                "UNKNOWN_CHANNEL", f"channel must be one of {', '.join(CHANNELS)}"
            )
        total = 0
        for i, item in enumerate(self.line_items):
            check_id(f"line_items[{i}].sku", item.sku)
            if len(item.category) > 64:
                raise InvalidArgument("FIELD_TOO_LONG", f"line_items[{i}].category is too long")
            check_amount(f"line_items[{i}].quantity", item.quantity)
            check_amount(f"line_items[{i}].unit_price_fen", item.unit_price_fen, minimum=0)
            total += item.quantity * item.unit_price_fen
        if total > self.amount_fen:
            raise InvalidArgument(
                "LINE_ITEMS_EXCEED_AMOUNT",
                f"line items total {total} fen, more than amount_fen {self.amount_fen}",
            )


@dataclass(frozen=True)
class Redeem:
    request_id: str
    member_id: str
    order_id: str
    points: int = 0
    amount_fen: int = 0

    def __post_init__(self) -> None:
        check_request_id(self.request_id)
        check_id("member_id", self.member_id)
        check_id("order_id", self.order_id)
        if bool(self.points) == bool(self.amount_fen):
            raise InvalidArgument("MISSING_FIELD", "give exactly one of points or amount_fen")
        if self.points:
            check_amount("points", self.points)
        else:
            check_amount("amount_fen", self.amount_fen)


@dataclass(frozen=True)
class Refund:
    request_id: str
    order_id: str
    full: bool = False
    amount_fen: int = 0
    points: int = 0

    def __post_init__(self) -> None:
        check_request_id(self.request_id)
        check_id("order_id", self.order_id)
        if self.full:
            if self.amount_fen or self.points:
                raise InvalidArgument("MISSING_FIELD", "a full refund takes no amounts")
            return
        check_amount("partial.amount_fen", self.amount_fen, minimum=0)
        check_amount("partial.points", self.points, minimum=0)
        if not (self.amount_fen or self.points):
            raise InvalidArgument(
                "MISSING_FIELD", "give full, or a partial refund with amount_fen or points above 0"
            )


@dataclass(frozen=True)
class PlaceHold:
    """Reserve a member's points for a cross-merchant redemption (the exchange's call)."""

    request_id: str
    hold_ref: str
    member_id: str
    points: int
    ttl_seconds: int
    consent_code: str = ""
    acquirer_id: str = ""
    # What the member's code is bound to (merchant_node/ledger/consent.py): the most points she
    # agreed to, the order (or ""), and this node's own merchant id, the issuer.
    consent_max_points: int = 0
    consent_order_id: str = ""
    issuer_id: str = ""

    def __post_init__(self) -> None:
        check_request_id(self.request_id)
        check_id("hold_ref", self.hold_ref)
        check_id("member_id", self.member_id)
        check_amount("points", self.points)
        if self.acquirer_id:
            check_id("acquirer_id", self.acquirer_id)
        if self.consent_max_points:
            check_amount("consent_max_points", self.consent_max_points)
        if self.consent_order_id:
            check_id("consent_order_id", self.consent_order_id)
        code = self.consent_code
        if code and not (len(code) <= 10 and code.isascii() and code.isdigit()):
            raise InvalidArgument("MALFORMED_CONSENT", "consent_code is the wallet's 6-digit code")
        if not 1 <= self.ttl_seconds <= 7 * 24 * 3600:
            raise InvalidArgument("TTL_OUT_OF_RANGE", "ttl_seconds must be between 1 and 604800")


@dataclass(frozen=True)
class PostHold:
    """Spend a held amount (the exchange's call), booked in the exchange's settlement period."""

    request_id: str
    hold_ref: str
    settlement_period: str = ""  # empty from an exchange that predates periods

    def __post_init__(self) -> None:
        check_request_id(self.request_id)
        check_id("hold_ref", self.hold_ref)
        if self.settlement_period:
            check_period("settlement_period", self.settlement_period)
