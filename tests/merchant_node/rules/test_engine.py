"""Earning under a program: hand-computed points per line, caps, pools, exclusions, rounding."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from coalition_kernel.points import Rate
from merchant_node.rules.base import EarningRules, LineItem, Purchase
from merchant_node.rules.engine import (
    Evaluation,
    MemberContext,
    PoolDraw,
    ProgramRules,
    apply_pool_grants,
)
from merchant_node.rules.program import load_program, parse_program

SHANGHAI = ZoneInfo("Asia/Shanghai")
SATURDAY = datetime(2026, 3, 14, 10, 30, tzinfo=SHANGHAI)
FRIDAY = datetime(2026, 3, 13, 10, 30, tzinfo=SHANGHAI)
NODE_RATE = Rate(1, Fraction(1), Fraction(1))
DOCS = Path(__file__).parents[3] / "docs" / "rules.md"


@dataclass(frozen=True)
class PaidPartlyWithPoints(Purchase):
    """Purchase with the proposed `points_paid_fen` field (default 0)."""

    points_paid_fen: int = 0


def purchase(
    fen: int, *items: LineItem, at: datetime = FRIDAY, points_paid_fen: int = 0
) -> Purchase:
    return PaidPartlyWithPoints("m1", "o1", fen, "POS", at, tuple(items), points_paid_fen)


def rules(**document: Any) -> ProgramRules:
    return ProgramRules(parse_program(document), "test-1")


def earn(program: ProgramRules, bought: Purchase, **member: Any) -> Evaluation:
    return program.evaluate(bought, NODE_RATE, MemberContext(**member))


def lines(evaluation: Evaluation) -> list[tuple[str, int]]:
    assert sum(line.points for line in evaluation.lines) == evaluation.points
    return [(line.rule_id, line.points) for line in evaluation.lines]


SEED_BRACKETS = [
    {"up_to_yuan": 1000, "points_per_yuan": "1"},
    {"up_to_yuan": 5000, "points_per_yuan": "1.5"},
    {"points_per_yuan": "2"},
]


def test_without_rules_the_node_rate_applies_and_rounds_down():
    assert lines(earn(rules(), purchase(12_899))) == [("base_rate", 128)]


def test_the_program_base_rate_replaces_the_node_rate():
    assert lines(earn(rules(base={"points_per_yuan": "2"}), purchase(10_000))) == [
        ("base_rate", 200)
    ]


def test_program_rules_fit_the_ledger_seam_and_name_their_version():
    seam: EarningRules = ProgramRules(parse_program({}))
    assert seam.version.startswith("program-")
    assert seam.evaluate(purchase(10_000), NODE_RATE).points == 100


@pytest.mark.parametrize(
    ("mode", "fen", "points"),
    [
        ("whole", 80_000, 800),
        ("marginal", 80_000, 800),
        ("whole", 100_000, 1000),  # 1000 yuan is still the first bracket
        ("marginal", 100_000, 1000),
        ("whole", 100_050, 1500),  # 1000.50 yuan x 1.5 = 1500.75
        ("marginal", 100_050, 1000),  # 1000 + 0.50 x 1.5 = 1000.75
        ("whole", 300_000, 4500),  # 3000 x 1.5
        ("marginal", 300_000, 4000),  # 1000 x 1 + 2000 x 1.5
        ("whole", 600_000, 12000),  # 6000 x 2
        ("marginal", 600_000, 9000),  # 1000 + 4000 x 1.5 + 1000 x 2
    ],
)
def test_seed_spend_brackets_in_both_modes(mode, fen, points):
    program = rules(
        rules=[{"id": "tiers", "type": "spend_brackets", "mode": mode, "brackets": SEED_BRACKETS}]
    )
    assert lines(earn(program, purchase(fen))) == [("tiers", points)]


def test_a_disabled_spend_brackets_rule_leaves_the_base_rate():
    program = rules(
        rules=[
            {
                "id": "t",
                "type": "spend_brackets",
                "mode": "whole",
                "enabled": False,
                "brackets": SEED_BRACKETS,
            }
        ]
    )
    assert lines(earn(program, purchase(300_000))) == [("base_rate", 3000)]


TIERED: dict[str, Any] = {
    "rules": [
        {"id": "member_tier", "type": "tier_multiplier", "tiers": {"silver": "1", "gold": "1.5"}}
    ],
    "tiers": {
        "measure": "spend_12m",
        "levels": [{"id": "silver", "threshold": 0}, {"id": "gold", "threshold": 500_000}],
    },
}


@pytest.mark.parametrize(
    ("tier", "expected"),
    [
        ("gold", [("base_rate", 200), ("member_tier", 100)]),
        ("silver", [("base_rate", 200)]),  # x1 adds nothing, so no line
        (None, [("base_rate", 200)]),
    ],
)
def test_seed_gold_earns_one_and_a_half_per_yuan_and_silver_one(tier, expected):
    assert lines(earn(rules(**TIERED), purchase(20_000), tier=tier)) == expected


WEEKEND: dict[str, Any] = {
    "rules": [
        {
            "id": "weekend_double",
            "type": "time_window",
            "multiplier": "2",
            "days_of_week": ["sat", "sun"],
        }
    ]
}


def test_seed_weekend_double():
    program = rules(**WEEKEND)
    assert lines(earn(program, purchase(15_000, at=SATURDAY))) == [
        ("base_rate", 150),
        ("weekend_double", 150),
    ]
    assert lines(earn(program, purchase(15_000, at=FRIDAY))) == [("base_rate", 150)]


def test_the_weekend_is_the_program_time_zones_weekend():
    friday_utc_saturday_shanghai = datetime(2026, 3, 13, 16, 30, tzinfo=UTC)
    assert earn(rules(**WEEKEND), purchase(15_000, at=friday_utc_saturday_shanghai)).points == 300
    naive_utc = datetime(2026, 3, 13, 15, 59)  # 23:59 Friday in Shanghai
    assert earn(rules(**WEEKEND), purchase(15_000, at=naive_utc)).points == 150


def test_seed_birthday_month_double():
    program = rules(
        rules=[{"id": "birthday_double", "type": "birthday_multiplier", "multiplier": "2"}]
    )
    assert lines(earn(program, purchase(8_800), birth_month=3)) == [
        ("base_rate", 88),
        ("birthday_double", 88),
    ]
    assert lines(earn(program, purchase(8_800), birth_month=4)) == [("base_rate", 88)]
    assert lines(earn(program, purchase(8_800))) == [("base_rate", 88)]


def test_first_purchase_bonus_only_on_the_first_purchase_that_earns():
    program = rules(
        exclusions={"categories": ["gift_card"]},
        rules=[{"id": "first_order", "type": "first_purchase_bonus", "points": 100}],
    )
    assert lines(earn(program, purchase(5_000), first_purchase=True)) == [
        ("base_rate", 50),
        ("first_order", 100),
    ]
    assert lines(earn(program, purchase(5_000))) == [("base_rate", 50)]
    gift_card_only = purchase(5_000, LineItem("GC", "gift_card", 1, 5_000))
    assert lines(earn(program, gift_card_only, first_purchase=True)) == [("base_rate", 0)]


def test_category_and_sku_multipliers_cover_their_share_of_the_items():
    program = rules(
        rules=[
            {
                "id": "category_b_double",
                "type": "category_multiplier",
                "categories": ["b"],
                "multiplier": "2",
            },
            {"id": "featured", "type": "sku_multiplier", "skus": ["TEA"], "multiplier": "3"},
        ]
    )
    bought = purchase(
        40_000,
        LineItem("X", "b", 1, 10_000),
        LineItem("Y", "a", 2, 12_500),
        LineItem("TEA", "a", 1, 5_000),
    )
    # base 400; B: 1 x 400 x 100/400 = 100; TEA: 2 x 400 x 50/400 = 100
    assert lines(earn(program, bought)) == [
        ("base_rate", 400),
        ("category_b_double", 100),
        ("featured", 100),
    ]
    assert lines(earn(program, purchase(40_000))) == [("base_rate", 400)]  # no items, no share


def test_a_discount_is_spread_over_the_items():
    program = rules(
        rules=[{"id": "b2", "type": "category_multiplier", "categories": ["b"], "multiplier": "2"}]
    )
    bought = purchase(
        8_000, LineItem("X", "b", 1, 5_000), LineItem("Y", "a", 1, 5_000)
    )  # 20 yuan off
    assert lines(earn(program, bought)) == [("base_rate", 80), ("b2", 40)]


def test_gift_cards_and_the_part_paid_with_points_earn_nothing():
    program = rules(exclusions={"categories": ["gift_card"], "skus": ["DEPOSIT"]})
    bought = purchase(
        30_000,
        LineItem("SHOE", "shoes", 1, 20_000),
        LineItem("GC", "gift_card", 1, 5_000),
        LineItem("DEPOSIT", "fees", 1, 5_000),
        points_paid_fen=6_000,
    )
    assert lines(earn(program, bought)) == [("base_rate", 140)]  # 300 - 50 - 50 - 60 yuan


def test_the_points_paid_part_earns_when_the_program_says_so():
    program = rules(exclusions={"exclude_points_paid": False})
    assert earn(program, purchase(30_000, points_paid_fen=6_000)).points == 300


def test_an_order_paid_wholly_with_points_earns_nothing_and_never_goes_negative():
    program = rules(**WEEKEND)
    assert lines(earn(program, purchase(5_000, at=SATURDAY, points_paid_fen=9_000))) == [
        ("base_rate", 0)
    ]


@pytest.mark.parametrize(
    ("rounding", "fen", "expected"),
    [
        # 10.50 yuan: base 10.5; gold adds 0.5 x 10.5 = 5.25; each line rounds on its own
        ("floor", 1_050, [("base_rate", 10), ("member_tier", 5)]),
        ("half_up", 1_050, [("base_rate", 11), ("member_tier", 5)]),
        ("ceil", 1_050, [("base_rate", 11), ("member_tier", 6)]),
        # 10.49 yuan: base 10.49; gold adds 5.245
        ("floor", 1_049, [("base_rate", 10), ("member_tier", 5)]),
        ("half_up", 1_049, [("base_rate", 10), ("member_tier", 5)]),
        ("ceil", 1_049, [("base_rate", 11), ("member_tier", 6)]),
    ],
)
def test_rounding_modes_apply_to_each_line(rounding, fen, expected):
    program = rules(base={"rounding": rounding}, **TIERED)
    assert lines(earn(program, purchase(fen), tier="gold")) == expected


def test_multipliers_add_rather_than_compound():
    program = rules(rules=TIERED["rules"] + WEEKEND["rules"], tiers=TIERED["tiers"])
    evaluation = earn(program, purchase(10_000, at=SATURDAY), tier="gold")
    assert lines(evaluation) == [("base_rate", 100), ("member_tier", 50), ("weekend_double", 100)]


def test_per_order_cap_cuts_with_a_negative_line():
    program = rules(caps={"per_order": 5_000}, **WEEKEND)
    evaluation = earn(program, purchase(400_000, at=SATURDAY))
    assert lines(evaluation) == [
        ("base_rate", 4000),
        ("weekend_double", 4000),
        ("cap_per_order", -3000),
    ]
    assert evaluation.points == 5_000


def test_daily_cap_counts_what_the_member_already_earned_today():
    program = rules(caps={"per_order": 5_000, "per_member_per_day": 20_000})
    assert lines(earn(program, purchase(300_000), earned_today=18_000)) == [
        ("base_rate", 3000),
        ("cap_per_member_per_day", -1000),
    ]
    assert lines(earn(program, purchase(900_000), earned_today=16_000)) == [
        ("base_rate", 9000),
        ("cap_per_order", -4000),
        ("cap_per_member_per_day", -1000),
    ]
    assert earn(program, purchase(300_000), earned_today=25_000).points == 0


POOLED: dict[str, Any] = {
    "budget_pools": [{"id": "spring_pool", "points": 1_000_000}],
    "rules": [
        {"id": "member_tier", "type": "tier_multiplier", "tiers": {"gold": "1.5"}},
        {
            "id": "weekend_double",
            "type": "time_window",
            "multiplier": "2",
            "days_of_week": ["sat"],
            "budget_pool": "spring_pool",
        },
        {
            "id": "weekend_bonus",
            "type": "time_window",
            "bonus_points": 30,
            "days_of_week": ["sat"],
            "budget_pool": "spring_pool",
        },
    ],
    "tiers": {
        "measure": "points_12m",
        "levels": [{"id": "silver", "threshold": 0}, {"id": "gold", "threshold": 1}],
    },
}


def test_pooled_lines_report_what_they_draw():
    evaluation = earn(rules(**POOLED), purchase(10_000, at=SATURDAY), tier="gold")
    assert lines(evaluation) == [
        ("base_rate", 100),
        ("member_tier", 50),
        ("weekend_double", 100),
        ("weekend_bonus", 30),
    ]
    assert evaluation.pool_draws == [
        PoolDraw("weekend_double", "spring_pool", 100),
        PoolDraw("weekend_bonus", "spring_pool", 30),
    ]


def test_caps_cut_pooled_lines_first_so_pools_pay_only_for_points_kept():
    evaluation = earn(
        rules(caps={"per_order": 200}, **POOLED), purchase(10_000, at=SATURDAY), tier="gold"
    )
    assert evaluation.points == 200  # 280 - 80: weekend_bonus 30 and 50 of weekend_double
    assert evaluation.pool_draws == [PoolDraw("weekend_double", "spring_pool", 50)]
    deep = earn(
        rules(caps={"per_order": 120}, **POOLED), purchase(10_000, at=SATURDAY), tier="gold"
    )
    assert deep.points == 120 and deep.pool_draws == []  # then member_tier gives 30 of its 50


def test_pool_grants_cut_lines_to_the_budget_left():
    evaluation = earn(rules(**POOLED), purchase(10_000, at=SATURDAY), tier="gold")
    full = apply_pool_grants(evaluation, {"spring_pool": 130})
    assert full == evaluation
    partial = apply_pool_grants(evaluation, {"spring_pool": 110})
    assert lines(partial)[-1] == ("budget_pool:spring_pool", -20)
    assert partial.points == 260
    assert partial.pool_draws == [
        PoolDraw("weekend_double", "spring_pool", 100),
        PoolDraw("weekend_bonus", "spring_pool", 10),
    ]
    empty = apply_pool_grants(evaluation, {})
    assert lines(empty)[-1] == ("budget_pool:spring_pool", -130)
    assert empty.points == 150 and empty.pool_draws == []
    assert (
        apply_pool_grants(evaluation, {"spring_pool": 10**9}) == evaluation
    )  # never more than asked


def test_time_window_hours_dates_and_campaign_dates():
    document = {
        "rules": [
            {
                "id": "evenings",
                "type": "time_window",
                "bonus_points": 10,
                "hours": {"from": "18:00", "to": "22:00"},
            },
            {
                "id": "late",
                "type": "time_window",
                "bonus_points": 1,
                "hours": {"from": "22:00", "to": "02:00"},
            },
            {
                "id": "holiday",
                "type": "time_window",
                "multiplier": "2",
                "days_of_week": ["sat", "sun"],
                "dates": ["2026-10-01"],
            },
            {
                "id": "golden_week",
                "type": "time_window",
                "bonus_points": 100,
                "starts_at": "2026-10-01T00:00:00",
                "ends_at": "2026-10-08T00:00:00",
            },
        ]
    }
    program = rules(**document)

    def at(month: int, day: int, hour: int, minute: int) -> list[str]:
        when = datetime(2026, month, day, hour, minute, tzinfo=SHANGHAI)
        evaluation = earn(program, purchase(1_000, at=when))
        return [line.rule_id for line in evaluation.lines[1:]]

    assert at(10, 1, 18, 0) == ["evenings", "holiday", "golden_week"]  # a Thursday holiday
    assert at(10, 2, 22, 0) == ["late", "golden_week"]
    assert at(10, 8, 1, 59) == ["late"]  # past midnight; the campaign ended at 00:00
    assert at(9, 30, 21, 59) == ["evenings"]
    assert at(10, 3, 2, 0) == ["holiday", "golden_week"]  # a Saturday


def test_disabled_rules_earn_nothing():
    program = rules(rules=[{**WEEKEND["rules"][0], "enabled": False}])
    assert lines(earn(program, purchase(15_000, at=SATURDAY))) == [("base_rate", 150)]


def test_pending_days_are_reported_for_the_ledger():
    assert earn(rules(pending_days=7), purchase(100)).pending_days == 7
    assert earn(rules(), purchase(100)).pending_days == 0


def test_the_documented_worked_example():
    text = re.search(r"```yaml\n(.*?)```", DOCS.read_text(), re.S)
    assert text
    program = ProgramRules(load_program(text.group(1)), "docs")
    bought = purchase(
        135_000,
        LineItem("B-300", "category_b", 1, 30_000),
        LineItem("RICE", "groceries", 2, 40_000),
        LineItem("SKU-TEA-001", "tea", 1, 5_000),
        LineItem("GC-200", "gift_card", 1, 20_000),
        at=SATURDAY,
        points_paid_fen=5_000,
    )
    evaluation = earn(program, bought, tier="gold")
    assert lines(evaluation) == [
        ("spend_tiers", 1150),
        ("category_b_double", 300),
        ("featured_tea", 100),
        ("member_tier", 575),
        ("weekend_double", 1150),
    ]
    assert evaluation.pool_draws == [PoolDraw("weekend_double", "spring_pool", 1150)]
    assert evaluation.pending_days == 7
    capped = earn(program, bought, tier="gold", earned_today=18_000)
    assert lines(capped)[-1] == ("cap_per_member_per_day", -1275)
    assert capped.points == 2000 and capped.pool_draws == []
    assert [line.points for line in capped.lines][3] == 575  # shown uncut; the cut line says it
