"""Keeping the rollups small: minute rows (64 shards each, so concurrent earns don't queue on one
row) of hours that are over are folded into one row per hour (shard 0). Every figure the pages
and alert rules read is by the hour at most (today starts on the hour in Asia/Shanghai), so a
year of a busy shop is ~24 × 365 rows per kind and account, whatever its order count, plus the
current hour's minutes.

Safe beside the triggers: they write the current minute; a row arriving late for a folded hour
(a transaction open across the hour) is a new minute row, folded the next time, so nothing is
lost or counted twice. Idempotent: a folded hour is (hour, kind, account, shard 0)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, delete, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from merchant_node.figures.queries import minute_of
from merchant_node.figures.schema import ledger_minutes as m

KEEP_MINUTES = timedelta(hours=1)
DAY = 24 * 60


def compact(engine: Engine, now: datetime, keep: timedelta = KEEP_MINUTES) -> int:
    """Folds old minute rows into hours, a day per transaction; returns the rows removed."""
    before = minute_of(now - keep)
    before -= before % 60
    with engine.connect() as conn:
        oldest = conn.execute(select(func.min(m.c.minute)).where(_movable(0, before))).scalar()
    if oldest is None:
        return 0
    removed = 0
    for lo in range(oldest - oldest % DAY, before, DAY):
        removed += _fold(engine, lo, min(lo + DAY, before))
    return removed


def _movable(lo: int, hi: int):  # type: ignore[no-untyped-def]
    return and_(m.c.minute >= lo, m.c.minute < hi, or_(m.c.minute % 60 != 0, m.c.shard != 0))


def _fold(engine: Engine, lo: int, hi: int) -> int:
    hour = (m.c.minute - m.c.minute % 60).label("hour")
    folded = (
        select(hour, m.c.kind, m.c.account, func.sum(m.c.lines), func.sum(m.c.points))
        .where(_movable(lo, hi))
        .group_by(hour, m.c.kind, m.c.account)
    )
    with engine.begin() as conn:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        rows = conn.execute(folded).all()
        if not rows:
            return 0
        stmt = dialect.insert(m).values(
            [
                dict(minute=h, kind=k, account=a, shard=0, lines=int(n), points=int(p))
                for h, k, a, n, p in rows
            ]
        )
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[m.c.minute, m.c.kind, m.c.account, m.c.shard],
                set_={
                    "lines": m.c.lines + stmt.excluded.lines,
                    "points": m.c.points + stmt.excluded.points,
                },
            )
        )
        return conn.execute(delete(m).where(_movable(lo, hi))).rowcount
