"""The ledger's domain: accounts, entry kinds and the lot-allocation rule. Plain Python, no I/O."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from coalition_kernel.errors import FailedPrecondition

# Journal accounts. Member accounts carry a member; the others are the node's own.
ISSUANCE = "ISSUANCE"  # contra account: goes negative by every point ever issued
REDEMPTION = "REDEMPTION"  # points spent at this merchant
CROSS_REDEMPTION = "CROSS_REDEMPTION"  # points spent at another merchant through a posted hold
BREAKAGE = "BREAKAGE"  # points that expired unused
CLAWBACK = "CLAWBACK"  # points taken back by refunds of earning orders
MEMBER_AVAILABLE = "MEMBER_AVAILABLE"
MEMBER_HELD = "MEMBER_HELD"
MEMBER_DEBT = "MEMBER_DEBT"  # negative: clawed-back points the member had already spent

MEMBER_ACCOUNTS = (MEMBER_AVAILABLE, MEMBER_HELD, MEMBER_DEBT)

# Journal transaction kinds (the proto's EntryKind, by name).
EARN = "EARN"
REDEEM = "REDEEM"
CLAWBACK_KIND = "CLAWBACK"
REDEMPTION_RETURN = "REDEMPTION_RETURN"
EXPIRE = "EXPIRE"
HOLD = "HOLD"
HOLD_POST = "HOLD_POST"
HOLD_RELEASE = "HOLD_RELEASE"
REWARD = "REWARD"  # points for check-ins, reviews, shares and referrals


@dataclass(frozen=True)
class Posting:
    """One journal line: `points` into `account` (negative: out of it)."""

    account: str
    points: int
    member_pk: int | None = None
    lot_id: int | None = None


@dataclass(frozen=True)
class SpendableLot:
    id: int
    remaining: int
    expires_at: datetime | None
    available_at: datetime | None = None  # pending (return window) until then

    def live(self, now: datetime, *, pending_ok: bool = False) -> bool:
        """Spendable at `now`: not expired, and out of its return window unless `pending_ok`."""
        if self.remaining <= 0 or (self.expires_at is not None and self.expires_at <= now):
            return False
        return pending_ok or self.available_at is None or self.available_at <= now


def spending_order(lot: SpendableLot) -> tuple[bool, datetime | None, int]:
    """Earliest expiry first, lots that never expire last, then oldest first."""
    return (lot.expires_at is None, lot.expires_at, lot.id)


def take_up_to(
    lots: Iterable[SpendableLot], points: int, now: datetime, *, pending_ok: bool = False
) -> tuple[list[tuple[int, int]], int]:
    """Which lots pay up to `points`, as (lot id, points taken), and the shortfall.

    Earliest expiry first; lots expired at `now` are never spent, whether or not a sweep has
    expired them yet.
    """
    live = sorted(
        (lot for lot in lots if lot.live(now, pending_ok=pending_ok)),
        key=spending_order,
    )
    taken: list[tuple[int, int]] = []
    needed = points
    for lot in live:
        if needed == 0:
            break
        take = min(lot.remaining, needed)
        taken.append((lot.id, take))
        needed -= take
    return taken, needed


def allocate(lots: Iterable[SpendableLot], points: int, now: datetime) -> list[tuple[int, int]]:
    """Like take_up_to, all or nothing: raises FailedPrecondition(INSUFFICIENT_POINTS)."""
    taken, needed = take_up_to(lots, points, now)
    if needed:
        available = points - needed
        raise FailedPrecondition(
            "INSUFFICIENT_POINTS",
            f"the member has {available} points available, {points} were asked for",
            available_points=str(available),
            requested_points=str(points),
        )
    return taken


def check_balanced(postings: Iterable[Posting]) -> None:
    """Law 1: every journal transaction's postings sum to zero, and none is zero."""
    postings = list(postings)
    if any(p.points == 0 for p in postings) or sum(p.points for p in postings) != 0:
        raise AssertionError(f"unbalanced journal transaction: {postings}")


def clawback_target(points_earned: int, amount_fen: int, refunded_fen: int) -> int:
    """Points to have clawed back once `refunded_fen` of an order is refunded, in total.

    Cumulative, so partial refunds that add up to the whole order claw back exactly what it earned.
    """
    return points_earned * refunded_fen // amount_fen
