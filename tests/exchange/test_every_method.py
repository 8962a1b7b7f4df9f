"""Every RPC of every service answers garbage, and an empty request, with a clear status and
an ErrorInfo reason — never UNKNOWN or INTERNAL — and changes nothing."""

from __future__ import annotations

import grpc
import pytest
import sqlalchemy as sa

from coalition.exchange.v1 import exchange_pb2
from coalition.issuer.v1 import issuer_pb2
from coalition.merchant.v1 import marketing_pb2, merchant_node_pb2, rules_admin_pb2
from coalition_kernel.errors import error_info_of
from exchange.schema import metadata as exchange_tables
from merchant_node.ledger.schema import metadata as node_tables

NODE_SERVICES = [
    merchant_node_pb2.DESCRIPTOR.services_by_name["MerchantNodeService"],
    issuer_pb2.DESCRIPTOR.services_by_name["IssuerService"],
    rules_admin_pb2.DESCRIPTOR.services_by_name["RulesAdminService"],
    marketing_pb2.DESCRIPTOR.services_by_name["MarketingService"],
]
EXCHANGE_SERVICES = [
    exchange_pb2.DESCRIPTOR.services_by_name["ExchangeService"],
    exchange_pb2.DESCRIPTOR.services_by_name["OperatorService"],
]
ACCEPTABLE = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.ALREADY_EXISTS,
}
# Reads that legitimately answer an empty request with data (the node's methods are called with
# its own all-scope API key, so each reaches its own checks).
# Reads and validations whose empty request is a valid question (an empty list, "no document").
ANSWERS_EMPTY = {
    "ListProgramVersions",
    "ValidateProgram",
    "ListBudgetPools",
    "ListAtRisk",
    "ListDefinitionVersions",
    "ValidateDefinitions",
}


def dump(engine, metadata):  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return {
            t.name: conn.execute(sa.select(t)).all()
            for t in metadata.sorted_tables
            # The bookkeeping of requests and refusals (bounded per peer by design, issue 10).
            if t.name not in ("idempotency", "audit_log", "inbound_requests", "refusal_tally")
        }


async def call(target: str, service, method, body: bytes, metadata):  # type: ignore[no-untyped-def]
    async with grpc.aio.insecure_channel(target) as channel:
        rpc = channel.unary_unary(f"/{service.full_name}/{method.name}")
        return await rpc(body, timeout=10, metadata=metadata)


@pytest.mark.parametrize("body", [b"\xff\xff\xff", b""], ids=["garbage", "empty"])
async def test_every_method_refuses_bad_requests_clearly_and_changes_nothing(coalition, body):
    node = coalition["tea"]
    before = (
        dump(node.ledger.engine, node_tables),
        dump(coalition.exchange.engine, exchange_tables),
    )
    targets = [(node.target, s) for s in NODE_SERVICES] + [
        (coalition.exchange_target, s) for s in EXCHANGE_SERVICES
    ]
    seen = 0
    for target, service in targets:
        for method in service.methods:
            try:
                # The node's own key (every scope), so each method's own checks are reached.
                key = node.client.auth if target == node.target else (("authorization", "x"),)
                await call(target, service, method, body, key)
            except grpc.aio.AioRpcError as err:
                info = error_info_of(err)
                assert err.code() in ACCEPTABLE, (method.full_name, err.code(), err.details())
                assert info is not None and info.reason, (method.full_name, err.details())
                if body:
                    assert info.reason == "MALFORMED_REQUEST", (method.full_name, info.reason)
                seen += 1
                continue
            assert method.name in ANSWERS_EMPTY or method.name == "GetPortfolio" and not body, (
                method.full_name
            )
    assert seen >= 30
    assert (
        dump(node.ledger.engine, node_tables),
        dump(coalition.exchange.engine, exchange_tables),
    ) == before
