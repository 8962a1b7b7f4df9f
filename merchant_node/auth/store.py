"""API clients in the node's database (SQLAlchemy Core)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, Row, insert, select, update

from merchant_node.auth.domain import ApiClient, Limits
from merchant_node.auth.schema import api_clients

_LIMITS = ("max_points_per_earn", "max_points_per_redeem", "max_order_fen", "calls_per_minute")


def _client(row: Row) -> ApiClient:
    return ApiClient(
        key_id=row.key_id,
        name=row.name,
        secret_digest=row.secret_digest,
        scopes=frozenset(row.scopes.split(",")),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        limits=Limits(**{name: getattr(row, name) for name in _LIMITS}),
    )


def find(conn: Connection, key_id: str) -> ApiClient | None:
    row = conn.execute(select(api_clients).where(api_clients.c.key_id == key_id)).first()
    return None if row is None else _client(row)


def add(conn: Connection, client: ApiClient) -> None:
    conn.execute(
        insert(api_clients).values(
            key_id=client.key_id,
            name=client.name,
            secret_digest=client.secret_digest,
            scopes=",".join(sorted(client.scopes)),
            created_at=client.created_at,
            revoked_at=client.revoked_at,
            **{name: getattr(client.limits, name) for name in _LIMITS},
        )
    )


def all_clients(conn: Connection) -> list[ApiClient]:
    rows = conn.execute(select(api_clients).order_by(api_clients.c.created_at, api_clients.c.name))
    return [_client(r) for r in rows]


def by_name_or_id(conn: Connection, name_or_id: str) -> list[ApiClient]:
    rows = conn.execute(
        select(api_clients).where(
            (api_clients.c.key_id == name_or_id) | (api_clients.c.name == name_or_id)
        )
    )
    return [_client(r) for r in rows]


def revoke(conn: Connection, key_id: str, at: datetime) -> None:
    conn.execute(
        update(api_clients)
        .where(api_clients.c.key_id == key_id, api_clients.c.revoked_at.is_(None))
        .values(revoked_at=at)
    )
