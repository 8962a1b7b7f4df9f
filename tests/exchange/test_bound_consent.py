"""Issue 10, holes 2-4: consent that cannot be guessed or stretched, and a portfolio only with
the member's proof. Through the real servers: the acquirer's POS API, the exchange, the issuer.
"""

from __future__ import annotations

import json

import grpc
import pytest
import sqlalchemy as sa

from coalition_kernel.errors import error_info_of
from merchant_node.ledger import consent
from merchant_node.ledger.schema import (
    consent_acquirer_failures,
    consent_guards,
    holds,
    idempotency,
    notifications,
)
from tests.exchange.conftest import Coalition


async def member(c: Coalition, member_id: str = "m1", fen: int = 100_000) -> str:
    await c["tea"].client.enroll_member(member_id)
    await c["tea"].client.earn(member_id, f"seed-{member_id}", fen)  # 1 point per yuan
    return member_id


async def refused(call) -> tuple[grpc.StatusCode, str, str]:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    info = error_info_of(caught.value)
    assert info is not None, caught.value
    return caught.value.code(), info.reason, caught.value.details() or ""


def wrong(c: Coalition, member_id: str, acquirer: str, points: int) -> str:
    right = c["tea"].wallet_code(member_id, c.clock, acquirer, points)
    return f"{(int(right) + 1) % 1_000_000:06d}"


def rows(engine: sa.Engine, table: sa.Table) -> list[sa.Row]:
    with engine.connect() as conn:
        return conn.execute(sa.select(table)).all()


async def test_a_code_bound_to_450_points_at_noodles_holds_no_more_and_nowhere_else(coalition):
    c = coalition
    m = await member(c)
    code = c["tea"].wallet_code(m, c.clock, "noodles", 450)  # "spend up to 450 at noodle-bar?"
    noodles, salon = c["noodles"].client, c["salon"].client
    # 451 points on a 450-point code: refused before anything is written.
    assert (
        await refused(
            noodles.authorize_cross(
                "tea", m, "bowl-1", points=451, consent_code=code, consent_max_points=450
            )
        )
    )[:2] == (grpc.StatusCode.PERMISSION_DENIED, "CONSENT_EXCEEDED")
    # Claiming the member agreed to more than she did: the code does not match those facts.
    assert (
        await refused(
            noodles.authorize_cross(
                "tea", m, "bowl-1", points=451, consent_code=code, consent_max_points=451
            )
        )
    )[:2] == (grpc.StatusCode.PERMISSION_DENIED, "CONSENT_INVALID")
    # The hair salon with the noodle bar's code, for the very same amount.
    assert (
        await refused(
            salon.authorize_cross(
                "tea", m, "cut-1", points=450, consent_code=code, consent_max_points=450
            )
        )
    )[:2] == (grpc.StatusCode.PERMISSION_DENIED, "CONSENT_INVALID")
    assert rows(c["tea"].ledger.engine, holds) == []
    # The noodle bar, within what she agreed to.
    auth = await noodles.authorize_cross(
        "tea", m, "bowl-1", points=420, consent_code=code, consent_max_points=450
    )
    assert auth.points == 420
    assert [(h.points, h.status) for h in rows(c["tea"].ledger.engine, holds)] == [(420, "pending")]


async def test_a_code_bound_to_an_order_is_good_for_that_order_only(coalition):
    c = coalition
    m = await member(c)
    code = c["tea"].wallet_code(m, c.clock, "noodles", 100, order_id="bowl-7")
    noodles = c["noodles"].client
    assert (
        await refused(
            noodles.authorize_cross(
                "tea", m, "bowl-8", points=100, consent_code=code, consent_order_id="bowl-7"
            )
        )
    )[:2] == (grpc.StatusCode.INVALID_ARGUMENT, "CONSENT_ORDER_MISMATCH")
    assert (
        (
            await refused(  # the order left out: the code names one, so it does not match
                noodles.authorize_cross("tea", m, "bowl-7", points=100, consent_code=code)
            )
        )[:2]
        == (grpc.StatusCode.PERMISSION_DENIED, "CONSENT_INVALID")
    )
    auth = await noodles.authorize_cross(
        "tea", m, "bowl-7", points=100, consent_code=code, consent_order_id="bowl-7"
    )
    assert auth.points == 100


async def test_brute_force_is_locked_out_after_5_tries_and_the_right_code_too_until_it_lapses(
    coalition,
):
    c = coalition
    m = await member(c)
    noodles, tea = c["noodles"].client, c["tea"]
    outcomes = []
    for i in range(consent.MAX_FAILURES + 2):
        code = wrong(c, m, "noodles", 100)
        outcomes.append(
            (
                await refused(
                    noodles.authorize_cross("tea", m, f"guess-{i}", points=100, consent_code=code)
                )
            )[1]
        )
    assert outcomes == ["CONSENT_INVALID"] * (consent.MAX_FAILURES - 1) + ["CONSENT_LOCKED"] * 3
    # The right code is refused too while the lock lasts ...
    right = tea.wallet_code(m, c.clock, "noodles", 100)
    code_, reason, details = await refused(
        noodles.authorize_cross("tea", m, "real-1", points=100, consent_code=right)
    )
    assert (code_, reason) == (grpc.StatusCode.PERMISSION_DENIED, "CONSENT_LOCKED")
    # ... and the member was told, once, through the outbox.
    (notice,) = rows(tea.ledger.engine, notifications)
    assert notice.kind == "consent_locked"
    assert json.loads(notice.payload)["acquirer_id"] == "noodles"
    # Bounded bookkeeping at the issuer: one counter row per member and per acquirer, no
    # idempotency record per wrong try, no hold.
    assert len(rows(tea.ledger.engine, consent_guards)) == 1
    assert [r.failures for r in rows(tea.ledger.engine, consent_acquirer_failures)] == [
        consent.MAX_FAILURES
    ]
    held = [r for r in rows(tea.ledger.engine, idempotency) if r.operation == "place_hold"]
    assert held == []
    assert rows(tea.ledger.engine, holds) == []
    # Once the lock lapses, a fresh right code goes through.
    c.clock.advance(seconds=consent.LOCK_FOR.total_seconds() + 31)
    right = tea.wallet_code(m, c.clock, "noodles", 100)
    auth = await noodles.authorize_cross("tea", m, "real-2", points=100, consent_code=right)
    assert auth.points == 100


async def test_one_acquirer_spraying_codes_over_many_members_is_rate_limited(coalition):
    c = coalition
    members = [await member(c, f"m{i}", fen=1_000) for i in range(8)]
    salon = c["salon"].client
    reasons = []
    for i in range(consent.ACQUIRER_MAX_FAILURES + 1):
        m = members[i % len(members)]  # at most 4 wrong tries each: nobody is locked out
        code = wrong(c, m, "salon", 5)
        reasons.append(
            (
                await refused(
                    salon.authorize_cross("tea", m, f"spray-{i}", points=5, consent_code=code)
                )
            )[:2]
        )
    assert reasons[:-1] == [(grpc.StatusCode.PERMISSION_DENIED, "CONSENT_INVALID")] * 30
    assert reasons[-1] == (grpc.StatusCode.RESOURCE_EXHAUSTED, "CONSENT_RATE_LIMITED")
    # Another acquirer is not held back, and neither is this member's right code elsewhere.
    right = c["tea"].wallet_code("m0", c.clock, "noodles", 5)
    auth = await c["noodles"].client.authorize_cross(
        "tea", "m0", "ok", points=5, consent_code=right
    )
    assert auth.points == 5


async def test_a_portfolio_without_consent_is_refused_alike_for_known_and_unknown_members(
    coalition,
):
    c = coalition
    known = await member(c, "13800000001")
    noodles = c["noodles"].client
    without = [await refused(noodles.get_portfolio(m)) for m in (known, "13800000002")]
    assert without[0] == without[1]
    assert without[0][:2] == (grpc.StatusCode.PERMISSION_DENIED, "CONSENT_REQUIRED")
    # With a code that is wrong for each: the same line for both.
    lines = []
    for m in (known, "13800000002"):
        portfolio = await noodles.get_portfolio(m, {"tea": "000000"})
        lines.append(
            [
                (x.issuer_id, x.reachable, x.consent_refused, x.available_points)
                for x in portfolio.lines
            ]
        )
    assert lines[0] == lines[1] == [("tea", True, True, 0)]
    # With her code for tea (and salon's, where she is not a member): tea's balance only.
    consents = {
        "tea": c["tea"].portfolio_code(known, c.clock, "noodles"),
        "salon": "123456",
    }
    portfolio = await noodles.get_portfolio(known, consents)
    assert [(x.issuer_id, x.available_points, x.consent_refused) for x in portfolio.lines] == [
        ("tea", 1000, False),
        ("salon", 0, True),
    ]
    assert portfolio.total_value_fen == 1000
    # Her portfolio code is bound to noodles: the salon cannot use it.
    stolen = await c["salon"].client.get_portfolio(known, {"tea": consents["tea"]})
    assert [x.consent_refused for x in stolen.lines] == [True]
