"""Segments, tags, dormant rules and churn causes: hand-computed expectations for each rule of
the seeds' default definitions, refusals of bad definitions, and the nightly SQL placement
agreeing with the one-member Python placement on random facts (SQLite and PostgreSQL)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select, update

from coalition_kernel.db import run_in_transaction
from merchant_node.ledger.commands import Enroll
from merchant_node.marketing.conditions import NUMBER_FACTS
from merchant_node.marketing.definitions import (
    DefinitionsInvalid,
    canonical,
    default_definitions,
    parse_definitions,
)
from merchant_node.marketing.schema import member_facts, member_segments
from merchant_node.marketing.segments import Scores, place, threshold_scores
from merchant_node.marketing.segments_sql import place_members

D = default_definitions()


def facts(**given):
    base = {name: 0 for name in NUMBER_FACTS if not name.endswith("_score")}
    base.update(p_alive_bps=None, expected_orders_90d_milli=None, expected_order_value_fen=None)
    base.update(category_shift=False, tenure_days=400)
    base.update(given)
    return base


# A regular customer a year in: 6 orders, 3 in the last 90 days, averaging 100 yuan.
STEADY = dict(
    recency_days=20,
    orders_30d=1,
    orders_90d=3,
    orders_365d=6,
    orders_total=6,
    spend_90d_fen=30_000,
    spend_365d_fen=60_000,
    avg_order_90d_fen=10_000,
    avg_order_365d_fen=10_000,
)


def test_rfm_threshold_scores_by_hand():
    # recency 20 <= 30: 5; 6 orders reach 2 and 4: 3; 60,000 fen reaches 20,000 and 50,000: 3.
    assert threshold_scores(D.rfm, facts(**STEADY)) == Scores(5, 3, 3)
    # recency 95 passes 30, 60 and 90: 2; 12 orders reach all four cuts: 5; 0 fen: 1.
    assert threshold_scores(D.rfm, facts(recency_days=95, orders_365d=12)) == Scores(2, 5, 1)
    assert threshold_scores(D.rfm, facts(recency_days=181)) == Scores(1, 1, 1)


def test_new_member_is_new():
    p = place(D, facts(tenure_days=10, orders_total=1, orders_365d=1, recency_days=3))
    assert p.segment.id == "new" and p.segment.name == "新会员"
    assert "tenure_days <= 30 (tenure_days=10)" in p.segment.reason
    assert p.cause is None


def test_the_seeds_dormant_rule_is_ninety_days_without_a_purchase():
    assert place(D, facts(orders_total=5, recency_days=89)).segment.id != "dormant"
    p = place(D, facts(orders_total=5, recency_days=90))
    assert p.segment.id == "dormant"
    assert p.segment.reason == (
        "orders_total >= 1 (orders_total=5) and recency_days >= 90 (recency_days=90)"
    )


def test_a_year_without_a_purchase_is_lost_not_dormant():
    assert place(D, facts(orders_total=5, recency_days=365)).segment.id == "lost"
    assert place(D, facts(orders_total=5, recency_days=364)).segment.id == "dormant"


def test_the_seeds_half_their_average_rule_puts_a_member_at_risk():
    # Lately 4,000 fen an order against 10,000 over the year: 4,000 < 5,000, at risk.
    at_risk = facts(**{**STEADY, "avg_order_90d_fen": 4_000})
    p = place(D, at_risk)
    assert p.segment.id == "at_risk"
    assert "avg_order_90d_fen < 0.5 * avg_order_365d_fen" in p.segment.reason
    # Exactly half is not below half.
    assert place(D, facts(**{**STEADY, "avg_order_90d_fen": 5_000})).segment.id != "at_risk"


def test_loyal_active_and_regular():
    loyal = facts(**{**STEADY, "orders_365d": 8, "spend_365d_fen": 60_000})  # R5 F4 M3
    assert place(D, loyal).segment.id == "loyal"
    assert place(D, facts(**STEADY)).segment.id == "active"  # F3: not loyal, recent: active
    regular = facts(**{**STEADY, "recency_days": 45})
    p = place(D, regular)
    assert (p.segment.id, p.segment.reason) == ("regular", "no segment's rules held")


def test_tags_by_hand():
    # 2 of 4 orders part-paid with points (5,000 bps >= 3,000): 积分敏感型.
    p = place(D, facts(orders_365d=4, points_paid_share_bps=5_000, campaign_share_bps=4_999))
    assert [t.name for t in p.tags] == ["积分敏感型"]
    # 3 of 4 orders credited by a campaign (7,500 bps): 价格敏感型; a shift: 品类转移.
    p = place(D, facts(orders_365d=4, campaign_share_bps=7_500, category_shift=True))
    assert [t.id for t in p.tags] == ["price_sensitive", "category_shift"]
    # One order is too few to call anyone sensitive to anything.
    assert place(D, facts(orders_365d=1, campaign_share_bps=10_000)).tags == ()
    p = place(D, facts(orders_365d=5, evening_share_bps=6_000))
    assert [t.name for t in p.tags] == ["夜间消费"]


@pytest.mark.parametrize(
    ("given", "cause"),
    [
        # The seeds' three sleeping-member causes.
        (
            {"orders_365d": 4, "campaign_share_bps": 7_500, "category_shift": True},
            "price_sensitive",
        ),
        ({"orders_365d": 4, "campaign_share_bps": 2_500, "category_shift": True}, "category_shift"),
        ({"orders_365d": 4, "campaign_share_bps": 0}, "long_silence"),
    ],
)
def test_a_dormant_members_cause(given, cause):
    p = place(D, facts(orders_total=6, recency_days=120, **given))
    assert p.segment.id == "dormant"
    assert p.cause is not None and p.cause.id == cause


def test_bad_definitions_are_refused_with_every_error():
    with pytest.raises(DefinitionsInvalid) as refused:
        parse_definitions(
            "segments:\n"
            "  - {id: a, when: ['recency_dayz >= 90']}\n"
            "  - {id: b, when: ['recency_days >= ninety']}\n"
            "  - {id: b, when: []}\n"
            "rfm: {recency_days: [90, 30, 60, 180]}\n"
        )
    assert refused.value.reason == "SEGMENTS_INVALID"
    text = str(refused.value.errors)
    assert "unknown fact 'recency_dayz'" in text
    assert "unknown fact 'ninety'" in text
    assert "ascending" in text
    with pytest.raises(DefinitionsInvalid, match="duplicate id 'b'"):
        parse_definitions("segments: [{id: b, when: []}, {id: b, when: []}]")
    with pytest.raises(DefinitionsInvalid, match="no segment 'sleepy'"):
        parse_definitions("segments: [{id: b}]\nchurn: {at_risk_segments: [sleepy]}")


def test_canonical_form_reads_back_the_same():
    assert parse_definitions(canonical(D)) == D


def _random_facts(rng: random.Random) -> dict:
    orders = rng.choice([0, 1, 2, 3, 4, 6, 8, 12, 20])
    avg = rng.choice([0, 2_000, 5_000, 10_000, 40_000])
    return facts(
        recency_days=rng.choice([0, 10, 30, 31, 60, 89, 90, 91, 180, 364, 365, 400]),
        tenure_days=rng.choice([5, 30, 31, 400]),
        orders_total=orders,
        orders_365d=orders,
        orders_90d=rng.choice([0, 1, 2]),
        spend_365d_fen=orders * avg,
        avg_order_365d_fen=avg,
        avg_order_90d_fen=rng.choice([0, 1_000, avg // 2, avg]),
        points_paid_share_bps=rng.choice([0, 2_999, 3_000, 10_000]),
        campaign_share_bps=rng.choice([0, 4_999, 5_000, 10_000]),
        evening_share_bps=rng.choice([0, 6_000]),
        category_shift=rng.random() < 0.3,
    )


def test_nightly_sql_placement_equals_the_python_placement_on_random_facts(ledger, clock):
    rng = random.Random(13)
    for i in range(120):
        ledger.enroll(Enroll(f"enroll-{i}", f"m{i}"))
    now = datetime(2026, 6, 1, tzinfo=UTC)
    given = {}

    def load(conn):
        pks = conn.execute(select(member_facts.c.member_pk)).scalars().all()
        assert not pks
        from merchant_node.ledger.schema import members

        for pk in conn.execute(select(members.c.id)).scalars():
            row = _random_facts(rng)
            given[pk] = row
            conn.execute(insert(member_facts).values(member_pk=pk, as_of=now, **row))

    run_in_transaction(ledger.engine, load)
    n = run_in_transaction(ledger.engine, lambda c: place_members(c, D, 1, now))
    assert n == 120
    with ledger.engine.connect() as conn:
        placed = {r.member_pk: r for r in conn.execute(select(member_segments))}
        causes = {
            r.member_pk: r.churn_cause
            for r in conn.execute(select(member_facts.c.member_pk, member_facts.c.churn_cause))
        }
    seen = set()
    for pk, row in given.items():
        expected = place(D, row)
        got = placed[pk]
        assert (got.r_score, got.f_score, got.m_score) == (
            expected.scores.r,
            expected.scores.f,
            expected.scores.m,
        )
        assert got.segment == expected.segment.id, row
        assert got.tags == "," + "".join(t.id + "," for t in expected.tags)
        assert causes[pk] == (expected.cause.id if expected.cause else None)
        seen.add(got.segment)
    assert {"dormant", "lost", "at_risk", "active"} <= seen  # the sample reaches the rules

    # One member again, after their facts changed: only their row moves.
    pk = next(iter(given))
    run_in_transaction(
        ledger.engine,
        lambda c: c.execute(
            update(member_facts)
            .where(member_facts.c.member_pk == pk)
            .values(orders_total=3, recency_days=100, tenure_days=400)
        ),
    )
    run_in_transaction(ledger.engine, lambda c: place_members(c, D, 2, now, member_pk=pk))
    with ledger.engine.connect() as conn:
        rows = {r.member_pk: r for r in conn.execute(select(member_segments))}
    assert rows[pk].segment == "dormant" and rows[pk].definitions_version == 2
    assert all(rows[other].definitions_version == 1 for other in rows if other != pk)


def test_quantile_scores_are_fifths_of_the_members(ledger):
    for i in range(10):
        ledger.enroll(Enroll(f"enroll-{i}", f"m{i}"))
    now = datetime(2026, 6, 1, tzinfo=UTC)
    quantiles = parse_definitions(
        "rfm: {method: quantiles}\nsegments: [{id: top, when: ['m_score >= 5']}]"
    )

    def load(conn):
        from merchant_node.ledger.schema import members

        for rank, pk in enumerate(conn.execute(select(members.c.id).order_by(members.c.id))):
            conn.execute(
                insert(member_facts).values(
                    member_pk=pk[0], as_of=now, recency_days=100 - rank, spend_365d_fen=rank * 100
                )
            )

    run_in_transaction(ledger.engine, load)
    run_in_transaction(ledger.engine, lambda c: place_members(c, quantiles, 1, now))
    with ledger.engine.connect() as conn:
        rows = conn.execute(select(member_segments).order_by(member_segments.c.member_pk)).all()
    # Ten members, spend rising with id: two per fifth; the most recent score 5 on recency.
    assert [r.m_score for r in rows] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert [r.r_score for r in rows] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert [r.segment for r in rows].count("top") == 2
