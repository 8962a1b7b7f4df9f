"""Running a package's Alembic migrations programmatically (the node's and the exchange's)."""

from __future__ import annotations

from alembic import command, context
from alembic.config import Config
from sqlalchemy import Engine, MetaData, create_engine, text


def alembic_config(script_location: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", script_location)
    return cfg


def upgrade(engine: Engine, script_location: str) -> None:
    """Migrates the database to the newest schema, in the engine's own connection.

    Several processes may start on one database at once (exchange replicas, workers): on
    PostgreSQL they take turns on a session advisory lock named after the migrations, so one
    migrates and the others find the schema current; SQLite's BEGIN IMMEDIATE serializes them.
    """
    cfg = alembic_config(script_location)
    with engine.connect() as conn:
        locked = conn.dialect.name == "postgresql"
        if locked:
            conn.execute(
                text("SELECT pg_advisory_lock(hashtext(:name))"), {"name": script_location}
            )
            conn.commit()
        try:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            conn.commit()
        finally:
            if locked:
                conn.rollback()
                conn.execute(
                    text("SELECT pg_advisory_unlock(hashtext(:name))"), {"name": script_location}
                )
                conn.commit()


def run_env(metadata: MetaData) -> None:
    """The body of a package's Alembic env.py: migrate the connection `upgrade` passes in, or
    the database at sqlalchemy.url (for `alembic revision --autogenerate`)."""
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        _migrate(connection, metadata)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        _migrate(conn, metadata)
        conn.commit()


def _migrate(connection, metadata: MetaData) -> None:  # type: ignore[no-untyped-def]
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
