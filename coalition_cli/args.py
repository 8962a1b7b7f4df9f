"""Argument types for the CLI: a bad value is refused by argparse before anything is done,
with a message naming the flag and the expected form (`argument --at: "tomorrow" is not an ISO
time …`), exit status 2, no traceback."""

from __future__ import annotations

import argparse
import pathlib
import re
from dataclasses import dataclass
from datetime import datetime

ISO_EXAMPLE = "2026-03-14T10:30:00+08:00"


def iso_time(text: str) -> datetime:
    """An ISO 8601 time; without a UTC offset it is read as UTC (as before)."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f'"{text}" is not an ISO time (e.g. {ISO_EXAMPLE})'
        ) from None


def iso_time_with_offset(text: str) -> datetime:
    """An ISO 8601 time with its UTC offset (campaign ends: a wall clock needs its zone)."""
    value = iso_time(text)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f'"{text}" has no UTC offset (e.g. {ISO_EXAMPLE})')
    return value


@dataclass(frozen=True)
class LineItem:
    sku: str
    category: str
    quantity: int
    unit_price_fen: int


_ITEM = re.compile(r"^([^:]+):([^:]*):(\d+):(\d+)\Z")


def line_item(text: str) -> LineItem:
    """SKU:CATEGORY:QTY:UNIT_PRICE_FEN (category may be empty; quantities and prices whole)."""
    match = _ITEM.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(
            f'"{text}" is not SKU:CATEGORY:QTY:UNIT_PRICE_FEN (e.g. oolong-250g:tea:2:4800)'
        )
    sku, category, qty, price = match.groups()
    return LineItem(sku, category, int(qty), int(price))


def readable_file(text: str) -> pathlib.Path:
    """A file that exists and can be read now (not when the command is half done)."""
    path = pathlib.Path(text)
    try:
        with path.open("rb"):
            pass
    except OSError as err:
        raise argparse.ArgumentTypeError(f"{text}: {err.strerror}") from None
    return path


def time_zone(text: str) -> str:
    """An IANA time zone name (Asia/Shanghai)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(
            f'"{text}" is not an IANA time zone (e.g. Asia/Shanghai)'
        ) from None
    return text


def minutes(text: str) -> int:
    """A whole number of minutes, 0 or more."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f'"{text}" is not a whole number of minutes (0 or more)')
    return int(text)
