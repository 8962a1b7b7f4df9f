"""The node's points program as data: applied versions (an append-only audit trail), the version
in force at a time, and the budget pools the program names."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, insert, select, update

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


# One statement while a pool has room for the whole ask: the row's lock is taken by the UPDATE
# itself (PostgreSQL re-checks the condition on the row's latest version once it holds it).
_GRANT_IN_FULL = (
    update(budget_pools)
    .where(
        budget_pools.c.pool_id == bindparam("pool"),
        budget_pools.c.budget - budget_pools.c.granted >= bindparam("ask"),
    )
    .values(granted=budget_pools.c.granted + bindparam("ask"))
)


def grant_in_full(conn: Connection, draws: list[PoolDraw]) -> bool:
    """Reserves every draw in full, one UPDATE a pool (in id order), if every pool has room;
    False as soon as one has not (the caller rolls back what was reserved)."""
    asked: dict[str, int] = {}
    for draw in draws:
        asked[draw.pool_id] = asked.get(draw.pool_id, 0) + draw.points
    return all(
        conn.execute(_GRANT_IN_FULL, {"pool": pool_id, "ask": asked[pool_id]}).rowcount
        for pool_id in sorted(asked)
        if asked[pool_id] > 0
    )


def grant(conn: Connection, draws: list[PoolDraw]) -> dict[str, int]:
    """Reserves what each pool can still give, atomically: pools are locked in id order, so
    concurrent earnings never overspend a pool nor deadlock on it. A pool with room for the
    whole ask costs one UPDATE; only one running dry is read and cut."""
    asked: dict[str, int] = {}
    for draw in draws:
        asked[draw.pool_id] = asked.get(draw.pool_id, 0) + draw.points
    granted: dict[str, int] = {}
    for pool_id in sorted(asked):
        if (
            asked[pool_id] > 0
            and conn.execute(_GRANT_IN_FULL, {"pool": pool_id, "ask": asked[pool_id]}).rowcount
        ):
            granted[pool_id] = asked[pool_id]
            continue
        row = conn.execute(
            select(budget_pools).where(budget_pools.c.pool_id == pool_id).with_for_update()
        ).first()
        give = 0 if row is None else max(0, min(asked[pool_id], row.budget - row.granted))
        if give:
            conn.execute(
                update(budget_pools)
                .where(budget_pools.c.pool_id == pool_id)
                .values(granted=budget_pools.c.granted + give)
            )
        granted[pool_id] = give
    return granted
