"""What docs/protocol.md and docs/merchant-node.md promise, pinned against the real servers:
refusal metadata, amounts of zero, answers that must repeat the request's id, and the NOT_FOUND
reasons. (A void after a hold lapsed is answered FAILED: pinned by
test_cross_redemption.py::test_voiding_a_hold_that_already_lapsed_reports_it_failed; a node's own
MEMBER_NOT_FOUND by tests/test_network.py's log-line test.)"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio

from coalition.envelope.v1.envelope_pb2 import SignedEnvelope
from coalition.exchange.v1 import exchange_pb2 as xpb
from coalition.issuer.v1 import issuer_pb2 as ipb
from coalition.merchant.v1 import merchant_node_pb2 as pb
from coalition_kernel.envelope import Signer
from coalition_kernel.errors import CoalitionError, error_info_of
from exchange.issuers import GrpcIssuerGateway
from exchange.schema import authorizations
from tests.exchange.conftest import Coalition, start_coalition
from tests.exchange.test_cross_redemption import member_with_points
from tests.exchange.test_net_debit_cap import authorize
from tests.exchange.test_settlement_proof import link_of


async def refusal(call) -> tuple[grpc.StatusCode, str, dict[str, str]]:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    info = error_info_of(err.value)
    assert info is not None, err.value
    return err.value.code(), info.reason, dict(info.metadata)


async def test_insufficient_points_carries_the_available_and_requested_points(coalition):
    tea = await member_with_points(coalition, fen=100_000)  # 1000 points
    code, reason, metadata = await refusal(
        tea.client.redeem("m1", "big", points=1500, request_id="r-big")
    )
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "INSUFFICIENT_POINTS")
    assert metadata == {"available_points": "1000", "requested_points": "1500"}
    # Spent at another shop, the issuer's refusal reaches the POS through the exchange whole.
    code, reason, metadata = await refusal(authorize(coalition, 1500))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "INSUFFICIENT_POINTS")
    assert metadata == {"available_points": "1000", "requested_points": "1500"}
    # A retry under the same request id is refused the same way (status, reason, message).
    code, reason, _ = await refusal(tea.client.redeem("m1", "big", points=1500, request_id="r-big"))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "INSUFFICIENT_POINTS")


@pytest.mark.parametrize("side", ["node", "exchange"])
async def test_zero_points_is_a_missing_amount(coalition, side):
    """Exactly one of points, amount_fen, non-zero: 0 counts as not given (MISSING_FIELD);
    below 0 or above 10^15 is AMOUNT_OUT_OF_RANGE."""
    await member_with_points(coalition)
    noodles = coalition["noodles"]
    if side == "node":
        auth = noodles.client.auth  # the till's API key
        for call in (
            noodles.client.stub.Redeem(
                pb.RedeemRequest(request_id="r0", member_id="m1", order_id="o0", points=0),
                metadata=auth,
            ),
            noodles.client.stub.QuoteCrossRedemption(
                pb.QuoteCrossRedemptionRequest(issuer_id="tea", points=0), metadata=auth
            ),
        ):
            assert (await refusal(call))[:2] == (grpc.StatusCode.INVALID_ARGUMENT, "MISSING_FIELD")
        assert (await refusal(noodles.client.quote_cross("tea", points=-5)))[:2] == (
            grpc.StatusCode.INVALID_ARGUMENT,
            "AMOUNT_OUT_OF_RANGE",
        )
        return
    link = link_of(coalition, "noodles")
    try:
        for points, reason in ((0, "MISSING_FIELD"), (-5, "AMOUNT_OUT_OF_RANGE")):
            with pytest.raises(CoalitionError) as err:
                await link.call(
                    "GetQuote",
                    xpb.QuoteCommand(issuer_id="tea", points=points),
                    f"q-{points}",
                    xpb.QuoteReceipt,
                )
            assert (err.value.code, err.value.reason) == (
                grpc.StatusCode.INVALID_ARGUMENT,
                reason,
            )
    finally:
        await link.close()


async def test_an_unknown_merchant_or_authorization_is_not_found(coalition):
    await member_with_points(coalition)
    link = link_of(coalition, "noodles")
    try:
        with pytest.raises(CoalitionError) as err:
            await link.call(
                "GetQuote", xpb.QuoteCommand(issuer_id="nobody", points=10), "q-1", xpb.QuoteReceipt
            )
        assert (err.value.code, err.value.reason) == (
            grpc.StatusCode.NOT_FOUND,
            "MERCHANT_NOT_FOUND",
        )
        for method, command, receipt in (
            ("Capture", xpb.CaptureCommand(authorization_id="a-none"), xpb.CaptureReceipt),
            ("Void", xpb.VoidCommand(authorization_id="a-none"), xpb.VoidReceipt),
        ):
            with pytest.raises(CoalitionError) as err:
                await link.call(method, command, f"{method}-1", receipt)
            assert (err.value.code, err.value.reason) == (
                grpc.StatusCode.NOT_FOUND,
                "AUTHORIZATION_NOT_FOUND",
            )
    finally:
        await link.close()


class RenamingIssuers(GrpcIssuerGateway):
    """An issuer whose PlaceHold answer, correctly signed by its own key and bound to the
    request's digest, names another request id."""

    def __init__(self) -> None:
        super().__init__()
        self.signers: dict[str, Signer] = {}

    async def call(
        self, endpoint: str, method: str, envelope: SignedEnvelope, timeout: float
    ) -> SignedEnvelope:
        answer = await super().call(endpoint, method, envelope, timeout)
        if method != "PlaceHold":
            return answer
        receipt = ipb.HoldReceipt.FromString(answer.payload)
        receipt.ClearField("header")
        return self.signers[answer.signer_id].seal(
            receipt, audience="exchange", request_id="someone-elses-id", answering=envelope
        )


@pytest_asyncio.fixture
async def renaming(new_database, clock) -> AsyncIterator[Coalition]:  # type: ignore[no-untyped-def]
    issuers = RenamingIssuers()
    async for running in start_coalition(new_database, clock, issuers=issuers):
        for merchant_id, node in running.nodes.items():
            issuers.signers[merchant_id] = Signer(merchant_id, node.key, clock)
        yield running


async def test_an_issuer_answer_that_does_not_repeat_the_request_id_is_refused(renaming):
    await member_with_points(renaming)
    code, reason, _ = await refusal(authorize(renaming, 100))
    assert (code, reason) == (grpc.StatusCode.UNAVAILABLE, "ISSUER_ANSWER_INVALID")
    with renaming.exchange.engine.connect() as conn:
        (status,) = conn.execute(authorizations.select().with_only_columns(
            authorizations.c.status
        )).one()  # fmt: skip
    assert status == "pending"  # the recovery sweep voids it at the issuer later
