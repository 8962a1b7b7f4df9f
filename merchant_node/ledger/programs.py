"""The node's points program as data: applied versions (an append-only audit trail), the version
in force at a time, and the budget pools the program names."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, insert, select, text, update

from coalition_kernel.errors import InvalidArgument, NotFound
from merchant_node.ledger.schema import budget_pools, rule_programs
from merchant_node.rules.engine import PoolDraw
from merchant_node.rules.program import Program, load_program, parse_program


@dataclass(frozen=True)
class ProgramVersion:
    version: int
    document: str
    digest: str
    effective_from: datetime
    applied_at: datetime
    applied_by: str


def _row(row) -> ProgramVersion:  # type: ignore[no-untyped-def]
    return ProgramVersion(
        row.version, row.document, row.digest, row.effective_from, row.applied_at, row.applied_by
    )


def apply(
    conn: Connection, text: str, effective_from: datetime, applied_by: str, now: datetime
) -> ProgramVersion:
    """Validates the whole document (ProgramInvalid lists every error) and records it as the
    next version; its budget pools are created, or their budgets changed."""
    if not 1 <= len(applied_by) <= 100:
        raise InvalidArgument("MISSING_FIELD", "applied_by (who applies the program) is required")
    program = load_program(text)
    latest = conn.execute(
        select(rule_programs.c.version).order_by(rule_programs.c.version.desc()).limit(1)
    ).scalar()
    version = (latest or 0) + 1
    document = json.dumps(program.to_document(), sort_keys=True, separators=(",", ":"))
    conn.execute(
        insert(rule_programs).values(
            version=version,
            document=document,
            digest=program.digest(),
            effective_from=max(effective_from, now),
            applied_at=now,
            applied_by=applied_by,
        )
    )
    for pool in program.budget_pools:
        known = conn.execute(
            select(budget_pools.c.pool_id).where(budget_pools.c.pool_id == pool.id)
        ).first()
        if known:
            conn.execute(
                update(budget_pools)
                .where(budget_pools.c.pool_id == pool.id)
                .values(budget=pool.points)
            )
        else:
            conn.execute(
                insert(budget_pools).values(pool_id=pool.id, budget=pool.points, granted=0)
            )
    return get(conn, version)


def get(conn: Connection, version: int) -> ProgramVersion:
    row = conn.execute(select(rule_programs).where(rule_programs.c.version == version)).first()
    if row is None:
        raise NotFound("PROGRAM_NOT_FOUND", f"no program version {version}")
    return _row(row)


def history(conn: Connection) -> list[ProgramVersion]:
    return [
        _row(r)
        for r in conn.execute(select(rule_programs).order_by(rule_programs.c.version.desc()))
    ]


def in_force_version(conn: Connection, at: datetime) -> int | None:
    return conn.execute(
        select(rule_programs.c.version)
        .where(rule_programs.c.effective_from <= at)
        .order_by(rule_programs.c.version.desc())
        .limit(1)
    ).scalar()


def schedule(conn: Connection) -> list[tuple[int, datetime]]:
    """Every version and its effective time, newest version first."""
    rows = conn.execute(
        select(rule_programs.c.version, rule_programs.c.effective_from).order_by(
            rule_programs.c.version.desc()
        )
    )
    return [(r.version, r.effective_from) for r in rows]


def parse_stored(document: str) -> Program:
    return parse_program(json.loads(document))


def asks(draws: list[PoolDraw]) -> dict[str, int]:
    """What each pool is asked for in all (pools asked for nothing left out), by pool id."""
    asked: dict[str, int] = {}
    for draw in draws:
        asked[draw.pool_id] = asked.get(draw.pool_id, 0) + draw.points
    return {pool: asked[pool] for pool in sorted(asked) if asked[pool] > 0}


# PostgreSQL: the pools' rows locked in id order (no deadlock between two earnings asking for
# the same pools), each grants what it still has room for, all in one round trip. `locked`
# re-reads a row a concurrent transaction changed once it holds its lock, so `room` is the
# latest; the UPDATE touches only rows `locked` already holds.
POOLS_LOCKED = """ask AS (
  SELECT * FROM unnest(CAST(:pools AS TEXT[]), CAST(:asks AS BIGINT[])) AS a(pool_id, points)
), locked AS MATERIALIZED (
  SELECT pool_id, budget - granted AS room FROM budget_pools
   WHERE pool_id = ANY(CAST(:pools AS TEXT[])) ORDER BY pool_id FOR UPDATE
)"""
_GRANT_PG = text(
    f"""WITH {POOLS_LOCKED}, gives AS MATERIALIZED (
  SELECT a.pool_id, GREATEST(0, LEAST(a.points, l.room)) AS give
    FROM ask a JOIN locked l ON l.pool_id = a.pool_id
), drawn AS (
  UPDATE budget_pools b SET granted = b.granted + g.give FROM gives g
   WHERE b.pool_id = g.pool_id AND g.give > 0
)
SELECT pool_id, give FROM gives"""
)
# SQLite: the writer holds the whole file (BEGIN IMMEDIATE): read, then one executemany.
_ROOM = select(budget_pools.c.pool_id, budget_pools.c.budget - budget_pools.c.granted).where(
    budget_pools.c.pool_id.in_(bindparam("pools", expanding=True))
)
_DRAW = (
    update(budget_pools)
    .where(budget_pools.c.pool_id == bindparam("pool"))
    .values(granted=budget_pools.c.granted + bindparam("give"))
)


def grant(conn: Connection, draws: list[PoolDraw]) -> dict[str, int]:
    """Reserves what each pool can still give (never more than its budget), atomically and in
    one statement on PostgreSQL; concurrent earnings never overspend a pool nor deadlock on it.
    A pool that does not exist gives nothing."""
    asked = asks(draws)
    if not asked:
        return {}
    if conn.dialect.name == "postgresql":
        rows = conn.execute(_GRANT_PG, pool_params(asked))
        return {pool: int(give) for pool, give in rows}
    room = {pool: int(n) for pool, n in conn.execute(_ROOM, {"pools": list(asked)})}
    gives = {pool: max(0, min(ask, room[pool])) for pool, ask in asked.items() if pool in room}
    drawn = [{"pool": pool, "give": give} for pool, give in gives.items() if give]
    if drawn:
        conn.execute(_DRAW, drawn)
    return gives


def pool_params(asked: dict[str, int]) -> dict[str, object]:
    """POOLS_LOCKED's parameters (psycopg2 sends lists as arrays)."""
    return {"pools": list(asked), "asks": list(asked.values()), "pool_count": len(asked)}
