"""The ledger's use cases, on SQLite and PostgreSQL, through the service layer."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from coalition_kernel.errors import AlreadyExists, FailedPrecondition, NotFound, PermissionDenied
from merchant_node.ledger.commands import Earn, Enroll, PlaceHold, Redeem, Refund
from merchant_node.ledger.schema import journal_lines, lots


def enroll(ledger, member_id="m1"):  # type: ignore[no-untyped-def]
    return ledger.enroll(Enroll(f"enroll-{member_id}", member_id))


def earn(ledger, order_id, fen, member_id="m1", **kw):  # type: ignore[no-untyped-def]
    return ledger.earn(Earn(f"earn-{order_id}", member_id, order_id, fen, "POS", None, **kw))


def redeem(ledger, order_id, member_id="m1", **kw):  # type: ignore[no-untyped-def]
    return ledger.redeem(Redeem(f"redeem-{order_id}", member_id, order_id, **kw))


def test_earn_rounds_points_down_and_explains_them(ledger):
    enroll(ledger)
    res = earn(ledger, "o1", 12_899)
    assert res.points_earned == 128
    assert [(b.rule_id, b.points) for b in res.breakdown] == [("base_rate", 128)]
    assert res.available_points == 128


def test_redemption_takes_earliest_expiring_lots_first_and_never_expiring_last(ledger, clock):
    enroll(ledger)
    earn(ledger, "late", 10_000)  # expires in 365 days
    clock.advance(days=10)
    earn(ledger, "later", 10_000)
    with ledger.engine.begin() as conn:  # a lot that never expires (e.g. a migrated balance)
        conn.execute(
            sa.update(lots).where(lots.c.source_order_id == "late").values(expires_at=None)
        )
    redeem(ledger, "r1", points=150)
    with ledger.engine.connect() as conn:
        remaining = dict(conn.execute(sa.select(lots.c.source_order_id, lots.c.remaining)).all())
    assert remaining == {"later": 0, "late": 50}


def test_money_amount_is_converted_rounding_points_up(ledger):
    ledger.configure_rate("1", "3/2")  # one point is worth 1.5 fen
    enroll(ledger)
    earn(ledger, "o1", 100_000)
    res = redeem(ledger, "r1", amount_fen=100)
    assert (res.points_redeemed, res.value_fen) == (67, 100)  # 66 points would be 99 fen
    res = redeem(ledger, "r2", points=3)
    assert res.value_fen == 4  # 4.5 fen, rounded down


def test_a_new_rate_never_revalues_history(ledger):
    enroll(ledger)
    earn(ledger, "o1", 10_000)
    ledger.configure_rate("2", "1")
    res = earn(ledger, "o2", 10_000)
    assert (res.points_earned, res.rate_version) == (200, 2)
    with ledger.engine.connect() as conn:
        versions = dict(conn.execute(sa.select(lots.c.source_order_id, lots.c.rate_version)).all())
    assert versions == {"o1": 1, "o2": 2}
    assert ledger.balance("m1").available_points == 300


def test_redeeming_more_than_the_balance_is_refused_and_changes_nothing(ledger):
    enroll(ledger)
    earn(ledger, "o1", 5_000)
    with pytest.raises(FailedPrecondition) as err:
        redeem(ledger, "r1", points=51)
    assert err.value.reason == "INSUFFICIENT_POINTS"
    assert ledger.balance("m1").available_points == 50


def test_expired_points_are_never_spent_even_before_any_sweep(ledger, clock):
    enroll(ledger)
    earn(ledger, "o1", 5_000)
    clock.advance(days=365)
    assert ledger.balance("m1").available_points == 0
    with pytest.raises(FailedPrecondition):
        redeem(ledger, "r1", points=1)
    assert ledger.expire_due() == 1
    with ledger.engine.connect() as conn:
        breakage = conn.execute(
            sa.select(sa.func.sum(journal_lines.c.points)).where(
                journal_lines.c.account == "BREAKAGE"
            )
        ).scalar_one()
    assert breakage == 50
    assert ledger.audit() == []


def test_partial_refunds_claw_back_exactly_what_the_order_earned(ledger):
    enroll(ledger)
    earn(ledger, "o1", 9_999)  # 99 points
    parts = [
        ledger.refund(Refund(f"rf{i}", "o1", amount_fen=3_333)).points_clawed_back for i in range(3)
    ]
    assert sum(parts) == 99
    with pytest.raises(FailedPrecondition) as err:
        ledger.refund(Refund("rf4", "o1", amount_fen=1))
    assert err.value.reason == "REFUND_EXCEEDS_ORDER"
    assert ledger.audit() == []


def test_clawback_of_spent_points_becomes_a_debt_that_later_earnings_pay_off(ledger):
    enroll(ledger)
    earn(ledger, "o1", 10_000)
    redeem(ledger, "r1", points=80)
    res = ledger.refund(Refund("rf1", "o1", full=True))
    assert (res.points_clawed_back, res.points_added_to_debt, res.debt_points) == (100, 80, 80)
    res2 = earn(ledger, "o2", 10_000)
    assert (res2.points_applied_to_debt, res2.available_points) == (80, 20)
    bal = ledger.balance("m1")
    assert (bal.available_points, bal.debt_points) == (20, 0)
    assert ledger.audit() == []


def test_refund_of_a_redeeming_order_gives_the_points_back(ledger):
    enroll(ledger)
    earn(ledger, "o1", 10_000)
    redeem(ledger, "r1", points=60)
    res = ledger.refund(Refund("rf1", "r1", points=20))
    assert (res.points_returned, res.available_points) == (20, 60)
    res = ledger.refund(Refund("rf2", "r1", full=True))
    assert (res.points_returned, res.available_points) == (40, 100)
    with pytest.raises(FailedPrecondition) as err:
        ledger.refund(Refund("rf3", "r1", full=True))
    assert err.value.reason == "ORDER_ALREADY_REFUNDED"


def test_points_given_back_to_an_expired_lot_expire_at_once(ledger, clock):
    enroll(ledger)
    earn(ledger, "o1", 10_000)
    redeem(ledger, "r1", points=60)
    clock.advance(days=400)
    res = ledger.refund(Refund("rf1", "r1", full=True))
    assert (res.points_returned, res.available_points) == (60, 0)
    assert ledger.audit() == []


def test_one_earning_and_one_redemption_per_order(ledger):
    enroll(ledger)
    earn(ledger, "o1", 10_000)
    with pytest.raises(AlreadyExists) as err:
        ledger.earn(Earn("another-request", "m1", "o1", 10_000, "POS", None))
    assert err.value.reason == "ORDER_ALREADY_EARNED"
    redeem(ledger, "r1", points=1)
    with pytest.raises(AlreadyExists):
        ledger.redeem(Redeem("another-redeem", "m1", "r1", points=1))


def test_unknown_member_and_order_are_not_found(ledger):
    with pytest.raises(NotFound) as err:
        earn(ledger, "o1", 100, member_id="ghost")
    assert err.value.reason == "MEMBER_NOT_FOUND"
    with pytest.raises(NotFound) as err:
        ledger.refund(Refund("rf1", "nope", full=True))
    assert err.value.reason == "ORDER_NOT_FOUND"


def test_hold_reserves_points_then_posts_them(ledger):
    enroll(ledger)
    earn(ledger, "o1", 10_000)
    ledger.place_hold(PlaceHold("h-req", "h1", "m1", 30, ttl_seconds=600), require_consent=False)
    bal = ledger.balance("m1")
    assert (bal.available_points, bal.held_points) == (70, 30)
    assert ledger.post_hold("p-req", "h1").status == "posted"
    assert ledger.post_hold("p-req", "h1").status == "posted"  # a retry answers the same
    bal = ledger.balance("m1")
    assert (bal.available_points, bal.held_points) == (70, 0)
    with pytest.raises(FailedPrecondition) as err:
        ledger.void_hold("v-req", "h1")
    assert err.value.reason == "HOLD_ALREADY_POSTED"
    assert ledger.audit() == []


def test_a_lapsed_hold_is_never_posted_and_its_points_come_back(ledger, clock):
    enroll(ledger)
    earn(ledger, "o1", 10_000)
    ledger.place_hold(PlaceHold("h-req", "h1", "m1", 30, ttl_seconds=600), require_consent=False)
    clock.advance(seconds=600)
    assert ledger.balance("m1").available_points == 100  # before any sweep
    with pytest.raises(FailedPrecondition) as err:
        ledger.post_hold("p-req", "h1")
    assert err.value.reason == "HOLD_EXPIRED"
    ledger.expire_due()
    bal = ledger.balance("m1")
    assert (bal.available_points, bal.held_points) == (100, 0)
    assert ledger.audit() == []


def test_a_hold_never_outlives_the_lots_it_reserves(ledger, clock):
    enroll(ledger)
    earn(ledger, "o1", 10_000)
    clock.advance(days=365, seconds=-60)
    hold = ledger.place_hold(
        PlaceHold("h-req", "h1", "m1", 30, ttl_seconds=3600), require_consent=False
    )
    assert hold.expires_at == clock.now + __import__("datetime").timedelta(seconds=60)


def test_voiding_a_hold_releases_its_points(ledger):
    enroll(ledger)
    earn(ledger, "o1", 10_000)
    ledger.place_hold(PlaceHold("h-req", "h1", "m1", 30, ttl_seconds=600), require_consent=False)
    assert ledger.void_hold("v-req", "h1").status == "voided"
    assert ledger.balance("m1").available_points == 100
    with pytest.raises(FailedPrecondition) as err:
        ledger.post_hold("p-req", "h1")
    assert err.value.reason == "HOLD_VOIDED"


def test_history_is_newest_first_and_paged(ledger):
    enroll(ledger)
    for i in range(5):
        earn(ledger, f"o{i}", 1_000 * (i + 1))
    page, token = ledger.history("m1", page_size=2)
    assert [e.order_id for e in page] == ["o4", "o3"]
    page, token = ledger.history("m1", page_size=2, page_token=token)
    assert [e.order_id for e in page] == ["o2", "o1"]
    page, token = ledger.history("m1", page_size=2, page_token=token)
    assert ([e.order_id for e in page], token) == (["o0"], "")


def test_the_journal_is_append_only(ledger):
    enroll(ledger)
    earn(ledger, "o1", 1_000)
    for statement in (sa.update(journal_lines).values(points=5), sa.delete(journal_lines)):
        with pytest.raises(sa.exc.DBAPIError), ledger.engine.begin() as conn:
            conn.execute(statement)
    assert ledger.audit() == []


def wallet_code(ledger, member_id, at, points=10, acquirer="shop-b"):  # type: ignore[no-untyped-def]
    """The member's wallet's code for "spend up to `points` of shop-a's points at shop-b"."""
    from coalition_kernel.consent import spend_code
    from merchant_node.ledger.consent import wallet_secret
    from merchant_node.ledger.schema import members

    with ledger.engine.connect() as conn:
        member = conn.execute(sa.select(members).where(members.c.member_id == member_id)).one()
    return spend_code(wallet_secret(member), "shop-a", acquirer, points, at)


def test_a_hold_needs_the_members_bound_code_and_each_code_works_once(ledger, clock):
    secret = enroll(ledger).wallet_secret
    assert len(secret) == 32
    earn(ledger, "o1", 10_000)

    def hold(ref, code, points=10, agreed=10, acquirer="shop-b"):  # type: ignore[no-untyped-def]
        return ledger.place_hold(
            PlaceHold(f"req-{ref}", ref, "m1", points, 600, code, acquirer, agreed, "", "shop-a")
        )

    right = wallet_code(ledger, "m1", clock.now)
    wrong = f"{(int(right) + 1) % 10**6:06d}"
    for ref, code, reason in [("h1", "", "CONSENT_REQUIRED"), ("h2", wrong, "CONSENT_INVALID")]:
        with pytest.raises(PermissionDenied) as err:
            hold(ref, code)
        assert err.value.reason == reason
    # Bound: not for more points than agreed, not for another acquirer, not for another maximum.
    for i, (kwargs, reason) in enumerate(
        [
            (dict(points=11), "CONSENT_EXCEEDED"),
            (dict(acquirer="shop-c"), "CONSENT_INVALID"),
            (dict(agreed=11), "CONSENT_INVALID"),
        ]
    ):
        with pytest.raises(PermissionDenied) as err:
            hold(f"hx-{i}", right, **kwargs)
        assert err.value.reason == reason
    code = right
    assert hold("h3", code).status == "pending"
    assert hold("h3", code).status == "pending"  # the same request replayed: same answer
    with pytest.raises(PermissionDenied) as err:
        hold("h4", code)
    assert err.value.reason == "CONSENT_REUSED"
    clock.advance(seconds=90)  # three steps later: the old code has expired
    with pytest.raises(PermissionDenied) as err:
        hold("h5", code)
    assert err.value.reason == "CONSENT_INVALID"
    assert ledger.balance("m1").held_points == 10


def test_an_order_belongs_to_one_member(ledger):
    enroll(ledger, "a")
    enroll(ledger, "b")
    earn(ledger, "seed-b", 10_000, member_id="b")
    earn(ledger, "x", 10_000, member_id="a")
    with pytest.raises(FailedPrecondition) as err:
        redeem(ledger, "x", member_id="b", points=40)
    assert err.value.reason == "ORDER_OF_ANOTHER_MEMBER"
    redeem(ledger, "y", member_id="b", points=40)
    with pytest.raises(FailedPrecondition) as err:
        earn(ledger, "y", 10_000, member_id="a")
    assert err.value.reason == "ORDER_OF_ANOTHER_MEMBER"
