"""Creates or upgrades a node's database to the newest schema."""

from __future__ import annotations

from alembic.config import Config
from sqlalchemy import Engine

from coalition_kernel import migrations

SCRIPTS = "merchant_node:migrations"


def alembic_config() -> Config:
    return migrations.alembic_config(SCRIPTS)


def upgrade(engine: Engine) -> None:
    migrations.upgrade(engine, SCRIPTS)
