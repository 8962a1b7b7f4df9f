"""The program document: loading, validation that names every error, canonical form and digest."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from coalition_kernel.errors import InvalidArgument
from merchant_node.rules.program import (
    ProgramInvalid,
    TimeWindow,
    load_document,
    load_program,
    parse_program,
)

DOCS = Path(__file__).parents[3] / "docs" / "rules.md"


def docs_program_text() -> str:
    match = re.search(r"```yaml\n(.*?)```", DOCS.read_text(), re.S)
    assert match
    return match.group(1)


def errors_of(document: dict[str, Any]) -> list[str]:
    with pytest.raises(ProgramInvalid) as refused:
        parse_program(document)
    return refused.value.errors


def test_the_documented_program_is_valid_and_survives_a_round_trip():
    program = load_program(docs_program_text())
    assert program.pending_days == 7
    assert [rule.id for rule in program.rules][:2] == ["spend_tiers", "category_b_double"]
    again = parse_program(program.to_document())
    assert again == program
    assert again.digest() == program.digest()


def test_digest_is_the_same_for_yaml_and_json_and_for_equal_ratios():
    yaml_text = "rules: [{id: gold, type: tier_multiplier, tiers: {gold: 1.5}}]\ntiers: {measure: points_12m, levels: [{id: gold, threshold: 0}]}"
    json_text = json.dumps(
        {
            "tiers": {"measure": "points_12m", "levels": [{"id": "gold", "threshold": 0}]},
            "rules": [
                {"type": "tier_multiplier", "id": "gold", "enabled": True, "tiers": {"gold": "3/2"}}
            ],
        }
    )
    assert load_program(yaml_text).digest() == load_program(json_text).digest()


def test_digest_changes_when_a_rule_changes():
    one = load_program("rules: [{id: fp, type: first_purchase_bonus, points: 100}]")
    other = load_program("rules: [{id: fp, type: first_purchase_bonus, points: 101}]")
    assert len(one.digest()) == 64 and one.digest() != other.digest()


def test_an_empty_document_is_the_base_rate_alone():
    program = load_program("{}")
    assert program.rules == () and program.base.points_per_yuan is None
    assert program.base.rounding == "floor" and program.timezone == "Asia/Shanghai"


def test_yaml_decimals_and_clock_times_are_read_exactly_not_as_floats():
    document = load_document("m: 1.5\nr: 0.1\nh: 18:00\nn: 7")
    assert document == {"m": "1.5", "r": "0.1", "h": "18:00", "n": 7}
    program = load_program(
        "rules: [{id: w, type: time_window, multiplier: 1.5, hours: {from: 18:00, to: 22:00}}]"
    )
    rule = program.rules[0]
    assert isinstance(rule, TimeWindow) and rule.multiplier == Fraction(3, 2)
    assert rule.hours is not None and rule.hours.from_.hour == 18


def test_json_decimals_are_read_exactly():
    assert load_document('{"base": {"points_per_yuan": 0.1}}') == {
        "base": {"points_per_yuan": "0.1"}
    }
    assert load_program('{"base": {"points_per_yuan": 0.1}}').base.points_per_yuan == Fraction(
        1, 10
    )


def test_a_python_float_is_refused():
    assert errors_of({"base": {"points_per_yuan": 1.5}}) == [
        'base.points_per_yuan: must be a positive exact number like "2" or "1.5"'
    ]


@pytest.mark.parametrize(
    "text",
    ["base: {rounding: floor}\nbase: {rounding: ceil}", '{"pending_days": 1, "pending_days": 2}'],
)
def test_duplicate_keys_are_refused(text):
    with pytest.raises(ProgramInvalid, match="duplicate key"):
        load_document(text)


@pytest.mark.parametrize("text", ["- 1\n- 2", "just text", "{not json", '{"a": NaN}'])
def test_a_document_that_is_not_a_mapping_is_refused(text):
    with pytest.raises(ProgramInvalid, match="^document: "):
        load_document(text)


def test_program_invalid_is_an_invalid_argument_with_a_stable_reason():
    with pytest.raises(InvalidArgument) as refused:
        parse_program({"pending_days": -1})
    assert refused.value.reason == "PROGRAM_INVALID"
    assert "pending_days: must be greater than or equal to 0" in refused.value.message


def test_a_program_with_many_errors_is_refused_with_all_of_them_named_by_rule_and_field():
    document = load_document(
        """
base: {points_per_yuan: "0", rounding: down}
rules:
  - {id: spend_tiers, type: spend_brackets, mode: marginal, brackets: [{up_to_yuan: 1000, points_per_yuan: "1"}, {up_to_yuan: 1000, points_per_yuan: "1.5"}, {points_per_yuan: "2"}]}
  - {id: member_tier, type: tier_multiplier, tiers: {silver: "1", platinum: "2"}}
  - {id: weekend_double, type: time_window, multiplier: "two", days_of_week: [sat, sunday], budget_pool: summer_pool}
  - {id: gold_bonus, type: bogus}
  - {id: first_order, type: first_purchase_bonus, points: 1.5, note: hi}
  - {id: weekend_double, type: birthday_multiplier, multiplier: "0.5"}
  - {id: cap_per_order, type: first_purchase_bonus, points: true}
budget_pools: [{id: spring_pool, points: 100}, {id: spring_pool, points: 200}]
caps: {per_order: "5000"}
tiers: {measure: spend_12m, levels: [{id: silver, threshold: 100}, {id: gold, threshold: 50}], evaluation_day: "02-30"}
timezone: Mars/Olympus
"""
    )
    assert sorted(errors_of(document)) == sorted(
        [
            'base.points_per_yuan: must be a positive exact number like "2" or "1.5"',
            "base.rounding: must be 'floor', 'half_up' or 'ceil'",
            'timezone: must be an IANA time zone like "Asia/Shanghai"',
            "rules[0] (spend_tiers).brackets: brackets[1].up_to_yuan must exceed the one before",
            'rules[2] (weekend_double).multiplier: must be a positive exact number like "2" or "1.5"',
            "rules[2] (weekend_double).days_of_week[1]: must be 'mon', 'tue', 'wed', 'thu', 'fri', 'sat' or 'sun'",
            "rules[3] (gold_bonus).type: unknown rule type 'bogus'; expected one of: spend_brackets, category_multiplier, sku_multiplier, tier_multiplier, first_purchase_bonus, birthday_multiplier, time_window",
            "rules[4] (first_order).points: must be a whole number, not '1.5'",
            "rules[4] (first_order).note: unknown field",
            "rules[5] (weekend_double).multiplier: must be at least 1: a multiplier adds points, never removes them",
            "rules[6] (cap_per_order).points: must be a whole number, not True",
            "caps.per_order: must be a whole number, not '5000'",
            "tiers.levels: the first level's threshold must be 0: every member has a level",
            'tiers.evaluation_day: must be a month and day like "01-01"',
            "rules[5] (weekend_double).id: duplicates rules[2]",
            "budget_pools[1] (spring_pool).id: duplicates budget_pools[0]",
            "rules[1] (member_tier).tiers.platinum: no tier level 'platinum' is declared",
            "rules[2] (weekend_double).budget_pool: no budget pool 'summer_pool' is declared",
            "rules[6] (cap_per_order).id: is reserved for the engine's own lines",
        ]
    )


@pytest.mark.parametrize(
    ("document", "error"),
    [
        (
            {
                "rules": [
                    {
                        "id": "b",
                        "type": "spend_brackets",
                        "mode": "whole",
                        "brackets": [{"up_to_yuan": 10, "points_per_yuan": "1"}],
                    }
                ]
            },
            "rules[0] (b).brackets: the last bracket must be open-ended (no up_to_yuan)",
        ),
        (
            {
                "rules": [
                    {
                        "id": "b",
                        "type": "spend_brackets",
                        "mode": "whole",
                        "brackets": [{"points_per_yuan": "1"}, {"points_per_yuan": "2"}],
                    }
                ]
            },
            "rules[0] (b).brackets: only the last bracket may be open-ended",
        ),
        (
            {
                "rules": [
                    {"id": "b", "type": "spend_brackets", "brackets": [{"points_per_yuan": "1"}]}
                ]
            },
            "rules[0] (b).mode: required",
        ),
        ({"rules": [{"type": "first_purchase_bonus", "points": 5}]}, "rules[0].id: required"),
        ({"rules": [{"id": "x"}]}, "rules[0] (x).type: required"),
        (
            {"rules": [{"id": "Bad-Id", "type": "first_purchase_bonus", "points": 5}]},
            "rules[0] (Bad-Id).id: must be lower-case letters, digits and _, starting with a letter",
        ),
        (
            {"rules": [{"id": "w", "type": "time_window", "days_of_week": ["sat"]}]},
            "rules[0] (w): needs a multiplier, bonus_points or both",
        ),
        (
            {
                "rules": [
                    {
                        "id": "w",
                        "type": "time_window",
                        "bonus_points": 5,
                        "starts_at": "2026-10-08T00:00:00",
                        "ends_at": "2026-10-01T00:00:00",
                    }
                ]
            },
            "rules[0] (w): starts_at must be before ends_at",
        ),
        (
            {
                "rules": [
                    {
                        "id": "w",
                        "type": "time_window",
                        "bonus_points": 5,
                        "hours": {"from": "18:00", "to": "18:00"},
                    }
                ]
            },
            "rules[0] (w).hours: hours.from and hours.to must differ",
        ),
        (
            {
                "rules": [
                    {
                        "id": "w",
                        "type": "time_window",
                        "bonus_points": 5,
                        "hours": {"from": "25:00", "to": "18:00"},
                    }
                ]
            },
            'rules[0] (w).hours.from: must be a time of day like "18:00"',
        ),
        (
            {"rules": [{"id": "t", "type": "tier_multiplier", "tiers": {"gold": "2"}}]},
            "rules[0] (t).tiers.gold: no tier level 'gold' is declared",
        ),
        (
            {
                "rules": [
                    {"id": "c", "type": "category_multiplier", "categories": [], "multiplier": "2"}
                ]
            },
            "rules[0] (c).categories: must have at least 1 entry",
        ),
        (
            {
                "rules": [
                    {
                        "id": "c",
                        "type": "category_multiplier",
                        "categories": ["a"],
                        "multiplier": "100000",
                    }
                ]
            },
            "rules[0] (c).multiplier: must be at most 10000, in steps of 1/10000",
        ),
        (
            {
                "rules": [
                    {
                        "id": "c",
                        "type": "spend_brackets",
                        "mode": "whole",
                        "brackets": [{"points_per_yuan": "1"}],
                        "budget_pool": "p",
                    }
                ],
                "budget_pools": [{"id": "p", "points": 1}],
            },
            "rules[0] (c).budget_pool: unknown field",
        ),
        (
            {
                "tiers": {
                    "measure": "spend_12m",
                    "levels": [{"id": "silver", "threshold": 0}, {"id": "gold", "threshold": 0}],
                }
            },
            "tiers.levels: levels[1].threshold must exceed the one before",
        ),
        (
            {
                "tiers": {
                    "measure": "spend_12m",
                    "levels": [{"id": "silver", "threshold": 0, "upgrade_cost_points": 5}],
                }
            },
            "tiers.levels: the first level cannot be bought: everyone starts there",
        ),
        (
            {
                "tiers": {
                    "measure": "spend_12m",
                    "levels": [{"id": "s", "threshold": 0}, {"id": "s", "threshold": 9}],
                }
            },
            "tiers.levels: level ids must be unique",
        ),
        (
            {
                "engagement": {
                    "check_in": {"points": 5, "streak_bonuses": {"7": 30}, "cycle_days": 5}
                }
            },
            "engagement.check_in: a streak bonus falls after cycle_days and is never reached",
        ),
        (
            {"engagement": {"share": {"points": 5, "daily_limit": 3, "budget_pool": "nope"}}},
            "engagement.share.budget_pool: no budget pool 'nope' is declared",
        ),
        (
            {"exclusions": {"exclude_points_paid": "yes"}},
            "exclusions.exclude_points_paid: must be true or false",
        ),
    ],
)
def test_each_mistake_is_named_by_rule_and_field(document, error):
    assert errors_of(document) == [error]


def test_only_one_enabled_spend_brackets_rule_but_disabled_ones_may_wait():
    brackets = [{"points_per_yuan": "1"}]
    one = {"id": "a", "type": "spend_brackets", "mode": "whole", "brackets": brackets}
    two = {"id": "b", "type": "spend_brackets", "mode": "marginal", "brackets": brackets}
    assert errors_of({"rules": [one, two]}) == [
        "rules[1] (b): rules[0] (a) is already the enabled spend_brackets"
    ]
    assert len(parse_program({"rules": [one, {**two, "enabled": False}]}).rules) == 2


def test_time_window_dates_and_times_from_json_strings():
    program = parse_program(
        {
            "rules": [
                {
                    "id": "nd",
                    "type": "time_window",
                    "bonus_points": 50,
                    "dates": ["2026-10-01"],
                    "starts_at": "2026-09-30T00:00:00+08:00",
                    "ends_at": "2026-10-08T00:00:00+08:00",
                }
            ]
        }
    )
    assert parse_program(program.to_document()) == program


def test_local_days_follow_the_program_time_zone():
    program = parse_program({"timezone": "Asia/Shanghai"})
    start, end = program.day_bounds(date(2026, 3, 14))
    assert start.astimezone(UTC) == datetime(2026, 3, 13, 16, 0, tzinfo=UTC)
    assert end - start == timedelta(days=1)
    assert program.local(datetime(2026, 3, 13, 16, 30)).date() == date(2026, 3, 14)  # naive is UTC


def test_the_schema_has_one_spelling_per_field():
    hours = {"from_": "18:00", "to": "22:00"}
    assert errors_of(
        {"rules": [{"id": "w", "type": "time_window", "bonus_points": 1, "hours": hours}]}
    ) == [
        "rules[0] (w).hours.from: required",
        "rules[0] (w).hours.from_: unknown field",
    ]
