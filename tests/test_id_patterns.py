"""Ids end where the text ends: a trailing newline is not a valid id (found by the partner
written from the docs: Python's `$` also matches before a final "\\n")."""

from __future__ import annotations

import pytest

from coalition_kernel.errors import InvalidArgument
from merchant_node.ledger.commands import check_id, check_request_id
from settlement.periods import bounds


@pytest.mark.parametrize("value", ["m1\n", "m1\r\n", "\nm1", "m 1"])
def test_a_member_id_with_a_newline_or_space_is_refused_as_malformed(value: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        check_id("member_id", value)
    assert refused.value.reason == "MALFORMED_ID"


def test_a_request_id_with_a_trailing_newline_is_refused_and_a_plain_one_accepted() -> None:
    with pytest.raises(InvalidArgument) as refused:
        check_request_id("req-1\n")
    assert refused.value.reason == "MALFORMED_ID"
    assert check_request_id("req-1") == "req-1"


def test_a_period_with_a_trailing_newline_is_not_a_period() -> None:
    with pytest.raises(InvalidArgument) as refused:
        bounds("2026-12-04\n")
    assert refused.value.reason == "MALFORMED_PERIOD"


@pytest.mark.parametrize("request_id", ["req-1\n", "req 1"])
def test_an_envelope_whose_request_id_is_not_plain_is_refused_malformed(request_id: str) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from coalition.exchange.v1 import exchange_pb2 as xpb
    from coalition_kernel.envelope import Signer, StaticKeys, Verifier

    key = Ed25519PrivateKey.generate()
    signer = Signer("tea-house", key)
    verifier = Verifier("exchange", StaticKeys({"tea-house": key.public_key()}))
    sealed = signer.seal(xpb.QuoteCommand(), audience="exchange", request_id=request_id)
    with pytest.raises(InvalidArgument) as refused:
        verifier.open(sealed, xpb.QuoteCommand)
    assert refused.value.reason == "MALFORMED_ID"
    plain = signer.seal(xpb.QuoteCommand(), audience="exchange", request_id="req-1")
    assert verifier.open(plain, xpb.QuoteCommand).header.request_id == "req-1"
