"""Issue 10, hole 3: one dead shop cannot slow every portfolio. Each issuer gets its own deadline,
and an issuer that keeps timing out is skipped by its circuit breaker until it cools down."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coalition.envelope.v1.envelope_pb2 import SignedEnvelope
from coalition_kernel.errors import DeadlineExceeded
from exchange.issuers import GrpcIssuerGateway
from exchange.portfolio import Breaker, FanOut
from exchange.redemption import Settings
from tests.exchange.conftest import Coalition, raw_public, start_coalition

SLOW = "127.0.0.1:9"  # the endpoint of a shop whose node never answers in time


class SlowShopGateway(GrpcIssuerGateway):
    """The real gateway, except that calls to SLOW wait out their deadline (a hung node)."""

    def __init__(self) -> None:
        super().__init__()
        self.slow_calls = 0

    async def call(
        self, endpoint: str, method: str, envelope: SignedEnvelope, timeout: float
    ) -> SignedEnvelope:
        if endpoint == SLOW:
            self.slow_calls += 1
            await asyncio.sleep(timeout)
            raise DeadlineExceeded("ISSUER_TIMEOUT", f"issuer at {endpoint} did not answer")
        return await super().call(endpoint, method, envelope, timeout)


@pytest_asyncio.fixture
async def slow(new_database, clock) -> AsyncIterator[tuple[Coalition, SlowShopGateway]]:  # type: ignore[no-untyped-def]
    gateway = SlowShopGateway()
    settings = Settings(
        issuer_timeout=3.0,
        # Each issuer's deadline: the hung shop waits it out twice. Long enough for a live
        # shop's first answer on a loaded CI machine (once, 0.5 s was not), short next to the
        # issuer timeout, so the live shop answering in time is still what is shown.
        fan_out=FanOut(deadline=2.0, breaker_failures=2, breaker_cooldown=3600),
    )
    async for c in start_coalition(new_database, clock, settings, issuers=gateway):
        yield c, gateway


async def test_a_shop_that_keeps_timing_out_is_skipped_and_the_others_still_answer(slow):
    c, gateway = slow
    await c.operator.onboard("hung", "Hung", raw_public(Ed25519PrivateKey.generate()), SLOW)
    await c["tea"].client.enroll_member("m1")
    await c["tea"].client.earn("m1", "seed", 10_000)
    lines = []
    for _ in range(4):
        consents = {"tea": c["tea"].portfolio_code("m1", c.clock, "noodles"), "hung": "123456"}
        portfolio = await c["noodles"].client.get_portfolio("m1", consents)
        lines.append([(x.issuer_id, x.reachable, x.available_points) for x in portfolio.lines])
    assert lines == [[("tea", True, 100), ("hung", False, 0)]] * 4
    # Two timeouts opened its breaker: the third and fourth portfolios did not wait for it.
    assert gateway.slow_calls == 2


def test_the_breaker_opens_after_straight_failures_and_half_opens_after_the_cooldown():
    now = [0.0]
    breaker = Breaker(failures=3, cooldown=10, clock=lambda: now[0])
    for _ in range(2):
        breaker.record("x", answered=False)
    assert breaker.allow("x")
    breaker.record("x", answered=True)  # an answer resets the streak
    for _ in range(3):
        breaker.record("x", answered=False)
    assert not breaker.allow("x") and breaker.allow("y")
    now[0] = 10.0
    assert breaker.allow("x")  # one trial call ...
    assert not breaker.allow("x")  # ... at a time
    breaker.record("x", answered=True)
    assert breaker.allow("x") and breaker.allow("x")
