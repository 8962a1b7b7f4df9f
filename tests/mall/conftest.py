from __future__ import annotations

import pytest
import pytest_asyncio

from merchant_node.ledger.service import NodeLedger
from merchant_node.mall.service import Mall
from tests.mall.support import open_mall


@pytest.fixture
def mall(ledger: NodeLedger) -> Mall:
    return open_mall(ledger)


@pytest_asyncio.fixture
async def coalition(new_database, clock):  # type: ignore[no-untyped-def]
    """A real exchange and real nodes on loopback (tests/exchange/conftest.py's)."""
    from tests.exchange.conftest import start_coalition

    async for running in start_coalition(new_database, clock):
        yield running
