"""Tier levels: which level a member qualifies for, and how they move between levels. Pure.

Upgrades are immediate (on any activity) because a member who just crossed a threshold expects
the better rate on the next purchase. Downgrades are slow on purpose: they are decided only on
the program's yearly evaluation day, and then only after a grace period in which the member can
requalify, so a single quiet month never costs anyone their level. The ledger keeps each
member's level and `grace_until`; the functions here only decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from coalition_kernel.errors import FailedPrecondition, InvalidArgument
from merchant_node.rules.program import Level, Tiers


@dataclass(frozen=True)
class Progress:
    """How far a member is from the next level, and from keeping the current one."""

    next_level: str | None  # None: already at the top
    missing_to_next: int  # fen of spend or points, per the program's measure
    missing_to_keep: int  # 0 when the member already requalifies for the current level


def rank(tiers: Tiers, level_id: str) -> int:
    """The level's position, 0 for the entry level; an unknown id is the caller's mistake."""
    for position, level in enumerate(tiers.levels):
        if level.id == level_id:
            return position
    known = ", ".join(level.id for level in tiers.levels)
    raise InvalidArgument("UNKNOWN_TIER", f"no tier level {level_id!r}; levels: {known}")


def level(tiers: Tiers, level_id: str) -> Level:
    return tiers.levels[rank(tiers, level_id)]


def qualifying_level(tiers: Tiers, measure_value: int) -> str:
    """The highest level whose threshold the member's 12-month spend (fen) or points reach."""
    return [lv.id for lv in tiers.levels if lv.threshold <= max(0, measure_value)][-1]


def on_activity(tiers: Tiers, current: str, qualifying: str) -> str:
    """After a purchase or award: the member moves up at once, never down."""
    return qualifying if rank(tiers, qualifying) > rank(tiers, current) else current


def on_evaluation(
    tiers: Tiers, current: str, qualifying: str, grace_until: datetime | None, now: datetime
) -> tuple[str, datetime | None]:
    """On the evaluation day, and again when a grace period ends: (level, grace_until).

    A member who still qualifies (or qualifies higher) keeps or gains the level and any grace is
    lifted. One who falls short keeps the level until `grace_until` and is then moved down to the
    level they qualify for; `grace_days: 0` moves them at once.
    """
    if rank(tiers, qualifying) >= rank(tiers, current):
        return qualifying, None
    if grace_until is None:
        grace_until = now + timedelta(days=tiers.grace_days)
    if now >= grace_until:
        return qualifying, None
    return current, grace_until


def next_evaluation(tiers: Tiers, today: date) -> date:
    """The next evaluation day on or after `today` (a local date in the program's zone)."""
    month, day = (int(part) for part in tiers.evaluation_day.split("-"))
    this_year = date(today.year, month, day)
    return this_year if this_year >= today else date(today.year + 1, month, day)


def upgrade_by_points(tiers: Tiers, current: str, target: str) -> int:
    """The points a member pays to buy `target` (its price, from any lower level).

    Seed: silver -> gold costs 1000 points. A bought level is kept like an earned one until an
    evaluation day finds the member short of it (then the usual grace applies).
    """
    if rank(tiers, target) <= rank(tiers, current):
        raise FailedPrecondition(
            "NOT_AN_UPGRADE", f"{target} is not above the member's level {current}"
        )
    cost = level(tiers, target).upgrade_cost_points
    if cost is None:
        raise FailedPrecondition("UPGRADE_NOT_FOR_SALE", f"level {target} cannot be bought")
    return cost


def progress(tiers: Tiers, current: str, measure_value: int) -> Progress:
    """What a member still needs: for the level above `current`, and to requalify for it."""
    position = rank(tiers, current)
    keep = max(0, tiers.levels[position].threshold - measure_value)
    if position + 1 == len(tiers.levels):
        return Progress(None, 0, keep)
    above = tiers.levels[position + 1]
    return Progress(above.id, max(0, above.threshold - measure_value), keep)
