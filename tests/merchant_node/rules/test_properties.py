"""The engine's laws over random programs and purchases: points are never negative, never above
the caps, lines always sum to the total, and pools are never asked for more than they granted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from coalition_kernel.points import Rate
from merchant_node.rules.base import LineItem, Purchase
from merchant_node.rules.engine import Evaluation, MemberContext, ProgramRules, apply_pool_grants
from merchant_node.rules.program import Program, parse_program


@dataclass(frozen=True)
class PaidPartlyWithPoints(Purchase):
    """Purchase with the proposed `points_paid_fen` field (default 0)."""

    points_paid_fen: int = 0


RATIOS = st.sampled_from(["1", "1.5", "2", "1/3", "0.01", "7/4", "3", "10"])
MULTIPLIERS = st.sampled_from(["1", "1.25", "1.5", "2", "5/3", "3"])
CATEGORIES = st.sampled_from(["a", "b", "gift_card"])
POOLS = st.sampled_from([None, "p1", "p2"])
TIER_LEVELS = {
    "measure": "points_12m",
    "levels": [{"id": "silver", "threshold": 0}, {"id": "gold", "threshold": 10}],
}


@st.composite
def brackets(draw: st.DrawFn) -> dict[str, Any]:
    bounds = sorted(draw(st.sets(st.integers(1, 10_000), max_size=3)))
    rates = [draw(RATIOS) for _ in range(len(bounds) + 1)]
    rows: list[dict[str, Any]] = [
        {"up_to_yuan": b, "points_per_yuan": r} for b, r in zip(bounds, rates, strict=False)
    ]
    return {
        "type": "spend_brackets",
        "mode": draw(st.sampled_from(["whole", "marginal"])),
        "brackets": rows + [{"points_per_yuan": rates[-1]}],
    }


def pooled(kind: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    return POOLS.map(lambda pool: {**kind, **({"budget_pool": pool} if pool else {})})


RULES = st.one_of(
    brackets(),
    st.builds(
        lambda m, c: {"type": "category_multiplier", "categories": [c], "multiplier": m},
        MULTIPLIERS,
        CATEGORIES,
    ).flatmap(pooled),
    st.builds(
        lambda m: {"type": "sku_multiplier", "skus": ["S1"], "multiplier": m}, MULTIPLIERS
    ).flatmap(pooled),
    st.builds(lambda m: {"type": "tier_multiplier", "tiers": {"gold": m}}, MULTIPLIERS).flatmap(
        pooled
    ),
    st.builds(lambda n: {"type": "first_purchase_bonus", "points": n}, st.integers(1, 500)).flatmap(
        pooled
    ),
    st.builds(lambda m: {"type": "birthday_multiplier", "multiplier": m}, MULTIPLIERS).flatmap(
        pooled
    ),
    st.builds(
        lambda m, bonus, days: {
            "type": "time_window",
            "multiplier": m,
            "bonus_points": bonus,
            "days_of_week": days,
        },
        MULTIPLIERS,
        st.integers(1, 300),
        st.lists(st.sampled_from(["mon", "sat", "sun"]), max_size=2),
    ).flatmap(pooled),
)


@st.composite
def programs(draw: st.DrawFn) -> Program:
    rules = draw(st.lists(RULES, max_size=6))
    seen_brackets = False
    for i, rule in enumerate(rules):
        rule["id"] = f"r{i}"
        if rule["type"] == "spend_brackets":
            rule["enabled"], seen_brackets = not seen_brackets, True
    caps = {
        key: draw(st.integers(1, 20_000))
        for key in ("per_order", "per_member_per_day")
        if draw(st.booleans())
    }
    return parse_program(
        {
            "base": {
                "points_per_yuan": draw(RATIOS),
                "rounding": draw(st.sampled_from(["floor", "half_up", "ceil"])),
            },
            "exclusions": {"categories": ["gift_card"], "exclude_points_paid": draw(st.booleans())},
            "rules": rules,
            "caps": caps,
            "budget_pools": [{"id": "p1", "points": 100}, {"id": "p2", "points": 100}],
            "tiers": TIER_LEVELS,
        }
    )


ITEMS = st.lists(
    st.builds(
        LineItem,
        st.sampled_from(["S1", "S2"]),
        CATEGORIES,
        st.integers(0, 5),
        st.integers(0, 100_000),
    ),
    max_size=4,
)


@st.composite
def purchases(draw: st.DrawFn) -> Purchase:
    items = tuple(draw(ITEMS))
    listed = sum(item.quantity * item.unit_price_fen for item in items)
    amount = draw(st.integers(0, 2_000_000)) if not items else draw(st.integers(0, listed + 10_000))
    when = draw(st.datetimes(datetime(2026, 1, 1), datetime(2027, 1, 1), timezones=st.just(UTC)))
    return PaidPartlyWithPoints(
        "m", "o", amount, "POS", when, items, draw(st.integers(0, amount + 1))
    )


MEMBERS = st.builds(
    MemberContext,
    tier=st.sampled_from([None, "silver", "gold"]),
    first_purchase=st.booleans(),
    birth_month=st.one_of(st.none(), st.integers(1, 12)),
    earned_today=st.integers(0, 30_000),
)


def assert_laws(program: Program, member: MemberContext, evaluation: Evaluation) -> None:
    assert evaluation.points >= 0
    assert sum(line.points for line in evaluation.lines) == evaluation.points
    if program.caps.per_order is not None:
        assert evaluation.points <= program.caps.per_order
    if program.caps.per_member_per_day is not None:
        assert evaluation.points <= max(0, program.caps.per_member_per_day - member.earned_today)
    by_rule = {line.rule_id: line.points for line in evaluation.lines}
    for draw in evaluation.pool_draws:
        assert 0 < draw.points <= by_rule[draw.rule_id]
    assert sum(draw.points for draw in evaluation.pool_draws) <= evaluation.points


@settings(max_examples=300, deadline=None)
@given(
    programs(),
    purchases(),
    MEMBERS,
    st.dictionaries(st.sampled_from(["p1", "p2"]), st.integers(0, 400)),
)
def test_points_are_never_negative_never_above_caps_and_lines_sum_to_the_total(
    program, purchase, member, granted
):
    evaluation = ProgramRules(program, "prop").evaluate(
        purchase, Rate(1, Fraction(1), Fraction(1)), member
    )
    assert_laws(program, member, evaluation)
    after = apply_pool_grants(evaluation, granted)
    assert_laws(program, member, after)
    assert after.points <= evaluation.points
    for pool in ("p1", "p2"):
        assert sum(d.points for d in after.pool_draws if d.pool_id == pool) <= granted.get(pool, 0)


@settings(max_examples=100, deadline=None)
@given(programs())
def test_the_canonical_document_parses_back_to_the_same_program_and_digest(program):
    again = parse_program(program.to_document())
    assert again == program and again.digest() == program.digest()
