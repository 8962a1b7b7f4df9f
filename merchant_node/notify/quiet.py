"""Quiet hours: a daily local window in which nothing is delivered (e.g. "22:00-08:00")."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)\Z")
NONE = "none"  # a member's explicit "no quiet hours", as opposed to NULL: the merchant's


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time  # exclusive; earlier than `start` when the window spans midnight

    def contains(self, local: time) -> bool:
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


def parse_quiet_hours(text: str | None) -> QuietHours | None:
    """ "HH:MM-HH:MM" (24-hour, local), or None for "" / "none"; anything else is refused."""
    if not text or text == NONE:
        return None
    match = _WINDOW.match(text)
    if match is None:
        raise ValueError(f"quiet hours must look like '22:00-08:00', not {text!r}")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if (h1, m1) == (h2, m2):
        raise ValueError("quiet hours must not start and end at the same minute")
    return QuietHours(time(h1, m1), time(h2, m2))


def effective_quiet_hours(member_setting: str | None, merchant_default: str) -> QuietHours | None:
    """The member's own setting ("none" included) if there is one, else the merchant's."""
    return parse_quiet_hours(merchant_default if member_setting is None else member_setting)


def deliverable_at(at: datetime, quiet: QuietHours | None, zone: ZoneInfo) -> datetime:
    """`at` itself, or the end of the quiet hours `at` falls in (in the zone's wall clock)."""
    if quiet is None:
        return at
    local = at.astimezone(zone)
    if not quiet.contains(local.time()):
        return at
    day = local.date()
    if quiet.start > quiet.end and local.time() >= quiet.start:
        day += timedelta(days=1)  # before midnight: the window ends tomorrow morning
    return datetime.combine(day, quiet.end, zone).astimezone(at.tzinfo)
