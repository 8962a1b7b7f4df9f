"""The exchange's migrations build exactly the schema its code declares."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from coalition_kernel.db import make_engine
from exchange.migrate import upgrade
from exchange.schema import metadata

# Expression indexes the metadata cannot declare portably, created by the migrations by hand.
_HAND_MADE = {"ix_clearing_records_commitment_order"}


def _declared(obj, name, type_, reflected, compare_to) -> bool:  # type: ignore[no-untyped-def]
    return not (type_ == "index" and name in _HAND_MADE)


def test_migrations_create_exactly_the_schema_the_code_declares(new_database):
    engine = make_engine(new_database("exchange"))
    try:
        upgrade(engine)
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"include_object": _declared})
            diff = compare_metadata(context, metadata)
        assert diff == []
    finally:
        engine.dispose()
