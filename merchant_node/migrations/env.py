"""Alembic environment of a merchant node's database (run through merchant_node.ledger.migrate)."""

from coalition_kernel.migrations import run_env
from merchant_node.ledger.schema import metadata

run_env(metadata)
