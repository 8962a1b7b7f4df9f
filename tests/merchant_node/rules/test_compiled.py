"""The compiled engine gives the reference evaluation's answer, line for line, on random programs
and purchases (and on the ~50-rule program of bench/rules_bench.py)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from coalition_kernel.points import Rate
from merchant_node.rules.engine import ProgramRules
from merchant_node.rules.program import load_program, parse_program
from merchant_node.rules.reference import evaluate_reference
from tests.merchant_node.rules.test_properties import MEMBERS, RULES, TIER_LEVELS, purchases

RATE = Rate(1, Fraction(1), Fraction(1))


@st.composite
def windows(draw: st.DrawFn) -> dict[str, object]:
    """Time windows with every kind of bound, and control groups."""
    rule: dict[str, object] = {"type": "time_window", "bonus_points": draw(st.integers(1, 50))}
    if draw(st.booleans()):
        rule["multiplier"] = draw(st.sampled_from(["1.5", "2", "7/3"]))
    if draw(st.booleans()):
        rule["dates"] = [
            (datetime(2026, 1, 1) + timedelta(days=d)).date().isoformat()
            for d in draw(st.lists(st.integers(0, 365), max_size=3))
        ]
    if draw(st.booleans()):
        start, end = sorted(
            draw(st.lists(st.integers(0, 23 * 60 + 59), min_size=2, max_size=2, unique=True))
        )
        if draw(st.booleans()):
            start, end = end, start  # past midnight
        rule["hours"] = {
            "from": f"{start // 60:02d}:{start % 60:02d}",
            "to": f"{end // 60:02d}:{end % 60:02d}",
        }
    if draw(st.booleans()):
        day = datetime(2026, 1, 1) + timedelta(days=draw(st.integers(0, 300)))
        offset = draw(st.sampled_from(["", "+08:00", "Z"]))
        rule["starts_at"] = day.isoformat() + offset
        rule["ends_at"] = (day + timedelta(days=draw(st.integers(1, 60)))).isoformat() + offset
    if draw(st.booleans()):
        rule["control_group"] = {"percent": draw(st.integers(1, 99)), "salt": "c"}
    return rule


@st.composite
def programs(draw: st.DrawFn):  # type: ignore[no-untyped-def]
    rules = draw(st.lists(st.one_of(RULES, windows()), max_size=10))
    for i, rule in enumerate(rules):
        rule["id"] = f"r{i}"
        if draw(st.integers(0, 5)) == 0:
            rule["enabled"] = False
    brackets = [r for r in rules if r["type"] == "spend_brackets" and r.get("enabled", True)]
    for extra in brackets[1:]:
        extra["enabled"] = False  # one spend_brackets in force at most
    caps = {
        k: draw(st.integers(1, 20_000))
        for k in ("per_order", "per_member_per_day")
        if draw(st.booleans())
    }
    return parse_program(
        {
            "base": {
                "points_per_yuan": draw(st.sampled_from(["1", "1.5", "1/3", "0.01", "7/4"])),
                "rounding": draw(st.sampled_from(["floor", "half_up", "ceil"])),
            },
            "timezone": draw(st.sampled_from(["Asia/Shanghai", "UTC", "America/New_York"])),
            "exclusions": {
                "categories": ["gift_card"],
                "skus": draw(st.sampled_from([[], ["S2"]])),
                "exclude_points_paid": draw(st.booleans()),
            },
            "rules": rules,
            "caps": caps,
            "budget_pools": [{"id": "p1", "points": 100}, {"id": "p2", "points": 100}],
            "tiers": TIER_LEVELS,
        }
    )


@settings(max_examples=500, deadline=None)
@given(programs(), purchases(), MEMBERS, st.booleans())
def test_compiled_evaluation_equals_the_reference(program, purchase, member, naive) -> None:  # type: ignore[no-untyped-def]
    if naive:  # a naive time is taken as UTC by both
        purchase = type(purchase)(
            **{**purchase.__dict__, "occurred_at": purchase.occurred_at.replace(tzinfo=None)}
        )
    assert ProgramRules(program, "v").evaluate(purchase, RATE, member) == evaluate_reference(
        program, purchase, RATE, member
    )


def test_the_bench_program_compiled_equals_the_reference() -> None:
    sys.path.insert(0, str(Path(__file__).parents[3] / "bench"))
    import rules_bench

    moment = rules_bench.bench_moment(datetime(2026, 3, 20, tzinfo=UTC))
    program = load_program(rules_bench.program_yaml(moment))
    rules = ProgramRules(program, "v")
    for case in rules_bench.engine_cases(moment):
        compiled = rules.evaluate(case.purchase, RATE, case.member)
        assert compiled == evaluate_reference(program, case.purchase, RATE, case.member)
        assert len(compiled.lines) > 3  # the program really fires
