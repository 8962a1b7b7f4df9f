"""Tier levels: qualification, immediate upgrades, graceful downgrades, upgrades bought with points."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from coalition_kernel.errors import FailedPrecondition, InvalidArgument
from merchant_node.rules.program import Tiers
from merchant_node.rules.tiers import (
    Progress,
    next_evaluation,
    on_activity,
    on_evaluation,
    progress,
    qualifying_level,
    upgrade_by_points,
)

TIERS = Tiers.model_validate(
    {
        "measure": "spend_12m",
        "levels": [
            {"id": "silver", "threshold": 0},
            {"id": "gold", "threshold": 500_000, "upgrade_cost_points": 1000},
            {"id": "platinum", "threshold": 2_000_000},
        ],
        "grace_days": 30,
        "evaluation_day": "01-01",
    }
)
NEW_YEAR = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("spend_fen", "level"),
    [
        (0, "silver"),
        (-5, "silver"),
        (499_999, "silver"),
        (500_000, "gold"),
        (1_999_999, "gold"),
        (2_000_000, "platinum"),
    ],
)
def test_qualifying_level_is_the_highest_threshold_reached(spend_fen, level):
    assert qualifying_level(TIERS, spend_fen) == level


def test_upgrades_are_immediate_and_activity_never_downgrades():
    assert on_activity(TIERS, "silver", "gold") == "gold"
    assert on_activity(TIERS, "gold", "silver") == "gold"
    assert on_activity(TIERS, "gold", "gold") == "gold"


def test_a_member_who_still_qualifies_keeps_the_level_and_any_grace_is_lifted():
    assert on_evaluation(TIERS, "gold", "gold", None, NEW_YEAR) == ("gold", None)
    assert on_evaluation(TIERS, "gold", "platinum", None, NEW_YEAR) == ("platinum", None)
    in_grace = NEW_YEAR + timedelta(days=30)
    assert on_evaluation(TIERS, "gold", "gold", in_grace, NEW_YEAR + timedelta(days=10)) == (
        "gold",
        None,
    )


def test_a_downgrade_waits_for_the_grace_period():
    level, grace_until = on_evaluation(TIERS, "platinum", "silver", None, NEW_YEAR)
    assert (level, grace_until) == ("platinum", NEW_YEAR + timedelta(days=30))
    assert grace_until is not None
    assert on_evaluation(
        TIERS, "platinum", "silver", grace_until, grace_until - timedelta(seconds=1)
    ) == (
        "platinum",
        grace_until,
    )
    # straight to the level qualified for, not one step at a time
    assert on_evaluation(TIERS, "platinum", "silver", grace_until, grace_until) == ("silver", None)


def test_without_grace_days_the_downgrade_is_at_once():
    no_grace = TIERS.model_copy(update={"grace_days": 0})
    assert on_evaluation(no_grace, "gold", "silver", None, NEW_YEAR) == ("silver", None)


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (date(2025, 12, 31), date(2026, 1, 1)),
        (date(2026, 1, 1), date(2026, 1, 1)),
        (date(2026, 1, 2), date(2027, 1, 1)),
    ],
)
def test_next_evaluation_day(today, expected):
    assert next_evaluation(TIERS, today) == expected


def test_seed_silver_to_gold_costs_1000_points():
    assert upgrade_by_points(TIERS, "silver", "gold") == 1000


@pytest.mark.parametrize(
    ("current", "target", "reason"),
    [
        ("gold", "silver", "NOT_AN_UPGRADE"),
        ("gold", "gold", "NOT_AN_UPGRADE"),
        ("gold", "platinum", "UPGRADE_NOT_FOR_SALE"),
    ],
)
def test_what_cannot_be_bought_is_refused(current, target, reason):
    with pytest.raises(FailedPrecondition) as refused:
        upgrade_by_points(TIERS, current, target)
    assert refused.value.reason == reason


def test_unknown_levels_are_refused():
    with pytest.raises(InvalidArgument) as refused:
        upgrade_by_points(TIERS, "bronze", "gold")
    assert refused.value.reason == "UNKNOWN_TIER"


def test_progress_names_the_next_level_and_what_is_missing():
    assert progress(TIERS, "silver", 300_000) == Progress("gold", 200_000, 0)
    assert progress(TIERS, "gold", 400_000) == Progress("platinum", 1_600_000, 100_000)
    assert progress(TIERS, "platinum", 2_500_000) == Progress(None, 0, 0)
