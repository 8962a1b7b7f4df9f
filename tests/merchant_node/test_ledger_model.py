"""The ledger against a plain-Python reference model, step by step, on SQLite and PostgreSQL.

A hypothesis state machine enrolls, earns, redeems, refunds, places, posts and voids holds, moves
the clock and runs the expiry sweep. Every request goes to the model and to the ledger: they must
agree on the answer or on the refusal's reason; a refusal must leave every table (but the
idempotency record of the refusal) exactly as it was; after every step each member's balance
must be the model's and the audit must find no broken law.

The model is deliberately naive: it decides expiry by timestamps at every step (a lapsed hold
gives its points back, an expired lot is gone) and keeps no journal, so it shares no code and
no bookkeeping with the ledger. test_ledger_properties.py drives it with whole random histories.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from coalition_kernel.errors import AlreadyExists, CoalitionError, NotFound
from merchant_node.ledger.commands import Earn, Enroll, PlaceHold, Redeem, Refund
from merchant_node.ledger.schema import metadata
from merchant_node.ledger.service import NodeLedger
from tests.conftest import FakeClock

EXAMPLES = int(os.environ.get("COALITION_HYPOTHESIS_EXAMPLES", "40"))
POINTS_TTL = timedelta(days=365)  # open_test_ledger's policy
FEN_PER_POINT_EARNED = 100  # 1 point per yuan, rounded down; a point is worth 1 fen
MEMBERS, ORDERS, HOLDS = 3, 8, 3  # per driver: few enough that requests meet the same ones
DAY = 86_400  # seconds


# -- the reference model ---------------------------------------------------------------------


class Refused(Exception):
    """The model's word that the ledger must refuse the request, and with which reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(eq=False)
class Lot:
    seq: int  # creation order: the ledger's tie-break between lots expiring at the same time
    remaining: int
    expires_at: datetime

    def live(self, now: datetime) -> bool:
        return self.expires_at > now


@dataclass(eq=False)
class Part:
    """Points a redemption or a hold took from one lot."""

    lot: Lot
    taken: int
    returned: int = 0


@dataclass(eq=False)
class ModelHold:
    member: str
    points: int
    expires_at: datetime
    parts: list[Part]
    status: str = "pending"


@dataclass(eq=False)
class ModelEarning:
    member: str
    amount_fen: int
    points: int
    lot: Lot | None
    refunded_fen: int = 0
    clawed_back: int = 0


@dataclass(eq=False)
class ModelRedemption:
    member: str
    points: int
    parts: list[Part]
    returned: int = 0


@dataclass(eq=False)
class ModelMember:
    lots: list[Lot] = field(default_factory=list)
    debt: int = 0
    lifetime: int = 0


@dataclass(frozen=True)
class ModelBalance:
    available: int
    held: int
    expiring: int
    lifetime: int
    debt: int


class ReferenceLedger:
    """What a node should hold after each request, by the rules of DESIGN.md and the service
    layer's docstrings: earliest-expiring points are spent first, clawbacks take the order's own
    lot first and turn what was already spent into debt, returned points go back to the lots
    they came from (latest expiry first), a hold never outlives its lots."""

    def __init__(self) -> None:
        self.members: dict[str, ModelMember] = {}
        self.earnings: dict[str, ModelEarning] = {}
        self.redemptions: dict[str, ModelRedemption] = {}
        self.holds: dict[str, ModelHold] = {}
        self._lots = 0

    def settle(self, now: datetime) -> None:
        """Applies what the timestamps decided: lapsed holds release, expired lots are gone."""
        for hold in self.holds.values():
            if hold.status == "pending" and hold.expires_at <= now:
                hold.status = "expired"
                for part in hold.parts:
                    part.lot.remaining += part.taken
        for member in self.members.values():
            for lot in member.lots:
                if not lot.live(now):
                    lot.remaining = 0

    def balance(self, member_id: str, now: datetime, within_days: int = 30) -> ModelBalance:
        self.settle(now)
        member = self.members[member_id]
        horizon = now + timedelta(days=within_days)
        return ModelBalance(
            available=self._available(member, now),
            held=sum(h.points for h in self.holds.values() if self._pending(h, member_id)),
            expiring=sum(
                lot.remaining for lot in member.lots if lot.live(now) and lot.expires_at <= horizon
            ),
            lifetime=member.lifetime,
            debt=member.debt,
        )

    def enroll(self, member_id: str) -> None:
        if member_id in self.members:
            raise Refused("MEMBER_ALREADY_ENROLLED")
        self.members[member_id] = ModelMember()

    def earn(
        self, member_id: str, order_id: str, amount_fen: int, now: datetime, occurred_at: datetime
    ) -> tuple[int, int, datetime | None, int]:
        """Returns (points earned, points that paid off debt, expiry of the new lot, points
        available afterwards). Points live a year from the purchase, not from the request."""
        member = self._member(member_id)
        self.settle(now)
        if order_id in self.earnings:
            raise Refused("ORDER_ALREADY_EARNED")
        points = amount_fen // FEN_PER_POINT_EARNED
        to_debt = min(points, member.debt)
        lot = None
        if points > to_debt:
            self._lots += 1
            lot = Lot(self._lots, points - to_debt, occurred_at + POINTS_TTL)
            member.lots.append(lot)
        member.debt -= to_debt
        member.lifetime += points
        self.earnings[order_id] = ModelEarning(member_id, amount_fen, points, lot)
        return points, to_debt, lot.expires_at if lot else None, self._available(member, now)

    def redeem(self, member_id: str, order_id: str, points: int, now: datetime) -> int:
        """Returns the points available afterwards."""
        member = self._member(member_id)
        self.settle(now)
        if order_id in self.redemptions:
            raise Refused("ORDER_ALREADY_REDEEMED")
        parts = self._allocate(member, points, now)
        self.redemptions[order_id] = ModelRedemption(member_id, points, parts)
        return self._available(member, now)

    def refund(
        self, order_id: str, *, full: bool, amount_fen: int, points: int, now: datetime
    ) -> tuple[int, int, int, int, int]:
        """Returns (clawed back, added to debt, returned, available, debt) afterwards."""
        earning = self.earnings.get(order_id)
        redemption = self.redemptions.get(order_id)
        owner = earning or redemption
        if owner is None:
            raise Refused("ORDER_NOT_FOUND")
        self.settle(now)
        open_fen = earning.amount_fen - earning.refunded_fen if earning else 0
        open_points = redemption.points - redemption.returned if redemption else 0
        if full:
            if not (open_fen or open_points):
                raise Refused("ORDER_ALREADY_REFUNDED")
            amount_fen, points = open_fen, open_points
        elif amount_fen and earning is None:
            raise Refused("ORDER_HAS_NO_EARNING")
        elif points and redemption is None:
            raise Refused("ORDER_HAS_NO_REDEMPTION")
        elif amount_fen > open_fen or points > open_points:
            raise Refused("REFUND_EXCEEDS_ORDER")
        clawed = to_debt = 0
        if earning and amount_fen:
            clawed, to_debt = self._claw_back(earning, amount_fen, now)
        if redemption and points:
            self._give_back(redemption, points)
            self.settle(now)  # points given back to a lot that has expired since are gone
        member = self.members[owner.member]
        return clawed, to_debt, points, self._available(member, now), member.debt

    def place_hold(
        self, hold_ref: str, member_id: str, points: int, ttl_seconds: int, now: datetime
    ) -> datetime:
        """Returns when the hold lapses."""
        member = self._member(member_id)
        self.settle(now)
        if hold_ref in self.holds:
            raise Refused("HOLD_EXISTS")
        parts = self._allocate(member, points, now)
        lapses = min(
            [now + timedelta(seconds=ttl_seconds)] + [part.lot.expires_at for part in parts]
        )
        self.holds[hold_ref] = ModelHold(member_id, points, lapses, parts)
        return lapses

    def post_hold(self, hold_ref: str, now: datetime) -> ModelHold:
        hold = self._hold(hold_ref, now)
        if hold.status == "pending":
            hold.status = "posted"
        elif hold.status == "voided":
            raise Refused("HOLD_VOIDED")
        elif hold.status == "expired":
            raise Refused("HOLD_EXPIRED")
        return hold

    def void_hold(self, hold_ref: str, now: datetime) -> ModelHold:
        hold = self._hold(hold_ref, now)
        if hold.status == "posted":
            raise Refused("HOLD_ALREADY_POSTED")
        if hold.status == "pending":
            hold.status = "voided"
            for part in hold.parts:
                part.lot.remaining += part.taken
        return hold

    # -- helpers ---------------------------------------------------------------------------

    def _member(self, member_id: str) -> ModelMember:
        if member_id not in self.members:
            raise Refused("MEMBER_NOT_FOUND")
        return self.members[member_id]

    def _hold(self, hold_ref: str, now: datetime) -> ModelHold:
        if hold_ref not in self.holds:
            raise Refused("HOLD_NOT_FOUND")
        self.settle(now)
        return self.holds[hold_ref]

    def _pending(self, hold: ModelHold, member_id: str) -> bool:
        return hold.member == member_id and hold.status == "pending"

    @staticmethod
    def _available(member: ModelMember, now: datetime) -> int:
        return sum(lot.remaining for lot in member.lots if lot.live(now))

    @staticmethod
    def _take(lots: Iterable[Lot], points: int, now: datetime) -> tuple[list[Part], int]:
        """Takes up to `points` from live lots, earliest expiry first; returns the shortfall."""
        parts = []
        for lot in sorted(
            (lot for lot in lots if lot.remaining and lot.live(now)),
            key=lambda lot: (lot.expires_at, lot.seq),
        ):
            if points == 0:
                break
            take = min(lot.remaining, points)
            lot.remaining -= take
            parts.append(Part(lot, take))
            points -= take
        return parts, points

    def _allocate(self, member: ModelMember, points: int, now: datetime) -> list[Part]:
        if self._available(member, now) < points:
            raise Refused("INSUFFICIENT_POINTS")
        return self._take(member.lots, points, now)[0]

    def _claw_back(self, earning: ModelEarning, amount_fen: int, now: datetime) -> tuple[int, int]:
        earning.refunded_fen += amount_fen
        # Cumulative, so partial refunds adding up to the order claw back exactly its points.
        claw = earning.points * earning.refunded_fen // earning.amount_fen - earning.clawed_back
        earning.clawed_back += claw
        member = self.members[earning.member]
        own = [earning.lot] if earning.lot else []
        _, short = self._take(own, claw, now)
        _, short = self._take([lot for lot in member.lots if lot is not earning.lot], short, now)
        member.debt += short
        return claw, short

    @staticmethod
    def _give_back(redemption: ModelRedemption, points: int) -> None:
        redemption.returned += points
        for part in sorted(
            redemption.parts, key=lambda p: (p.lot.expires_at, p.lot.seq), reverse=True
        ):
            give = min(part.taken - part.returned, points)
            part.returned += give
            part.lot.remaining += give
            points -= give


# -- sending requests to both ----------------------------------------------------------------


@dataclass(frozen=True)
class HoldAction:
    """A post_hold or void_hold request (the service takes them as two arguments)."""

    request_id: str
    hold_ref: str


@dataclass(frozen=True)
class Refusal:
    """A refused request's answer, comparable with a replay's."""

    error: str
    reason: str

    @classmethod
    def of(cls, err: CoalitionError) -> Refusal:
        return cls(type(err).__name__, err.reason)


@dataclass(frozen=True)
class Sent:
    operation: str
    command: Any
    answer: Any  # the result, or a Refusal


def submit(ledger: NodeLedger, operation: str, command: Any) -> Any:
    if isinstance(command, HoldAction):
        return getattr(ledger, operation)(command.request_id, command.hold_ref)
    if operation == "place_hold":  # the member's one-time consent code is not this model's topic
        return ledger.place_hold(command, require_consent=False)
    return getattr(ledger, operation)(command)


def answer_of(ledger: NodeLedger, operation: str, command: Any) -> Any:
    try:
        return submit(ledger, operation, command)
    except CoalitionError as err:
        return Refusal.of(err)


def other_requests(operation: str, command: Any) -> list[tuple[str, Any]]:
    """Requests that reuse `command`'s request id for something else: another body of the same
    operation, and another operation."""
    rid = command.request_id
    if isinstance(command, HoldAction):
        flipped = "void_hold" if operation == "post_hold" else "post_hold"
        return [(flipped, command), ("enroll", Enroll(rid, "someone-else"))]
    if isinstance(command, Enroll):
        changed: Any = dataclasses.replace(command, display_name="another name")
    elif isinstance(command, Earn):
        changed = dataclasses.replace(command, amount_fen=command.amount_fen + 1)
    elif isinstance(command, PlaceHold | Redeem) and command.points:
        changed = dataclasses.replace(command, points=command.points + 1)
    elif isinstance(command, Redeem):
        changed = dataclasses.replace(command, amount_fen=command.amount_fen + 1)
    elif command.full:
        changed = Refund(rid, command.order_id, amount_fen=1)
    else:
        changed = dataclasses.replace(command, amount_fen=command.amount_fen + 1)
    another = ("enroll", Enroll(rid, "someone-else"))
    if operation == "enroll":
        another = ("refund", Refund(rid, "some-order", full=True))
    return [(operation, changed), another]


def dump(engine: sa.Engine, *, idempotency: bool = True) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every ledger table, ordered by primary key (by every column if none)."""
    with engine.connect() as conn:
        return {
            table.name: [
                tuple(row)
                for row in conn.execute(
                    sa.select(table).order_by(*(list(table.primary_key) or list(table.columns)))
                )
            ]
            for table in metadata.sorted_tables
            if idempotency or table.name != "idempotency"
        }


class Driver:
    """A ledger, a fresh model and the ledger's clock, set back to the first day. Each request
    goes to both and must get the same answer. Members, orders, holds and request ids carry a
    prefix of the driver's own, so that drivers can take turns on one ledger without meeting."""

    def __init__(self, ledger: NodeLedger, clock: FakeClock) -> None:
        clock.now = FakeClock().now
        self.ledger, self.clock = ledger, clock
        self.model = ReferenceLedger()
        self.prefix = uuid.uuid4().hex[:12]
        self.sent: list[Sent] = []

    def member(self, m: int) -> str:
        return f"{self.prefix}-m{m}"

    def order(self, m: int, k: int) -> str:
        return f"{self.prefix}-m{m}-o{k}"  # a member's earning and redemption may share an order

    def hold_ref(self, h: int) -> str:
        return f"{self.prefix}-h{h}"

    def request_id(self) -> str:
        return f"{self.prefix}-rq{len(self.sent)}"

    def send(
        self, operation: str, command: Any, predict: Callable[[], Any], check: Callable
    ) -> Any:
        """The model predicts, then the ledger answers. A predicted refusal must come with the
        model's reason and leave every table but the idempotency records as it was."""
        try:
            expected = predict()
        except Refused as refusal:
            before = dump(self.ledger.engine, idempotency=False)
            with pytest.raises(CoalitionError) as err:
                submit(self.ledger, operation, command)
            assert err.value.reason == refusal.reason, (operation, command, err.value)
            assert dump(self.ledger.engine, idempotency=False) == before, (operation, command)
            self.sent.append(Sent(operation, command, Refusal.of(err.value)))
            return err.value
        result = submit(self.ledger, operation, command)
        check(result, expected)
        self.sent.append(Sent(operation, command, result))
        return result

    # -- the use cases -----------------------------------------------------------------------

    def enroll(self, m: int) -> None:
        member, now = self.member(m), self.clock.now

        def check(res: Any, _: None) -> None:
            assert (res.member_id, res.enrolled_at) == (member, now)

        cmd = Enroll(self.request_id(), member)
        self.send("enroll", cmd, lambda: self.model.enroll(member), check)

    def earn(self, m: int, k: int, amount_fen: int, days_ago: int = 0) -> None:
        """An earning for a purchase made now, or `days_ago` days ago (the ledger takes up to
        30): so lots created one after another may expire in another order."""
        member, order, now = self.member(m), self.order(m, k), self.clock.now
        occurred_at = now - timedelta(days=days_ago)

        def check(res: Any, expected: tuple[int, int, datetime | None, int]) -> None:
            assert (
                res.points_earned,
                res.points_applied_to_debt,
                res.expires_at,
                res.available_points,
            ) == expected
            assert res.rate_version == 1

        cmd = Earn(
            self.request_id(), member, order, amount_fen, "POS", occurred_at if days_ago else None
        )
        self.send(
            "earn", cmd, lambda: self.model.earn(member, order, amount_fen, now, occurred_at), check
        )

    def redeem(self, m: int, k: int, points: int, by_amount: bool) -> None:
        member, order, now = self.member(m), self.order(m, k), self.clock.now

        def check(res: Any, available: int) -> None:
            assert (res.points_redeemed, res.value_fen, res.available_points) == (
                points,
                points,  # one point is worth one fen
                available,
            )

        amounts = {"amount_fen": points} if by_amount else {"points": points}
        cmd = Redeem(self.request_id(), member, order, **amounts)
        self.send("redeem", cmd, lambda: self.model.redeem(member, order, points, now), check)

    def refund(self, m: int, k: int, kind: str, amount_fen: int, points: int) -> None:
        order, now = self.order(m, k), self.clock.now
        full = kind == "full"
        amount_fen = amount_fen if kind in ("amount", "both") else 0
        points = points if kind in ("points", "both") else 0

        def predict() -> tuple[int, int, int, int, int]:
            return self.model.refund(
                order, full=full, amount_fen=amount_fen, points=points, now=now
            )

        def check(res: Any, expected: tuple[int, int, int, int, int]) -> None:
            assert dataclasses.astuple(res) == expected

        cmd = Refund(self.request_id(), order, full=full, amount_fen=amount_fen, points=points)
        self.send("refund", cmd, predict, check)

    def place_hold(self, m: int, h: int, points: int, ttl_seconds: int) -> None:
        member, ref, now = self.member(m), self.hold_ref(h), self.clock.now

        def check(res: Any, lapses: datetime) -> None:
            assert (res.hold_ref, res.status, res.points, res.expires_at) == (
                ref,
                "pending",
                points,
                lapses,
            )

        cmd = PlaceHold(self.request_id(), ref, member, points, ttl_seconds)
        self.send(
            "place_hold",
            cmd,
            lambda: self.model.place_hold(ref, member, points, ttl_seconds, now),
            check,
        )

    def post_hold(self, h: int) -> None:
        ref, now = self.hold_ref(h), self.clock.now

        def check(res: Any, hold: ModelHold) -> None:
            assert (res.hold_ref, res.status, res.points, res.expires_at) == (
                ref,
                "posted",
                hold.points,
                hold.expires_at,
            )

        cmd = HoldAction(self.request_id(), ref)
        self.send("post_hold", cmd, lambda: self.model.post_hold(ref, now), check)

    def void_hold(self, h: int) -> None:
        ref, now = self.hold_ref(h), self.clock.now

        def check(res: Any, hold: ModelHold) -> None:
            assert (res.hold_ref, res.status, res.points, res.expires_at) == (
                ref,
                hold.status,
                hold.points,
                hold.expires_at,
            )

        cmd = HoldAction(self.request_id(), ref)
        self.send("void_hold", cmd, lambda: self.model.void_hold(ref, now), check)

    def advance(self, seconds: int) -> None:
        self.clock.advance(seconds=seconds)

    def expire_due(self) -> None:
        self.ledger.expire_due()
        assert self.ledger.expire_due() == 0  # one sweep writes down everything that was due
        self.model.settle(self.clock.now)

    def run(self, step: tuple[Any, ...]) -> None:
        getattr(self, step[0])(*step[1:])

    # -- checks ------------------------------------------------------------------------------

    def check_balances(self) -> None:
        for m in range(MEMBERS):
            member = self.member(m)
            if member not in self.model.members:
                with pytest.raises(NotFound):
                    self.ledger.balance(member)
                continue
            bal = self.ledger.balance(member)
            assert ModelBalance(
                bal.available_points,
                bal.held_points,
                bal.expiring_points,
                bal.lifetime_earned_points,
                bal.debt_points,
            ) == self.model.balance(member, self.clock.now), member


# -- what the requests are made of -----------------------------------------------------------

member_indexes = st.integers(0, MEMBERS - 1)
order_indexes = st.integers(0, ORDERS - 1)
hold_indexes = st.integers(0, HOLDS - 1)
purchase_ages = st.sampled_from([0, 0, 0, 1, 2, 29, 30])  # how long ago a purchase was made
shares = st.integers(1, 110)  # percent of what a member has, or an order has still open
# Small amounts (less than a point, a few points) as often as everyday ones.
fen_amounts = st.one_of(st.integers(1, 500), st.integers(1_000, 40_000))
point_amounts = st.one_of(st.integers(1, 20), st.integers(1, 150))
ttls = st.sampled_from([1, 600, 3600, 86_400, 604_800])
refund_kinds = st.sampled_from(["full", "amount", "points", "both", "full", "amount"])
# Seconds to hours, or days: holds last 1 second to 7 days, lots a year.
clock_moves_within_the_year = st.one_of(
    st.integers(1, 90),
    st.integers(60, 12 * 3600),
    st.integers(1, 60).map(lambda days: days * DAY),
)
# Now and then about a year too (365 days exactly among them), so that lots expire.
clock_moves = st.one_of(
    clock_moves_within_the_year,
    st.integers(1, 400).map(lambda days: days * DAY),
    st.integers(360, 370).map(lambda days: days * DAY),
)

steps = st.one_of(
    st.tuples(st.just("enroll"), member_indexes),
    st.tuples(st.just("earn"), member_indexes, order_indexes, fen_amounts, purchase_ages),
    st.tuples(st.just("redeem"), member_indexes, order_indexes, point_amounts, st.booleans()),
    st.tuples(
        st.just("refund"), member_indexes, order_indexes, refund_kinds, fen_amounts, point_amounts
    ),
    st.tuples(st.just("place_hold"), member_indexes, hold_indexes, point_amounts, ttls),
    st.tuples(st.just("post_hold"), hold_indexes),
    st.tuples(st.just("void_hold"), hold_indexes),
    st.tuples(st.just("advance"), clock_moves),
    st.tuples(st.just("expire_due")),
)
"""One step of a random history, as (Driver method, arguments...)."""


# -- the state machine -----------------------------------------------------------------------


class LedgerMachine(RuleBasedStateMachine):
    """Members 0 and 1 start enrolled with points; member 2 may enroll later. Amounts are
    drawn as shares of what the model says a member has or an order has still open, so that
    requests both succeed and fail; the clock moves freely or to the edges of expiries."""

    def __init__(self, ledger: NodeLedger, clock: FakeClock) -> None:
        super().__init__()
        self.driver = Driver(ledger, clock)

    @initialize(fen=st.tuples(st.integers(5_000, 50_000), st.integers(5_000, 50_000)))
    def enroll_two_members_who_earn(self, fen: tuple[int, int]) -> None:
        for m in (0, 1):
            self.driver.enroll(m)
            self.driver.earn(m, 0, fen[m])

    @rule(m=st.sampled_from([1, 2]))  # 2 is not enrolled yet, 1 is
    def enroll(self, m: int) -> None:
        self.driver.enroll(m)

    @rule(m=member_indexes, k=order_indexes, amount_fen=fen_amounts, days_ago=purchase_ages)
    def earn(self, m: int, k: int, amount_fen: int, days_ago: int) -> None:
        self.driver.earn(m, k, amount_fen, days_ago)

    def share_of_available(self, m: int, percent: int) -> int:
        """`percent` of what member `m` has now (at least 1 point): above 100, too much."""
        member = self.driver.member(m)
        if member not in self.driver.model.members:
            return percent
        available = self.driver.model.balance(member, self.driver.clock.now).available
        return max(1, available * percent // 100)

    @rule(m=member_indexes, k=order_indexes, percent=shares, by_amount=st.booleans())
    def redeem(self, m: int, k: int, percent: int, by_amount: bool) -> None:
        self.driver.redeem(m, k, self.share_of_available(m, percent), by_amount)

    def orders(self) -> list[tuple[int, int]]:
        model = self.driver.model
        return [
            (m, k)
            for m in range(MEMBERS)
            for k in range(ORDERS)
            if {self.driver.order(m, k)} & (model.earnings.keys() | model.redemptions.keys())
        ]

    def holds(self) -> list[int]:
        return [h for h in range(HOLDS) if self.driver.hold_ref(h) in self.driver.model.holds]

    @precondition(lambda self: self.orders())
    @rule(
        i=st.integers(min_value=0),
        kind=refund_kinds,
        fen_share=shares,
        points_share=shares,
    )
    def refund(self, i: int, kind: str, fen_share: int, points_share: int) -> None:
        """Refunds an order that earned or redeemed, all of it or a share of what is still open
        (up to a tenth more than that, which must be refused)."""
        m, k = self.orders()[i % len(self.orders())]
        order = self.driver.order(m, k)
        earning = self.driver.model.earnings.get(order)
        redemption = self.driver.model.redemptions.get(order)
        open_fen = earning.amount_fen - earning.refunded_fen if earning else 0
        open_points = redemption.points - redemption.returned if redemption else 0
        amount_fen = max(1, open_fen * fen_share // 100)
        points = max(1, open_points * points_share // 100)
        self.driver.refund(m, k, kind, amount_fen, points)

    @rule(m=member_indexes, h=hold_indexes, percent=shares, ttl=ttls)
    def place_hold(self, m: int, h: int, percent: int, ttl: int) -> None:
        self.driver.place_hold(m, h, self.share_of_available(m, percent), ttl)

    @precondition(lambda self: self.holds())
    @rule(i=st.integers(min_value=0), lapse=st.sampled_from([None, -1, 0]))
    def post_hold(self, i: int, lapse: int | None) -> None:
        """Posts a hold now or, if it is still pending then, a second before or at the instant
        it lapses."""
        h = self.holds()[i % len(self.holds())]
        hold = self.driver.model.holds[self.driver.hold_ref(h)]
        if lapse is not None and hold.status == "pending":
            at = hold.expires_at + timedelta(seconds=lapse)
            self.driver.clock.now = max(self.driver.clock.now, at)
        self.driver.post_hold(h)

    @precondition(lambda self: self.holds())
    @rule(i=st.integers(min_value=0))
    def void_hold(self, i: int) -> None:
        self.driver.void_hold(self.holds()[i % len(self.holds())])

    @rule(seconds=clock_moves_within_the_year)
    def advance_clock(self, seconds: int) -> None:
        self.driver.advance(seconds)

    def deadlines(self) -> list[datetime]:
        """When live lots expire and pending holds lapse, from now on."""
        now, model = self.driver.clock.now, self.driver.model
        model.settle(now)
        times = {lot.expires_at for m in model.members.values() for lot in m.lots if lot.remaining}
        times |= {hold.expires_at for hold in model.holds.values() if hold.status == "pending"}
        return sorted(t for t in times if t > now)

    @precondition(lambda self: self.deadlines())
    @rule(i=st.integers(0, 1), offset=st.sampled_from([-1, 0, 1]))
    def advance_to_a_deadline(self, i: int, offset: int) -> None:
        """To the second before, the instant of, or the second after the next or second next lot
        expiries or hold lapses: where an off-by-one would show."""
        deadlines = self.deadlines()
        target = deadlines[i % len(deadlines)] + timedelta(seconds=offset)
        self.driver.clock.now = max(self.driver.clock.now, target)

    @rule()
    def expire_due(self) -> None:
        self.driver.expire_due()

    @precondition(lambda self: self.driver.sent)
    @rule(i=st.integers(min_value=0), body=st.sampled_from(["same", "other", "other operation"]))
    def retry_a_request(self, i: int, body: str) -> None:
        """A request id sent again with the same body gets the first answer; with another body
        (or for another operation) it is refused. Neither changes anything."""
        sent = self.driver.sent[i % len(self.driver.sent)]
        engine = self.driver.ledger.engine
        before = dump(engine)
        if body == "same":
            assert answer_of(self.driver.ledger, sent.operation, sent.command) == sent.answer
        else:
            other = other_requests(sent.operation, sent.command)[body == "other operation"]
            with pytest.raises(AlreadyExists) as err:
                submit(self.driver.ledger, *other)
            assert err.value.reason == "REQUEST_ID_REUSED"
        assert dump(engine) == before

    @invariant()
    def balances_are_the_models(self) -> None:
        self.driver.check_balances()

    @invariant()
    def the_ledger_laws_hold(self) -> None:
        assert self.driver.ledger.audit() == []


def test_the_ledger_matches_its_reference_model_step_by_step(
    ledger: NodeLedger, clock: FakeClock
) -> None:
    run_state_machine_as_test(
        lambda: LedgerMachine(ledger, clock),
        settings=settings(
            max_examples=max(1, EXAMPLES // 3),
            stateful_step_count=50,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
