"""Fixtures shared by every test: databases (SQLite and PostgreSQL, one parametrized suite),
a controllable clock, a migrated ledger and a real node server on a loopback port."""

from __future__ import annotations

import atexit
import os
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa

from coalition_kernel.db import make_engine
from merchant_node.auth.service import add_client
from merchant_node.auth.vault import WalletKeys
from merchant_node.client import MerchantNodeClient
from merchant_node.ledger.earning import EarnPolicy
from merchant_node.ledger.migrate import upgrade
from merchant_node.ledger.service import NodeLedger

PG_ADMIN_DEFAULT = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--postgres-url",
        default=os.environ.get("COALITION_TEST_PG", PG_ADMIN_DEFAULT),
        help="admin URL of a PostgreSQL server; tests create and drop their own databases",
    )


def _pg_admin(config: pytest.Config) -> sa.Engine | None:
    """An AUTOCOMMIT engine on the server, or None (tests skip) unless CI demands PostgreSQL."""
    url = config.getoption("--postgres-url")
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    try:
        with engine.connect():
            return engine
    except sa.exc.OperationalError as exc:
        if os.environ.get("COALITION_REQUIRE_POSTGRES") == "1":
            pytest.fail(
                f"PostgreSQL is required (COALITION_REQUIRE_POSTGRES=1) but unreachable: {exc}"
            )
        return None


@pytest.fixture(scope="session")
def pg_admin(pytestconfig: pytest.Config) -> Iterator[sa.Engine | None]:
    engine = _pg_admin(pytestconfig)
    yield engine
    if engine is not None:
        engine.dispose()


def _fresh_pg_database(admin: sa.Engine) -> Iterator[str]:
    name = f"cpx_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def db_url(request: pytest.FixtureRequest, tmp_path, pg_admin) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A fresh, empty database: a SQLite file, then a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'node.db'}"
        return
    if pg_admin is None:
        pytest.skip("PostgreSQL unreachable (set --postgres-url or COALITION_TEST_PG)")
    yield from _fresh_pg_database(pg_admin)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def new_database(request: pytest.FixtureRequest, tmp_path, pg_admin):  # type: ignore[no-untyped-def]
    """Makes fresh databases of one kind (SQLite files, then PostgreSQL databases) on demand."""
    if request.param == "postgresql" and pg_admin is None:
        pytest.skip("PostgreSQL unreachable (set --postgres-url or COALITION_TEST_PG)")
    made: list[Iterator[str]] = []

    def make(name: str) -> str:
        if request.param == "sqlite":
            return f"sqlite:///{tmp_path / f'{name}.db'}"
        database = _fresh_pg_database(pg_admin)
        made.append(database)
        return next(database)

    yield make
    for database in made:
        next(database, None)


@pytest.fixture
def pg_url(pg_admin) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A fresh PostgreSQL database, for what SQLite cannot show (row locks, real concurrency)."""
    if pg_admin is None:
        pytest.skip("PostgreSQL unreachable (set --postgres-url or COALITION_TEST_PG)")
    yield from _fresh_pg_database(pg_admin)


@dataclass
class FakeClock:
    """A clock the test moves by hand; the ledger reads it at every decision."""

    now: datetime = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# One wallet key for the session's nodes (a node's is in its key file; tests need none on disk).
TEST_WALLET_KEYS = WalletKeys.generate()
# What a test's own client may do: everything (tests of refusals issue narrower keys).
ALL_SCOPES = "pos,read,admin"


def issue_key(ledger: NodeLedger, scopes: str = ALL_SCOPES, name: str = "test-client") -> str:
    """A new API key of the node over `ledger` (as `coalition node client add` issues one)."""
    return add_client(ledger.engine, name, scopes).key


def node_key(config_path: object, scopes: str = ALL_SCOPES, name: str = "test-client") -> str:
    """A new API key of the node initialised at `config_path` (its node.toml), as
    `coalition node client add` issues one: for tests that serve a node as a process."""
    from merchant_node.config import NodeConfig

    engine = make_engine(NodeConfig.load(config_path).database_url, pool_size=1)  # type: ignore[arg-type]
    try:
        return add_client(engine, name, scopes).key
    finally:
        engine.dispose()


# -- the node's SQLite schema from a migrated template --------------------------------------
# Migrating a node's database from nothing takes about a second, and most tests open one or
# more. Each pytest process runs the real migrations ONCE into a template SQLite file, and
# open_test_ledger copies it (SQLite's backup API) into each new SQLite file, then still runs
# upgrade(), which finds the schema at head. The migrations themselves are tested from empty
# (tests/test_migrations.py, the migration tests), and on PostgreSQL every ledger is migrated
# from empty (a copy there, CREATE DATABASE ... TEMPLATE after dropping the empty database, was
# measured slower: DROP DATABASE costs more than the migrations).
# COALITION_TEST_MIGRATE_EACH=1 migrates every SQLite file from empty too.
_TEMPLATES: dict[str, str] = {}  # backend -> the template's path


def _migrated_sqlite_template() -> str:
    if "sqlite" not in _TEMPLATES:
        folder = tempfile.mkdtemp(prefix="cpx-node-template-")
        atexit.register(shutil.rmtree, folder, True)
        path = os.path.join(folder, "node.db")
        engine = make_engine(f"sqlite:///{path}", pool_size=1)
        try:
            upgrade(engine)
        finally:
            engine.dispose()
        _TEMPLATES["sqlite"] = path
    return _TEMPLATES["sqlite"]


def _clone_sqlite(path: str) -> None:
    if os.path.exists(path) and os.path.getsize(path) > 0:
        return  # not new: migrated as it is
    source = sqlite3.connect(_migrated_sqlite_template())
    target = sqlite3.connect(path)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()


def _from_template(url: str) -> None:
    if os.environ.get("COALITION_TEST_MIGRATE_EACH") == "1":
        return
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        _clone_sqlite(parsed.database)


def open_test_ledger(
    url: str, clock=None, *, ttl_days: int | None = 365, pool_size: int = 8
) -> NodeLedger:  # type: ignore[no-untyped-def]
    _from_template(url)
    engine = make_engine(url, pool_size=pool_size)
    upgrade(engine)
    kwargs = {"clock": clock} if clock is not None else {}
    ledger = NodeLedger(
        engine,
        policy=EarnPolicy(points_ttl_days=ttl_days),
        wallet_keys=TEST_WALLET_KEYS,
        **kwargs,
    )
    ledger.configure_rate("1", "1")
    return ledger


@pytest.fixture
def ledger(db_url: str, clock: FakeClock) -> Iterator[NodeLedger]:
    """A migrated ledger at 1 point per yuan and 1 fen per point, on the fake clock."""
    ledger = open_test_ledger(db_url, clock)
    yield ledger
    ledger.engine.dispose()


@dataclass
class RunningNode:
    target: str
    ledger: NodeLedger
    # An API key with every scope, for the test's own calls.
    api_key: str = ""

    def client(self, **kwargs: Any) -> MerchantNodeClient:
        """A MerchantNodeClient of this node presenting the test's key."""
        return MerchantNodeClient(self.target, api_key=self.api_key, **kwargs)


async def start_node(
    ledger: NodeLedger, workers: int = 16, **server_options: Any
) -> AsyncIterator[RunningNode]:
    """A real node server on a loopback port, requiring API keys like production; the node's
    test key (every scope) is `api_key`. `server_options` go to build_server."""
    from merchant_node.server import build_server

    server, offload = build_server(ledger, "127.0.0.1:0", workers=workers, **server_options)
    key = issue_key(ledger)
    port = await server.start()
    try:
        yield RunningNode(f"127.0.0.1:{port}", ledger, key)
    finally:
        await server.stop(1)
        offload.shutdown()


@pytest_asyncio.fixture
async def node(ledger: NodeLedger) -> AsyncIterator[RunningNode]:
    """A real node server on a loopback port, over `ledger` (the fake clock)."""
    async for running in start_node(ledger):
        yield running
