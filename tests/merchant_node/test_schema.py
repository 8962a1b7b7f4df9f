"""The migrations and the database-level invariants."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from merchant_node.ledger.schema import journal_lines, journal_transactions, metadata


def test_migrations_create_exactly_the_schema_the_code_declares(ledger):
    with ledger.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_postgresql_refuses_to_commit_an_unbalanced_journal_transaction(ledger):
    with (
        pytest.raises(sa.exc.IntegrityError, match="does not balance"),
        ledger.engine.begin() as conn,
    ):
        txn = conn.execute(
            sa.insert(journal_transactions)
            .values(kind="EARN", created_at=ledger.clock(), rate_version=1, rule_version="x")
            .returning(journal_transactions.c.id)
        ).scalar_one()
        conn.execute(
            sa.insert(journal_lines).values(
                txn_id=txn, account="ISSUANCE", points=-5, rate_version=1, rule_version="x"
            )
        )
    with ledger.engine.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(journal_transactions)).scalar() == 0
        )
