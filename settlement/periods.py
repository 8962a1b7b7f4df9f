"""Settlement periods: which local calendar day, ISO week or month a moment belongs to.

The exchange stamps every clearing record with the calendar day of its capture in the
settlement time zone (`clearing_records.settlement_period`, e.g. "2026-11-24"), so a period is
a run of whole local days and its records are found by those day stamps, not by re-deriving
times. The calendar's zone must therefore be the exchange's `Settings.settlement_zone`.

Bounds are half-open, [start, end): a record captured at 23:59:59.999999 local time belongs to
that day, and one captured at 00:00:00 to the next. Midnights are computed through the zone's
rules, so a day that starts at 01:00 (a DST jump at midnight) or is 23 or 25 hours long is still
exactly one day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from coalition_kernel.errors import InvalidArgument

Cycle = Literal["daily", "weekly", "monthly"]

_FORMATS = {
    "daily": re.compile(r"^(\d{4})-(\d{2})-(\d{2})\Z"),
    "weekly": re.compile(r"^(\d{4})-W(\d{2})\Z"),
    "monthly": re.compile(r"^(\d{4})-(\d{2})\Z"),
}


@dataclass(frozen=True)
class Calendar:
    """How periods are cut. `grace` is how long after a period ends it may still receive
    records: a capture stamps its period before its transaction commits, so a record of
    23:59:59 can land a moment after midnight, and closing must wait for it."""

    zone: str = "Asia/Shanghai"
    cycle: Cycle = "daily"
    grace: timedelta = timedelta(minutes=5)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)

    def period_of(self, at: datetime) -> str:
        """The period a moment belongs to, e.g. "2026-11-24", "2026-W48" or "2026-11"."""
        if at.tzinfo is None:
            raise ValueError("naive datetime given to the settlement calendar; use an aware one")
        return self.period_containing(at.astimezone(self.tz).date())

    def period_containing(self, day: date) -> str:
        if self.cycle == "daily":
            return day.isoformat()
        if self.cycle == "weekly":
            year, week, _ = day.isocalendar()
            return f"{year:04d}-W{week:02d}"
        return f"{day.year:04d}-{day.month:02d}"

    def days(self, period: str) -> tuple[date, date]:
        """The first and last local day of a period (both inclusive)."""
        match = _FORMATS[self.cycle].match(period)
        if match is None:
            raise _malformed(period, self.cycle)
        numbers = [int(part) for part in match.groups()]
        try:
            if self.cycle == "daily":
                first = last = date(*numbers)
            elif self.cycle == "weekly":
                first = date.fromisocalendar(numbers[0], numbers[1], 1)
                last = first + timedelta(days=6)
            else:
                first = date(numbers[0], numbers[1], 1)
                following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
                last = following - timedelta(days=1)
        except ValueError as exc:
            raise _malformed(period, self.cycle) from exc
        return first, last

    def day_stamps(self, period: str) -> tuple[str, str]:
        """The first and last `settlement_period` day stamps of the period, for queries: ISO
        dates compare as strings in calendar order."""
        first, last = self.days(period)
        return first.isoformat(), last.isoformat()

    def bounds(self, period: str) -> tuple[datetime, datetime]:
        """[start, end) of the period, in UTC: Python adds and subtracts datetimes of one zone
        by wall clock, which is wrong across a DST change; UTC arithmetic never is."""
        first, last = self.days(period)
        return self._midnight(first), self._midnight(last + timedelta(days=1))

    def closes_at(self, period: str) -> datetime:
        """When the period may be closed: its end plus the grace for in-flight captures."""
        return self.bounds(period)[1] + self.grace

    def previous(self, period: str) -> str:
        first, _ = self.days(period)
        return self.period_containing(first - timedelta(days=1))

    def _midnight(self, day: date) -> datetime:
        # fold=0 reads a midnight skipped by a DST jump with the offset before the jump, which
        # lands on the day's real first instant (01:00 local).
        return datetime.combine(day, time(0), tzinfo=self.tz).astimezone(UTC)


def _malformed(period: str, cycle: str) -> InvalidArgument:
    return InvalidArgument("MALFORMED_PERIOD", f"{period!r} is not a {cycle} settlement period")


DAILY = Calendar()


def period_of(at: datetime) -> str:
    """The default (daily, Asia/Shanghai) period of a moment: the exchange's own stamp."""
    return DAILY.period_of(at)


def bounds(period: str) -> tuple[datetime, datetime]:
    """[start, end) of a default (daily, Asia/Shanghai) period, in UTC."""
    return DAILY.bounds(period)
