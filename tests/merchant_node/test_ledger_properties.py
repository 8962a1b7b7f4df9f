"""The ledger's laws as properties: random histories, expiry by timestamp, idempotency.

The examples of a test take turns on one ledger (the `ledger` fixture, on SQLite and on
PostgreSQL): each gets a driver of its own, which sets the clock back to the first day and puts
a fresh prefix on every member, order, hold and request id, so examples never meet. The driver
and the reference model it checks every answer against live in test_ledger_model.py.
"""

from __future__ import annotations

import dataclasses
import os
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from coalition_kernel.errors import AlreadyExists, CoalitionError, FailedPrecondition
from merchant_node.ledger.commands import Earn, Enroll, PlaceHold, Redeem, Refund
from merchant_node.ledger.schema import allocations, lots, redemptions
from merchant_node.ledger.service import NodeLedger
from tests.conftest import FakeClock
from tests.merchant_node.test_ledger_model import (
    DAY,
    MEMBERS,
    ORDERS,
    POINTS_TTL,
    Driver,
    Refusal,
    answer_of,
    clock_moves,
    dump,
    other_requests,
    steps,
    submit,
)

EXAMPLES = int(os.environ.get("COALITION_HYPOTHESIS_EXAMPLES", "40"))


def examples(share: int = 1) -> settings:
    """`EXAMPLES // share` examples: properties of a few numbers need fewer than histories do."""
    return settings(
        max_examples=max(1, EXAMPLES // share),
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )


opening_earnings = st.tuples(st.integers(0, 50_000), st.integers(0, 50_000))
histories = st.lists(steps, max_size=25)
short_histories = st.lists(steps, max_size=12)
around_zero = st.sampled_from([-1, 0, 1])  # seconds either side of an instant, and the instant


def driving(ledger: NodeLedger, clock: FakeClock, opening: tuple[int, int] = (0, 0)) -> Driver:
    """A driver for one example; its members 0 and 1 are enrolled and have earned `opening` fen
    (0: nothing), its member 2 is not enrolled."""
    driver = Driver(ledger, clock)
    for m, fen in enumerate(opening):
        driver.enroll(m)
        if fen:
            driver.earn(m, 0, fen)
    return driver


def earn(driver: Driver, m: int, name: str, fen: int) -> Any:
    """Member `m` earns on order `name` (also the request id), under the driver's prefix."""
    order = f"{driver.prefix}-{name}"
    return driver.ledger.earn(Earn(order, driver.member(m), order, fen, "POS", None))


def refused(call) -> CoalitionError:  # type: ignore[no-untyped-def]
    with pytest.raises(CoalitionError) as err:
        call()
    return err.value


# -- laws 1, 2 and 4 under random histories --------------------------------------------------


@examples()
@given(opening=opening_earnings, history=histories)
def test_random_histories_keep_the_ledger_laws(ledger, clock, opening, history) -> None:  # type: ignore[no-untyped-def]
    driver = driving(ledger, clock, opening)
    for step in history:
        driver.run(step)  # each answer or refusal is checked against the model as it comes
    assert ledger.audit() == []
    for m in range(MEMBERS):
        member = driver.member(m)
        if member not in driver.model.members:
            continue
        bal = ledger.balance(member)
        assert min(bal.available_points, bal.held_points, bal.debt_points) >= 0
        expected = driver.model.balance(member, clock.now)
        assert bal.available_points + bal.held_points == expected.available + expected.held
        assert (bal.debt_points, bal.lifetime_earned_points) == (expected.debt, expected.lifetime)


# -- expiry is decided by timestamps, not by sweeps ------------------------------------------


@examples(2)
@given(
    first=st.integers(1, 500),
    second=st.integers(1, 500),
    gap_days=st.integers(1, 364),
    offset=st.one_of(around_zero, st.integers(-DAY + 1, DAY - 1)),
    sweep=st.booleans(),
    ask=st.integers(1, 1_000),
)
@example(first=300, second=200, gap_days=10, offset=0, sweep=False, ask=201)
@example(first=300, second=200, gap_days=10, offset=-1, sweep=False, ask=500)
def test_an_expired_lot_is_never_spent_with_or_without_a_sweep(  # type: ignore[no-untyped-def]
    ledger, clock, first, second, gap_days, offset, sweep, ask
) -> None:
    """Lot A expires 365 days after it was earned, lot B `gap_days` later. At `offset` seconds
    from A's expiry (0 included: a lot is dead at its expiry instant) only live points count."""
    driver = driving(ledger, clock)
    member = driver.member(0)
    a_expires = clock.now + POINTS_TTL
    earn(driver, 0, "a", first * 100)
    clock.advance(days=gap_days)
    earn(driver, 0, "b", second * 100)
    clock.now = a_expires + timedelta(seconds=offset)
    if sweep:
        ledger.expire_due()
    live = (first if offset < 0 else 0) + second
    assert ledger.balance(member).available_points == live

    order = f"{driver.prefix}-spend"
    redeem = Redeem(f"{driver.prefix}-r", member, order, points=ask)
    if ask > live:
        assert refused(lambda: ledger.redeem(redeem)).reason == "INSUFFICIENT_POINTS"
        assert ledger.balance(member).available_points == live
    else:
        assert ledger.redeem(redeem).available_points == live - ask
        with ledger.engine.connect() as conn:
            spent = conn.execute(
                sa.select(allocations.c.points, lots.c.expires_at)
                .join(lots, lots.c.id == allocations.c.lot_id)
                .join(redemptions, redemptions.c.id == allocations.c.redemption_id)
                .where(redemptions.c.order_id == order)
            ).all()
        assert sum(row.points for row in spent) == ask
        assert all(row.expires_at > clock.now for row in spent)
        assert ledger.balance(member).available_points == live - ask
    assert ledger.audit() == []


@examples(2)
@given(
    points=st.integers(1, 100),
    ttl=st.integers(1, 7 * DAY),
    lot_age=st.one_of(st.integers(0, 365 * DAY - 1), st.integers(358 * DAY, 365 * DAY - 1)),
    late=st.one_of(around_zero, st.integers(-DAY, 2 * DAY)),
    sweep=st.booleans(),
)
@example(points=30, ttl=600, lot_age=0, late=0, sweep=False)
@example(points=30, ttl=600, lot_age=0, late=-1, sweep=False)
@example(points=30, ttl=3600, lot_age=365 * DAY - 60, late=0, sweep=False)  # lapses with its lot
def test_a_hold_posts_until_it_lapses_and_never_after_with_or_without_a_sweep(  # type: ignore[no-untyped-def]
    ledger, clock, points, ttl, lot_age, late, sweep
) -> None:
    """A hold lapses at its ttl or at its lots' expiry, whichever comes first. At `late`
    seconds from then (0 included) it is posted only if that is before it lapsed."""
    driver = driving(ledger, clock)
    member, ref = driver.member(0), driver.hold_ref(0)
    lot_expires = clock.now + POINTS_TTL
    earn(driver, 0, "e", 10_000)
    clock.advance(seconds=lot_age)
    placed_at = clock.now
    hold = submit(ledger, "place_hold", PlaceHold(f"{ref}-place", ref, member, points, ttl))
    assert hold.expires_at == min(placed_at + timedelta(seconds=ttl), lot_expires)

    clock.now = max(placed_at, hold.expires_at + timedelta(seconds=late))
    if sweep:
        ledger.expire_due()
    in_lot = 100 if lot_expires > clock.now else 0
    if clock.now < hold.expires_at:
        assert ledger.post_hold(f"{ref}-post", ref).status == "posted"
        expected = (in_lot - points, 0)
    else:
        err = refused(lambda: ledger.post_hold(f"{ref}-post", ref))
        assert (type(err), err.reason) == (FailedPrecondition, "HOLD_EXPIRED")
        expected = (in_lot, 0)  # the hold's points are back, unless their lot expired too
    bal = ledger.balance(member)
    assert (bal.available_points, bal.held_points) == expected
    assert ledger.audit() == []


@examples(2)
@given(
    purchases=st.lists(
        st.tuples(st.integers(1, 120), st.integers(100, 30_000)), min_size=2, max_size=4
    ),
    spend=st.integers(1, 100),
    give_back=st.integers(0, 100),
    sweep=st.booleans(),
)
def test_points_are_spent_earliest_expiry_first_and_given_back_latest_expiry_first(  # type: ignore[no-untyped-def]
    ledger, clock, purchases, spend, give_back, sweep
) -> None:
    """Purchases days apart earn lots; a redemption takes `spend` percent of them, a refund gives
    `give_back` percent of that back. Which lots paid shows as each lot expires: one second
    before and at each expiry, the balance must be the model's."""
    driver = driving(ledger, clock)
    for k, (days, fen) in enumerate(purchases):
        clock.advance(days=days)
        driver.earn(0, k, fen)
    available = driver.model.balance(driver.member(0), clock.now).available
    spent = max(1, available * spend // 100)
    driver.redeem(0, ORDERS - 1, spent, by_amount=False)
    if spent * give_back // 100:
        driver.refund(0, ORDERS - 1, "points", 0, spent * give_back // 100)
    expiries = sorted(lot.expires_at for lot in driver.model.members[driver.member(0)].lots)
    for expiry in expiries:
        for instant in (expiry - timedelta(seconds=1), expiry):
            clock.now = instant
            if sweep:
                driver.expire_due()
            driver.check_balances()
    assert ledger.audit() == []


@examples(2)
@given(
    earned=st.integers(1, 500),
    spend=st.integers(0, 100),
    refund=st.integers(1, 100),
    later=st.integers(0, 500),
)
def test_clawed_back_points_already_spent_become_debt_that_later_earnings_pay_first(  # type: ignore[no-untyped-def]
    ledger, clock, earned, spend, refund, later
) -> None:
    """Earn `earned` points, spend `spend` percent of them, refund `refund` percent of the
    order, then earn `later` points: checked against plain arithmetic."""
    driver = driving(ledger, clock)
    member, p = driver.member(0), driver.prefix
    amount_fen = earned * 100
    earn(driver, 0, "order", amount_fen)
    spent = earned * spend // 100
    if spent:
        ledger.redeem(Redeem(f"{p}-spend", member, f"{p}-spend", points=spent))
    refunded_fen = max(1, amount_fen * refund // 100)
    clawed = earned * refunded_fen // amount_fen  # rounded down, in the member's favour
    from_lot = min(clawed, earned - spent)
    debt = clawed - from_lot
    answer = ledger.refund(Refund(f"{p}-refund", f"{p}-order", amount_fen=refunded_fen))
    assert (answer.points_clawed_back, answer.points_added_to_debt, answer.debt_points) == (
        clawed,
        debt,
        debt,
    )
    paid = min(later, debt)
    if later:
        assert earn(driver, 0, "later", later * 100).points_applied_to_debt == paid
    bal = ledger.balance(member)
    assert (bal.available_points, bal.debt_points, bal.lifetime_earned_points) == (
        earned - spent - from_lot + later - paid,
        debt - paid,
        earned + later,
    )
    assert ledger.audit() == []


def test_earn_reports_the_available_points_balance_reports(ledger, clock) -> None:  # type: ignore[no-untyped-def]
    """Points of a hold that lapsed are the member's again, in every answer, sweep or no sweep."""
    driver = driving(ledger, clock, (10_000, 0))  # member 0 has 100 points
    driver.place_hold(0, 0, 30, 600)
    clock.advance(seconds=600)  # the hold lapses; no sweep runs
    earned = earn(driver, 0, "o", 1_000)
    assert ledger.balance(driver.member(0)).available_points == 110
    assert earned.available_points == 110


@pytest.mark.parametrize("sweep", [False, True])
def test_voiding_a_lapsed_hold_answers_expired_with_or_without_a_sweep(
    ledger, clock, sweep
) -> None:  # type: ignore[no-untyped-def]
    driver = driving(ledger, clock, (10_000, 0))
    ref = driver.hold_ref(0)
    driver.place_hold(0, 0, 30, 600)
    clock.advance(seconds=600)
    if sweep:
        ledger.expire_due()
    assert ledger.void_hold(f"{ref}-void", ref).status == "expired"
    assert refused(lambda: ledger.post_hold(f"{ref}-post", ref)).reason == "HOLD_EXPIRED"
    assert ledger.balance(driver.member(0)).available_points == 100


# -- law 3: a request id changes state at most once ------------------------------------------


@examples()
@given(opening=opening_earnings, history=short_histories, later=clock_moves, data=st.data())
def test_replaying_any_request_returns_the_first_answer_and_changes_nothing(  # type: ignore[no-untyped-def]
    ledger, clock, opening, history, later, data
) -> None:
    driver = driving(ledger, clock, opening)
    for step in history:
        driver.run(step)
    clock.advance(seconds=later)  # lots may expire and holds lapse meanwhile: the answers stand
    before = dump(ledger.engine)
    for sent in data.draw(st.permutations(driver.sent), label="replay order"):
        assert answer_of(ledger, sent.operation, sent.command) == sent.answer, sent
    assert dump(ledger.engine) == before


@examples()
@given(opening=opening_earnings, history=short_histories)
def test_a_request_id_reused_for_another_request_is_refused_and_changes_nothing(  # type: ignore[no-untyped-def]
    ledger, clock, opening, history
) -> None:
    driver = driving(ledger, clock, opening)
    for step in history:
        driver.run(step)
    before = dump(ledger.engine)
    for sent in driver.sent:
        for operation, command in other_requests(sent.operation, sent.command):
            err = refused(lambda: submit(ledger, operation, command))  # noqa: B023
            assert (type(err), err.reason) == (AlreadyExists, "REQUEST_ID_REUSED")
    assert dump(ledger.engine) == before


@examples(2)
@given(
    have=st.integers(0, 300),
    short=st.integers(1, 300),
    operation=st.sampled_from(["redeem", "place_hold"]),
)
def test_a_refusal_for_want_of_points_stands_after_the_member_earns_them(  # type: ignore[no-untyped-def]
    ledger, clock, have, short, operation
) -> None:
    driver = driving(ledger, clock)
    member, p = driver.member(0), driver.prefix
    if have:
        earn(driver, 0, "earn", have * 100)
    command: Redeem | PlaceHold = (
        Redeem(f"{p}-ask", member, f"{p}-order", points=have + short)
        if operation == "redeem"
        else PlaceHold(f"{p}-ask", f"{p}-hold", member, have + short, 600)
    )
    first = refused(lambda: submit(ledger, operation, command))
    assert first.reason == "INSUFFICIENT_POINTS"
    earn(driver, 0, "top-up", short * 100)
    assert ledger.balance(member).available_points == have + short

    before = dump(ledger.engine)
    assert Refusal.of(refused(lambda: submit(ledger, operation, command))) == Refusal.of(first)
    assert dump(ledger.engine) == before
    # Only the record of the request id refuses it: the same request under a new id goes through.
    submit(ledger, operation, dataclasses.replace(command, request_id=f"{p}-ask-again"))
    assert ledger.balance(member).available_points == 0
    assert ledger.audit() == []


@examples(2)
@given(fen=st.integers(100, 50_000), operation=st.sampled_from(["earn", "refund"]))
def test_a_refusal_for_a_missing_member_or_order_stands_after_it_appears(  # type: ignore[no-untyped-def]
    ledger, clock, fen, operation
) -> None:
    driver = driving(ledger, clock)
    p, member, order = driver.prefix, driver.member(2), f"{driver.prefix}-order"
    command: Earn | Refund
    if operation == "earn":  # for a member not enrolled yet
        command = Earn(f"{p}-ask", member, order, fen, "POS", None)
        reason = "MEMBER_NOT_FOUND"
        appear = lambda: ledger.enroll(Enroll(f"{p}-enroll", member))  # noqa: E731
    else:  # of an order that has earned nothing yet
        ledger.enroll(Enroll(f"{p}-enroll", member))
        command = Refund(f"{p}-ask", order, full=True)
        reason = "ORDER_NOT_FOUND"
        appear = lambda: earn(driver, 2, "order", fen)  # noqa: E731
    first = refused(lambda: submit(ledger, operation, command))
    assert first.reason == reason
    appear()

    before = dump(ledger.engine)
    assert Refusal.of(refused(lambda: submit(ledger, operation, command))) == Refusal.of(first)
    assert dump(ledger.engine) == before
    submit(ledger, operation, dataclasses.replace(command, request_id=f"{p}-ask-again"))
    assert ledger.audit() == []
