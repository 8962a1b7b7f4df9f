"""Alembic environment of the exchange database (run through exchange.migrate)."""

from coalition_kernel.migrations import run_env
from exchange.schema import metadata

run_env(metadata)
