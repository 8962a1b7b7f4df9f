"""Which shops share customers and where cross-shop spending flows, from the exchange's clearing
records over a window: for the operator's partnership suggestions. Aggregates only.

Definitions (docs/protocol.md, "GetAffinity", says the same):

- A *flow* I → A is every captured redemption of issuer I's points at acquirer A (I ≠ A) whose
  clearing record was captured in the window: its distinct members m(I→A) (members are the
  issuer's, so a member counts once however often she spent there), redemptions, points (the
  issuer's) and value in fen.
- *Suppression*: a flow of fewer than k distinct members is left out of everything — the flows,
  the shared counts, the scores' totals and the suggestions — so that no figure here covers fewer
  than k members and none can be recovered by subtracting the others. Only how many flows were
  left out is said.
- *Shared customers* of shops X and Y: members of X who spent at Y plus members of Y who spent at
  X (the two sets are disjoint: a member belongs to one issuer), over the flows shown.
- *Lift* of a flow, in basis points (10000: as independent shopping predicts): observed members
  over expected, where the issuer's cross-shopping members are spread over the other shops in
  proportion to how many cross-shopping members each shop draws:
      expected(I → A) = out(I) · in(A) / (T − in(I)),   lift = m(I→A) / expected
  with out(I) = Σ_A m(I→A), in(A) = Σ_I m(I→A), T = Σ m, over the flows shown. The divisor leaves
  out what I itself draws, since I's members cannot cross-shop at I.
- *Suggestions*: a flow is strong when shown with lift ≥ 10000. Both directions of a pair strong:
  a joint offer (score: the smaller lift). One strong: the acquirer's related-product offer to the
  issuer's members (score: its lift). Ranked by score, then shared members, then ids.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, distinct, func, select

from coalition_kernel.errors import InvalidArgument
from exchange.schema import clearing_records

DEFAULT_DAYS = 30
MAX_DAYS = 366
DEFAULT_MIN_MEMBERS = 5
# Below 3 a shown count could be one member, or two who know each other: the exchange refuses it.
MIN_MIN_MEMBERS, MAX_MIN_MEMBERS = 3, 1000
INDEPENDENT_BP = 10_000  # lift of a flow exactly as independent shopping predicts
JOINT_OFFER, RELATED_PRODUCT_OFFER = "joint_offer", "related_product_offer"


@dataclass(frozen=True)
class Flow:
    issuer_id: str  # whose members (and points)
    acquirer_id: str  # where they spent
    members: int  # distinct members of the issuer
    redemptions: int
    points: int
    value_fen: int
    lift_bp: int = 0


@dataclass(frozen=True)
class Shared:
    first_id: str  # the pair in id order
    second_id: str
    members: int  # members of either shop who spent at the other, over the flows shown


@dataclass(frozen=True)
class Suggestion:
    kind: str  # JOINT_OFFER or RELATED_PRODUCT_OFFER
    offering_id: str  # joint: the pair's first shop in id order; related: the acquirer
    audience_id: str  # joint: the other; related: the issuer whose members get the offer
    score_bp: int
    members: int  # joint: the pair's shared customers; related: the flow's members


@dataclass(frozen=True)
class Affinity:
    window_start: datetime
    window_end: datetime
    min_members: int
    flows: list[Flow]  # by issuer, acquirer
    shared: list[Shared]  # most shared first
    suggestions: list[Suggestion]  # best first
    suppressed_flows: int


def checked(days: int, min_members: int) -> tuple[int, int]:
    """The window and k asked for (0: the defaults), or INVALID_ARGUMENT."""
    days = days or DEFAULT_DAYS
    k = min_members or DEFAULT_MIN_MEMBERS
    if not 1 <= days <= MAX_DAYS:
        raise InvalidArgument("DAYS_OUT_OF_RANGE", f"days must be 1-{MAX_DAYS}, not {days}")
    if not MIN_MIN_MEMBERS <= k <= MAX_MIN_MEMBERS:
        raise InvalidArgument(
            "MIN_MEMBERS_OUT_OF_RANGE",
            f"min_members must be {MIN_MIN_MEMBERS}-{MAX_MIN_MEMBERS}, not {k}",
        )
    return days, k


def affinity(conn: Connection, now: datetime, days: int = 0, min_members: int = 0) -> Affinity:
    """The flows between shops of the last `days` days up to `now`, suppressed under
    `min_members` distinct members, with shared customers, lifts and ranked suggestions."""
    days, k = checked(days, min_members)
    start = now - timedelta(days=days)
    c = clearing_records
    rows = conn.execute(
        select(
            c.c.issuer_id,
            c.c.acquirer_id,
            func.count(distinct(c.c.member_id)),
            func.count(),
            func.sum(c.c.points),
            func.sum(c.c.value_fen),
        )
        .where(c.c.captured_at >= start, c.c.captured_at < now, c.c.issuer_id != c.c.acquirer_id)
        .group_by(c.c.issuer_id, c.c.acquirer_id)
    ).all()
    counted = [Flow(i, a, int(m), int(n), int(p), int(v)) for i, a, m, n, p, v in rows]
    shown = [f for f in counted if f.members >= k]
    flows = sorted(_with_lifts(shown), key=lambda f: (f.issuer_id, f.acquirer_id))
    shared = _shared(flows)
    return Affinity(
        window_start=start,
        window_end=now,
        min_members=k,
        flows=flows,
        shared=shared,
        suggestions=_suggestions(flows, shared),
        suppressed_flows=len(counted) - len(shown),
    )


def _with_lifts(flows: list[Flow]) -> list[Flow]:
    out: dict[str, int] = defaultdict(int)
    into: dict[str, int] = defaultdict(int)
    for f in flows:
        out[f.issuer_id] += f.members
        into[f.acquirer_id] += f.members
    total = sum(f.members for f in flows)
    # m > 0 for a shown flow, so out(I), in(A) and T − in(I) ≥ in(A) are all positive.
    return [
        Flow(
            f.issuer_id,
            f.acquirer_id,
            f.members,
            f.redemptions,
            f.points,
            f.value_fen,
            lift_bp=f.members
            * (total - into[f.issuer_id])
            * INDEPENDENT_BP
            // (out[f.issuer_id] * into[f.acquirer_id]),
        )
        for f in flows
    ]


def _shared(flows: list[Flow]) -> list[Shared]:
    pairs: dict[tuple[str, str], int] = defaultdict(int)
    for f in flows:
        first, second = sorted((f.issuer_id, f.acquirer_id))
        pairs[first, second] += f.members
    shared = [Shared(a, b, n) for (a, b), n in pairs.items()]
    return sorted(shared, key=lambda s: (-s.members, s.first_id, s.second_id))


def _suggestions(flows: list[Flow], shared: list[Shared]) -> list[Suggestion]:
    strong = {(f.issuer_id, f.acquirer_id): f for f in flows if f.lift_bp >= INDEPENDENT_BP}
    out: list[Suggestion] = []
    for pair in shared:
        a, b = pair.first_id, pair.second_id
        ab, ba = strong.get((a, b)), strong.get((b, a))
        if ab and ba:
            out.append(Suggestion(JOINT_OFFER, a, b, min(ab.lift_bp, ba.lift_bp), pair.members))
        elif ab or ba:
            f = ab or ba
            assert f is not None
            out.append(
                Suggestion(RELATED_PRODUCT_OFFER, f.acquirer_id, f.issuer_id, f.lift_bp, f.members)
            )
    return sorted(out, key=lambda s: (-s.score_bp, -s.members, s.offering_id, s.audience_id))
