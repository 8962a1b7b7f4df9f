from __future__ import annotations

import pytest

from merchant_node.ledger.service import NodeLedger
from merchant_node.mall.service import Mall
from tests.mall.support import open_mall


@pytest.fixture
def mall(ledger: NodeLedger) -> Mall:
    return open_mall(ledger)
