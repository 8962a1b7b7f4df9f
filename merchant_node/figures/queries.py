"""Reading a node's live figures from its per-minute rollups (and two small indexed counts).

Signs follow the journal: ISSUANCE goes negative by every point issued; REDEMPTION,
CROSS_REDEMPTION, BREAKAGE and CLAWBACK go positive by every point spent, expired or taken back.
The journal balances, so what members hold (the merchant's outstanding liability) is minus the
sum of those outside accounts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select

from merchant_node.figures.schema import ENROLL, ledger_minutes
from merchant_node.ledger.schema import earnings, holds, notifications

_m = ledger_minutes


def minute_of(at: datetime) -> int:
    return int(at.timestamp()) // 60


@dataclass(frozen=True)
class Flows:
    """Points and counts over a window of minutes."""

    issued: int = 0  # earned and rewarded
    earned: int = 0  # by purchases only (EARN)
    redeemed: int = 0  # spent here, and at other shops through posted holds
    redeemed_here: int = 0
    redeemed_elsewhere: int = 0
    expired: int = 0
    clawed_back: int = 0
    earns: int = 0  # purchases that earned points
    redemptions: int = 0  # redemptions at this shop
    enrolled: int = 0

    @property
    def outstanding(self) -> int:
        """Points members hold from these flows (over all time: the liability)."""
        return self.issued - self.redeemed - self.expired - self.clawed_back

    @property
    def redemption_rate_bps(self) -> int:
        """Points redeemed per 10,000 issued in the window (0 when nothing was issued)."""
        return self.redeemed * 10_000 // self.issued if self.issued else 0


def flows(conn: Connection, start: int | None = None, end: int | None = None) -> Flows:
    """Flows between minutes [start, end): None is open-ended."""
    query = select(_m.c.kind, _m.c.account, func.sum(_m.c.lines), func.sum(_m.c.points))
    if start is not None:
        query = query.where(_m.c.minute >= start)
    if end is not None:
        query = query.where(_m.c.minute < end)
    return _fold(conn.execute(query.group_by(_m.c.kind, _m.c.account)).all())


def series(conn: Connection, start: int, end: int, bucket: int) -> list[tuple[int, Flows]]:
    """Flows per bucket of `bucket` minutes from `start` to `end` (every bucket, empty ones too)."""
    slot = (_m.c.minute - start) / bucket if bucket > 1 else _m.c.minute - start
    rows = conn.execute(
        select(
            func.floor(slot).label("slot"),
            _m.c.kind,
            _m.c.account,
            func.sum(_m.c.lines),
            func.sum(_m.c.points),
        )
        .where(_m.c.minute >= start, _m.c.minute < end)
        .group_by("slot", _m.c.kind, _m.c.account)
    ).all()
    by_slot: dict[int, list] = {}  # type: ignore[type-arg]
    for slot_, kind, account, lines, points in rows:
        by_slot.setdefault(int(slot_), []).append((kind, account, lines, points))
    count = max(0, -(-(end - start) // bucket))
    return [(start + i * bucket, _fold(by_slot.get(i, []))) for i in range(count)]


def _fold(rows) -> Flows:  # type: ignore[no-untyped-def]
    f: dict[str, int] = {}

    def add(key: str, value: int) -> None:
        f[key] = f.get(key, 0) + int(value or 0)

    for kind, account, lines, points in rows:
        if kind == ENROLL:
            add("enrolled", lines)
        elif account == "ISSUANCE":
            add("issued", -points)
            if kind == "EARN":
                add("earned", -points)
                add("earns", lines)
        elif account == "REDEMPTION":
            add("redeemed", points)
            add("redeemed_here", points)
            if kind == "REDEEM":
                add("redemptions", lines)
        elif account == "CROSS_REDEMPTION":
            add("redeemed", points)
            add("redeemed_elsewhere", points)
        elif account == "BREAKAGE":
            add("expired", points)
        elif account == "CLAWBACK":
            add("clawed_back", points)
    return Flows(**f)


def active_members(conn: Connection, since: datetime, until: datetime) -> int:
    """Members who earned in [since, until): an index range of that window's earnings only."""
    return int(
        conn.execute(
            select(func.count(func.distinct(earnings.c.member_pk))).where(
                earnings.c.occurred_at >= since, earnings.c.occurred_at < until
            )
        ).scalar_one()
    )


def member_count(conn: Connection) -> int:
    """Members ever enrolled, from the rollup (no count over the members table)."""
    return flows(conn).enrolled


def open_holds(conn: Connection) -> tuple[int, int]:
    """Pending holds and their points (other shops' redemptions not yet posted or voided)."""
    row = conn.execute(
        select(func.count(), func.coalesce(func.sum(holds.c.points), 0)).where(
            holds.c.status == "pending"
        )
    ).one()
    return int(row[0]), int(row[1])


def outbox_backlog(conn: Connection) -> int:
    """Notifications waiting to be delivered (pending or failed and due again)."""
    return int(
        conn.execute(
            select(func.count()).where(notifications.c.status.in_(("pending", "failed")))
        ).scalar_one()
    )


def outbox_backlog_before(conn: Connection, before: datetime) -> int:
    """Of the backlog, the notifications created before `before` (still waiting since)."""
    return int(
        conn.execute(
            select(func.count()).where(
                notifications.c.status.in_(("pending", "failed")),
                notifications.c.created_at < before,
            )
        ).scalar_one()
    )
