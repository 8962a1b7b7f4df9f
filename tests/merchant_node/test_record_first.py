"""Law 3 on the POS's hot writes (earn, redeem), whose idempotency record is found by its unique
request id when the answer is recorded, not looked up before the work (ledger/idempotency.py,
`record_first`): a retry still gets the first answer, even when its work would now be refused
(or now succeed), and changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from coalition_kernel.errors import (
    AlreadyExists,
    CoalitionError,
    FailedPrecondition,
    PermissionDenied,
)
from merchant_node.ledger.commands import Earn, Enroll, PlaceHold, Redeem
from merchant_node.ledger.schema import consent_acquirer_failures, consent_guards
from merchant_node.ledger.service import NodeLedger
from tests.conftest import FakeClock
from tests.merchant_node.test_ledger import wallet_code


def _state(ledger: NodeLedger) -> tuple[int, int, list[str]]:
    bal = ledger.balance("m-1")
    return bal.available_points, bal.lifetime_earned_points, ledger.audit()


@pytest.fixture
def member(ledger: NodeLedger) -> str:
    ledger.enroll(Enroll("e-1", "m-1"))
    return "m-1"


def test_retry_of_an_earn_whose_date_is_now_too_old_gets_the_first_answer(
    ledger: NodeLedger, clock: FakeClock, member: str
) -> None:
    cmd = Earn("r-1", member, "o-1", 10_000, "POS", clock.now - timedelta(days=29))
    first = ledger.earn(cmd)
    clock.advance(days=3)  # the purchase date is now past the 30 days an earn may go back
    before = _state(ledger)
    assert ledger.earn(cmd) == first
    assert _state(ledger) == before


def test_retry_over_the_callers_limit_gets_the_first_answer(
    ledger: NodeLedger, member: str
) -> None:
    cmd = Earn("r-1", member, "o-1", 10_000, "POS", None)
    first = ledger.earn(cmd)
    before = _state(ledger)
    assert ledger.earn(cmd, max_points=1) == first
    assert _state(ledger) == before


def test_retry_of_a_refused_redeem_stays_refused_after_the_points_arrived(
    ledger: NodeLedger, member: str
) -> None:
    cmd = Redeem("r-1", member, "o-1", points=50)
    with pytest.raises(FailedPrecondition) as first:
        ledger.redeem(cmd)
    ledger.earn(Earn("r-2", member, "o-2", 10_000, "POS", None))
    before = _state(ledger)
    with pytest.raises(CoalitionError) as again:
        ledger.redeem(cmd)  # its work would succeed now: rolled back, the refusal answers
    assert (again.value.reason, again.value.message) == (first.value.reason, first.value.message)
    assert _state(ledger) == before


def test_retry_of_a_redeem_gets_the_first_answer_and_spends_nothing(
    ledger: NodeLedger, member: str
) -> None:
    ledger.earn(Earn("r-1", member, "o-1", 10_000, "POS", None))
    cmd = Redeem("r-2", member, "o-2", points=30)
    first = ledger.redeem(cmd)
    before = _state(ledger)
    assert ledger.redeem(cmd) == first
    assert _state(ledger) == before


@pytest.mark.parametrize(
    "other",
    [
        Earn("r-1", "m-1", "o-9", 20_000, "POS", None),  # its work would succeed
        Redeem("r-1", "m-1", "o-9", points=10**9),  # its work would be refused
    ],
)
def test_the_same_id_with_another_body_is_refused_and_changes_nothing(
    ledger: NodeLedger, member: str, other: Earn | Redeem
) -> None:
    ledger.earn(Earn("r-1", member, "o-1", 10_000, "POS", None))
    before = _state(ledger)
    with pytest.raises(AlreadyExists) as err:
        ledger.earn(other) if isinstance(other, Earn) else ledger.redeem(other)
    assert err.value.reason == "REQUEST_ID_REUSED"
    assert _state(ledger) == before


def test_the_same_id_with_a_malformed_date_is_refused_as_reused(
    ledger: NodeLedger, clock: FakeClock, member: str
) -> None:
    ledger.earn(Earn("r-1", member, "o-1", 10_000, "POS", None))
    with pytest.raises(AlreadyExists) as err:
        ledger.earn(Earn("r-1", member, "o-1", 10_000, "POS", clock.now + timedelta(days=9)))
    assert err.value.reason == "REQUEST_ID_REUSED"


def _failures(ledger: NodeLedger) -> list[tuple[int, ...]]:
    with ledger.engine.connect() as conn:
        rows = conn.execute(sa.select(consent_guards.c.failures)).all()
        rows += conn.execute(sa.select(consent_acquirer_failures.c.failures)).all()
    return [tuple(r) for r in rows]


def test_retry_of_a_hold_after_its_code_lapsed_gets_the_first_answer_uncounted(
    ledger: NodeLedger, clock: FakeClock, member: str
) -> None:
    ledger.earn(Earn("r-1", member, "o-1", 10_000, "POS", None))
    code = wallet_code(ledger, member, clock.now)
    cmd = PlaceHold("x:h-req", "h1", member, 10, 600, code, "shop-b", 10, "", "shop-a")
    first = ledger.place_hold(cmd)
    assert ledger.place_hold(cmd) == first  # the code is spent: the record answers
    clock.advance(seconds=90)  # the code has lapsed: the record answers, no wrong code counted
    assert ledger.place_hold(cmd) == first
    assert _failures(ledger) == []
    assert ledger.balance(member).held_points == 10
    posted = ledger.post_hold("x:p-req", "h1", "2026-01-05")
    clock.advance(seconds=900)  # past the hold's time
    assert ledger.post_hold("x:p-req", "h1", "2026-01-05") == posted
    bal = ledger.balance(member)
    assert (bal.available_points, bal.held_points) == (90, 0)
    assert ledger.audit() == []


def test_a_wrong_code_under_a_new_id_is_still_counted(
    ledger: NodeLedger, clock: FakeClock, member: str
) -> None:
    ledger.earn(Earn("r-1", member, "o-1", 10_000, "POS", None))
    right = wallet_code(ledger, member, clock.now)
    wrong = f"{(int(right) + 1) % 10**6:06d}"
    with pytest.raises(PermissionDenied) as err:
        ledger.place_hold(
            PlaceHold("x:h-1", "h1", member, 10, 600, wrong, "shop-b", 10, "", "shop-a")
        )
    assert err.value.reason == "CONSENT_INVALID"
    assert sorted(_failures(ledger)) == [(1,), (1,)]
