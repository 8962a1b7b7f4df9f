"""API keys without a server: their form, digests, scopes, and the verified-key cache (a clock
moved by hand shows a revocation by another process honoured within the interval)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from coalition_kernel.errors import InvalidArgument, PermissionDenied, Unauthenticated
from coalition_kernel.rpc import Offload
from merchant_node.auth import domain
from merchant_node.auth.domain import POS, READ, Limits
from merchant_node.auth.service import NodeAuth, add_client, list_clients, revoke_client


class Call:
    """What NodeAuth reads of a gRPC call: its metadata."""

    def __init__(self, key: str) -> None:
        self.metadata = (("authorization", f"Bearer {key}"),) if key else ()

    def invocation_metadata(self):  # type: ignore[no-untyped-def]
        return self.metadata


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_new_key_parses_back_to_its_id_and_only_its_secret_verifies():
    key_id, key, digest = domain.new_key()
    parsed_id, secret = domain.parse_key(key)
    assert parsed_id == key_id and domain.digest(key_id, secret) == digest
    assert digest not in key and secret not in digest


@given(st.text(max_size=80))
def test_anything_but_a_well_formed_key_is_api_key_invalid(text):
    try:
        key_id, secret = domain.parse_key(text)
    except Unauthenticated as err:
        assert err.reason == "API_KEY_INVALID"
    else:
        assert text == f"cpk_{key_id}_{secret}"


def test_scopes_and_names_are_checked():
    assert domain.parse_scopes("read, pos") == {POS, READ}
    for bad in ("", "pos,root", ","):
        with pytest.raises(InvalidArgument):
            domain.parse_scopes(bad)
    with pytest.raises(InvalidArgument):
        domain.check_name("till 1; drop table")
    with pytest.raises(InvalidArgument):
        domain.check_limits(Limits(max_order_fen=-1))


async def test_cached_keys_honour_a_revocation_by_another_process_within_the_interval(ledger):
    clock, offload = Clock(), Offload(2)
    auth = NodeAuth(ledger.engine, offload, cache_seconds=2.0, clock=clock)
    issued = add_client(ledger.engine, "till", "pos")
    try:
        assert (await auth.authorize(Call(issued.key), POS, "Earn")).name == "till"
        revoke_client(ledger.engine, "till")  # the CLI, in another process
        clock.now += 1.9
        await auth.authorize(Call(issued.key), POS, "Earn")  # still cached
        clock.now += 0.2
        with pytest.raises(Unauthenticated) as err:
            await auth.authorize(Call(issued.key), POS, "Earn")
        assert err.value.reason == "API_KEY_REVOKED"
        second = add_client(ledger.engine, "till", "pos")
        await auth.authorize(Call(second.key), POS, "Earn")
        auth.revoke(second.client.key_id)  # in this process: at once
        with pytest.raises(Unauthenticated):
            await auth.authorize(Call(second.key), POS, "Earn")
        with pytest.raises(PermissionDenied) as denied:
            await auth.authorize(Call(add_client(ledger.engine, "r", "read").key), POS, "Earn")
        assert denied.value.reason == "SCOPE_DENIED" and denied.value.metadata["scope"] == POS
    finally:
        offload.shutdown()


def test_revoking_by_name_needs_one_active_client_of_that_name(ledger):
    a = add_client(ledger.engine, "till", "pos")
    b = add_client(ledger.engine, "till", "pos")
    with pytest.raises(InvalidArgument) as err:
        revoke_client(ledger.engine, "till")
    assert err.value.reason == "CLIENT_AMBIGUOUS"
    revoke_client(ledger.engine, a.client.key_id)
    assert revoke_client(ledger.engine, "till").key_id == b.client.key_id
    assert all(c.revoked_at is not None for c in list_clients(ledger.engine))
    assert all(c.secret_digest != a.key for c in list_clients(ledger.engine))
