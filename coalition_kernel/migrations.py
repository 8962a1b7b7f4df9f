"""Running a package's Alembic migrations programmatically (the node's and the exchange's)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine


def alembic_config(script_location: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", script_location)
    return cfg


def upgrade(engine: Engine, script_location: str) -> None:
    """Migrates the database to the newest schema, in the engine's own connection."""
    cfg = alembic_config(script_location)
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        conn.commit()
