"""Settlement periods: local calendar days (or weeks, months), half-open, through DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coalition_kernel.errors import InvalidArgument
from settlement.periods import Calendar, bounds, period_of
from tests.settlement.support import examples

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_a_record_at_the_last_millisecond_of_a_local_day_belongs_to_that_day() -> None:
    last = datetime(2026, 11, 24, 23, 59, 59, 999000, tzinfo=SHANGHAI)
    assert period_of(last) == "2026-11-24"
    assert period_of(last + timedelta(milliseconds=1)) == "2026-11-25"
    # The same instants given in UTC: 16:00 UTC is midnight in Shanghai.
    assert period_of(datetime(2026, 11, 24, 15, 59, 59, 999999, tzinfo=UTC)) == "2026-11-24"
    assert period_of(datetime(2026, 11, 24, 16, 0, tzinfo=UTC)) == "2026-11-25"


def test_bounds_are_local_midnights_half_open() -> None:
    start, end = bounds("2026-11-24")
    assert start == datetime(2026, 11, 24, tzinfo=SHANGHAI)
    assert end == datetime(2026, 11, 25, tzinfo=SHANGHAI)
    assert start == datetime(2026, 11, 23, 16, 0, tzinfo=UTC) and start.tzinfo is UTC


def test_a_day_starts_at_its_first_real_instant_when_dst_skips_midnight() -> None:
    santiago = Calendar(zone="America/Santiago")
    start, end = santiago.bounds("2026-09-06")  # clocks jump from 00:00 to 01:00
    assert start == datetime(2026, 9, 6, 1, 0, tzinfo=ZoneInfo("America/Santiago"))
    assert end - start == timedelta(hours=23)
    start, end = santiago.bounds("2026-04-04")  # 23:00-24:00 happens twice
    assert end - start == timedelta(hours=25)
    assert santiago.period_of(end - timedelta(microseconds=1)) == "2026-04-04"


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError):
        period_of(datetime(2026, 11, 24, 12, 0))


def test_closing_waits_for_the_grace_after_the_end() -> None:
    calendar = Calendar(grace=timedelta(minutes=5))
    assert calendar.closes_at("2026-11-24") == datetime(2026, 11, 25, 0, 5, tzinfo=SHANGHAI)
    assert Calendar(zone="America/Santiago").closes_at("2026-09-05") == datetime(
        2026, 9, 6, 1, 5, tzinfo=ZoneInfo("America/Santiago")
    )


@pytest.mark.parametrize(
    ("cycle", "period", "first", "last"),
    [
        ("daily", "2026-11-24", "2026-11-24", "2026-11-24"),
        ("weekly", "2026-W48", "2026-11-23", "2026-11-29"),
        ("weekly", "2026-W01", "2025-12-29", "2026-01-04"),
        ("monthly", "2026-02", "2026-02-01", "2026-02-28"),
        ("monthly", "2024-12", "2024-12-01", "2024-12-31"),
    ],
)
def test_a_period_spans_whole_day_stamps(cycle, period: str, first: str, last: str) -> None:  # type: ignore[no-untyped-def]
    assert Calendar(cycle=cycle).day_stamps(period) == (first, last)


@pytest.mark.parametrize(
    ("cycle", "period"),
    [
        ("daily", "2026-13-01"),
        ("daily", "2026-11"),
        ("daily", "2026-11-24 "),
        ("weekly", "2026-W54"),
        ("weekly", "2026-11-24"),
        ("monthly", "2026-00"),
        ("monthly", "26-11"),
    ],
)
def test_malformed_periods_are_refused(cycle, period: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidArgument) as refused:
        Calendar(cycle=cycle).days(period)
    assert refused.value.reason == "MALFORMED_PERIOD"


def test_the_default_calendar_agrees_with_the_exchanges_stamp() -> None:
    # exchange/redemption.py _post: now.astimezone(ZoneInfo(settlement_zone)).date().isoformat()
    for hour in range(0, 48):
        now = datetime(2026, 11, 24, tzinfo=UTC) + timedelta(hours=hour, minutes=59, seconds=59)
        assert period_of(now) == now.astimezone(SHANGHAI).date().isoformat()


# Zones with DST, some switching at midnight (Santiago, Havana), one by 30 minutes (Lord Howe).
ZONES = [
    "Asia/Shanghai",
    "America/Santiago",
    "America/Havana",
    "Europe/London",
    "Australia/Lord_Howe",
]
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1), timezones=st.just(UTC)
)


@examples()
@given(
    at=instants,
    zone=st.sampled_from(ZONES),
    cycle=st.sampled_from(["daily", "weekly", "monthly"]),
)
def test_every_instant_lies_in_exactly_its_periods_bounds(at: datetime, zone: str, cycle) -> None:  # type: ignore[no-untyped-def]
    calendar = Calendar(zone=zone, cycle=cycle)
    period = calendar.period_of(at)
    start, end = calendar.bounds(period)
    assert start <= at < end
    assert calendar.period_of(start) == period
    assert calendar.period_of(end - timedelta(microseconds=1)) == period
    assert calendar.period_of(end) != period
    assert calendar.bounds(calendar.previous(period))[1] == start
