"""The mall from a node's configuration ([mall] in node.toml)."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from coalition_kernel.errors import CoalitionError
from coalition_kernel.rpc import Offload, Server
from merchant_node.config import MallConfig
from merchant_node.mall.api import TokenStaffAuth
from merchant_node.mall.node import mount_mall
from tests.mall.support import member_with_points, open_mall
from tests.mall.test_http_api import post


def test_the_member_api_needs_a_token_key_and_never_signs_with_an_empty_one(ledger):
    with pytest.raises(ValidationError, match="http_listen needs token_key"):
        MallConfig(http_listen="127.0.0.1:8080")
    with pytest.raises(ValidationError, match="64 hex characters"):
        MallConfig(token_key="abcd")
    member_with_points(ledger, "m1", 0)
    keyless = open_mall(ledger)
    keyless.settings = type(keyless.settings)(token_key=b"")
    with pytest.raises(CoalitionError) as err:
        keyless.issue_token("m1", 60)
    assert err.value.reason == "MEMBER_TOKENS_DISABLED"


@pytest.mark.asyncio
async def test_a_configured_node_serves_the_member_api_on_its_own_port(ledger):
    member_with_points(ledger, "m1", 700)
    config = MallConfig(http_listen="127.0.0.1:0", token_key="ab" * 32, cors_origins=("*",))
    offload = Offload(4)
    server = Server([], listen="127.0.0.1:0")
    node = mount_mall(server, ledger, offload, config, TokenStaffAuth("x"), merchant_id="tea")
    await server.start()
    port = await node.start()
    try:
        token, _ = node.mall.issue_token("m1", 60)
        status, body, headers = await asyncio.to_thread(
            post, port, "GetMyBalance", {}, token, "https://any.example"
        )
        assert (status, body["availablePoints"]) == (200, "700")
        assert {k.lower(): v for k, v in headers.items()}["access-control-allow-origin"] == (
            "https://any.example"
        )
    finally:
        await server.stop(1)
        offload.shutdown()
