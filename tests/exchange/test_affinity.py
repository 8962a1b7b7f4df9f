"""Shops sharing customers, from known clearing records: exact counts, lifts, suppression under k,
shared customers and ranked partnership suggestions (exchange/affinity.py), through the module,
the operator's RPC and `coalition operator affinity`; SQLite and PostgreSQL.

The district (k = 5, a 30-day window ending 2026-01-05 09:00 UTC):

    tea → noodles   members t1..t6 (t1, t2 twice): 8 redemptions, 50 points / 100 fen each
    noodles → tea   members n1..n5, once each, 10 points / 10 fen
    salon → tea     members s1..s5, once each
    noodles → salon members n1, n6..n9, once each
    tea → salon     members t1, t7                    (2 < k: suppressed)
    bakery → salon  members b1..b4                    (4 < k: suppressed)
    tea → noodles   t9, 31 days ago; t8 at the window's end (both outside it)

Shown: m(T→N) 6, m(N→T) 5, m(S→T) 5, m(N→S) 5. out: T 6, N 10, S 5; in: N 6, T 10, S 5; total 21.
    lift(T→N) = 6·(21−10)·10000 // (6·6)  = 18333
    lift(N→T) = 5·(21−6)·10000 // (10·10) = 7500
    lift(S→T) = 5·(21−5)·10000 // (5·10)  = 16000
    lift(N→S) = 5·(21−6)·10000 // (10·5)  = 15000
Shared: {noodles, tea} 11, {noodles, salon} 5, {salon, tea} 5.
Suggestions (strong = lift ≥ 10000; only one direction of each pair is strong):
    noodles offers to tea's members 18333 (6); tea to salon's 16000 (5); salon to noodles' 15000 (5).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
import sqlalchemy as sa

from coalition_kernel.db import make_engine
from coalition_kernel.errors import InvalidArgument
from exchange import affinity as aff
from exchange.migrate import upgrade
from exchange.schema import authorizations, clearing_records

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
_ids = count(1)


def redeem(conn, issuer, acquirer, member, points=10, value_fen=10, at=None):  # type: ignore[no-untyped-def]
    """One captured cross-shop redemption: its authorization and its clearing record."""
    n = next(_ids)
    at = at or NOW - timedelta(days=1)
    common = {
        "issuer_id": issuer,
        "acquirer_id": acquirer,
        "member_id": member,
        "order_id": f"o{n}",
        "points": points,
        "value_fen": value_fen,
        "fee_fen": 0,
        "rate_version": 1,
    }
    conn.execute(
        sa.insert(authorizations).values(
            authorization_id=f"a{n}", request_id=f"r{n}", consent_code="000000",
            status="captured", created_at=at, updated_at=at, **common,
        )
    )  # fmt: skip
    conn.execute(
        sa.insert(clearing_records).values(
            clearing_id=f"c{n}", authorization_id=f"a{n}", settlement_period=at.date().isoformat(),
            authorized_at=at, captured_at=at, acquirer_envelope=b"", issuer_envelope=b"",
            **common,
        )
    )  # fmt: skip


def district(conn) -> None:  # type: ignore[no-untyped-def]
    for i in range(1, 7):
        redeem(conn, "tea", "noodles", f"t{i}", 50, 100)
    redeem(conn, "tea", "noodles", "t1", 50, 100, NOW - timedelta(days=29, hours=23))
    redeem(conn, "tea", "noodles", "t2", 50, 100, NOW - timedelta(minutes=1))
    for i in range(1, 6):
        redeem(conn, "noodles", "tea", f"n{i}")
        redeem(conn, "salon", "tea", f"s{i}")
    for member in ("n1", "n6", "n7", "n8", "n9"):
        redeem(conn, "noodles", "salon", member)
    redeem(conn, "tea", "salon", "t1")
    redeem(conn, "tea", "salon", "t7")
    for i in range(1, 5):
        redeem(conn, "bakery", "salon", f"b{i}")
    redeem(conn, "tea", "noodles", "t9", 50, 100, NOW - timedelta(days=31))
    redeem(conn, "tea", "noodles", "t8", 50, 100, NOW)


@pytest.fixture
def engine(db_url):  # type: ignore[no-untyped-def]
    engine = make_engine(db_url)
    upgrade(engine)
    with engine.begin() as conn:
        district(conn)
    yield engine
    engine.dispose()


def test_flows_are_counted_by_distinct_member_and_suppressed_under_k(engine):
    with engine.connect() as conn:
        result = aff.affinity(conn, NOW)
    assert result.window_start == NOW - timedelta(days=30) and result.window_end == NOW
    assert result.min_members == 5
    assert result.flows == [
        aff.Flow("noodles", "salon", 5, 5, 50, 50, 15000),
        aff.Flow("noodles", "tea", 5, 5, 50, 50, 7500),
        aff.Flow("salon", "tea", 5, 5, 50, 50, 16000),
        aff.Flow("tea", "noodles", 6, 8, 400, 800, 18333),
    ]
    assert result.suppressed_flows == 2  # tea → salon (2), bakery → salon (4)
    assert result.shared == [
        aff.Shared("noodles", "tea", 11),
        aff.Shared("noodles", "salon", 5),
        aff.Shared("salon", "tea", 5),
    ]


def test_one_way_flows_suggest_the_acquirers_related_offer_ranked_by_lift(engine):
    with engine.connect() as conn:
        suggestions = aff.affinity(conn, NOW).suggestions
    r = aff.RELATED_PRODUCT_OFFER
    assert suggestions == [
        aff.Suggestion(r, "noodles", "tea", 18333, 6),
        aff.Suggestion(r, "tea", "salon", 16000, 5),
        aff.Suggestion(r, "salon", "noodles", 15000, 5),
    ]


def test_a_higher_k_leaves_suppressed_flows_out_of_every_figure(engine):
    with engine.connect() as conn:
        result = aff.affinity(conn, NOW, min_members=6)
    # Only tea → noodles is left; it is then the whole district, exactly as expected (10000).
    assert result.flows == [aff.Flow("tea", "noodles", 6, 8, 400, 800, 10000)]
    assert result.shared == [aff.Shared("noodles", "tea", 6)]
    assert result.suggestions == [
        aff.Suggestion(aff.RELATED_PRODUCT_OFFER, "noodles", "tea", 10000, 6)
    ]
    assert result.suppressed_flows == 5


def test_a_shorter_window_counts_only_its_own_records(engine):
    with engine.connect() as conn:
        result = aff.affinity(conn, NOW, days=1, min_members=3)
    # The last day: every flow but t1's second visit to noodles (29 days 23 hours ago).
    assert [(f.issuer_id, f.acquirer_id, f.members, f.redemptions) for f in result.flows] == [
        ("bakery", "salon", 4, 4),
        ("noodles", "salon", 5, 5),
        ("noodles", "tea", 5, 5),
        ("salon", "tea", 5, 5),
        ("tea", "noodles", 6, 7),
    ]
    assert result.suppressed_flows == 1  # tea → salon


def test_mutual_strong_flows_suggest_a_joint_offer(db_url):
    engine = make_engine(db_url)
    upgrade(engine)
    with engine.begin() as conn:
        for i in range(5):
            redeem(conn, "tea", "noodles", f"t{i}")
            redeem(conn, "noodles", "tea", f"n{i}")
        redeem(conn, "noodles", "tea", "n5")
        with_both = aff.affinity(conn, NOW)
    engine.dispose()
    # Two shops: each flow is exactly what independence predicts.
    assert [f.lift_bp for f in with_both.flows] == [10000, 10000]
    assert with_both.shared == [aff.Shared("noodles", "tea", 11)]
    assert with_both.suggestions == [aff.Suggestion(aff.JOINT_OFFER, "noodles", "tea", 10000, 11)]


@pytest.mark.parametrize(
    ("days", "k", "reason"),
    [
        (367, 0, "DAYS_OUT_OF_RANGE"),
        (-1, 0, "DAYS_OUT_OF_RANGE"),
        (0, 2, "MIN_MEMBERS_OUT_OF_RANGE"),
        (0, 1001, "MIN_MEMBERS_OUT_OF_RANGE"),
        (0, -5, "MIN_MEMBERS_OUT_OF_RANGE"),
    ],
)
def test_a_window_or_k_out_of_range_is_refused(days, k, reason):
    with pytest.raises(InvalidArgument) as refused:
        aff.checked(days, k)
    assert refused.value.reason == reason


def test_no_records_no_flows(db_url):
    engine = make_engine(db_url)
    upgrade(engine)
    with engine.connect() as conn:
        result = aff.affinity(conn, NOW)
    engine.dispose()
    assert (result.flows, result.shared, result.suggestions, result.suppressed_flows) == (
        [],
        [],
        [],
        0,
    )
