"""Migrations when several processes start on one new database at once (exchange replicas and
workers, a node and its worker): one migrates, the others wait and find the schema current."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from coalition_kernel.db import make_engine
from exchange.migrate import upgrade as upgrade_exchange
from merchant_node.ledger.migrate import upgrade as upgrade_node


@pytest.mark.parametrize("upgrade", [upgrade_exchange, upgrade_node], ids=["exchange", "node"])
def test_six_processes_migrating_one_new_postgresql_database_at_once_all_succeed(pg_url, upgrade):
    engines = [make_engine(pg_url, pool_size=1) for _ in range(6)]
    start = threading.Barrier(len(engines))
    failures: list[BaseException] = []

    def migrate(engine: sa.Engine) -> None:
        start.wait()
        try:
            upgrade(engine)
        except BaseException as exc:  # noqa: BLE001 - every failure is the test's finding
            failures.append(exc)

    threads = [threading.Thread(target=migrate, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        # Without the lock, concurrent CREATE TABLEs deadlock or collide.
        assert not any(t.is_alive() for t in threads), "migrations never finished"
        assert failures == []
        with engines[0].connect() as conn:
            versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
        assert len(versions) == 1
    finally:
        for engine in engines:
            engine.dispose()
