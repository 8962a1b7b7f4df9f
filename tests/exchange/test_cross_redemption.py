"""Cross-merchant redemption end to end: a real exchange and three real nodes on loopback."""

from __future__ import annotations

import grpc
import pytest
import sqlalchemy as sa

from coalition_kernel.errors import error_info_of
from exchange.schema import clearing_records
from merchant_node.ledger.schema import cross_redemptions, holds


async def member_with_points(coalition, member_id="m1", at="tea", fen=100_000):  # type: ignore[no-untyped-def]
    issuer = coalition[at]
    await issuer.client.enroll_member(member_id)
    await issuer.client.earn(member_id, f"seed-{member_id}", fen)
    return issuer


async def test_a_member_spends_tea_points_at_the_noodle_shop(coalition):
    tea, noodles = await member_with_points(coalition), coalition["noodles"]
    quote = await noodles.client.stub.QuoteCrossRedemption(
        __import__(
            "coalition.merchant.v1.merchant_node_pb2", fromlist=["x"]
        ).QuoteCrossRedemptionRequest(issuer_id="tea", points=300),
        metadata=noodles.client.auth,
    )
    assert (quote.points, quote.value_fen, quote.fee_fen) == (300, 300, 3)
    code = tea.wallet_code("m1", coalition.clock, "noodles", 300)
    auth = await noodles.client.authorize_cross(
        "tea", "m1", "bowl-1", points=300, consent_code=code
    )
    balance = await tea.client.get_balance("m1")
    assert (balance.available_points, balance.held_points) == (700, 300)
    captured = await noodles.client.capture_cross(auth.authorization_id)
    assert (captured.issuer_id, captured.points, captured.value_fen, captured.fee_fen) == (
        "tea",
        300,
        300,
        3,
    )
    balance = await tea.client.get_balance("m1")
    assert (balance.available_points, balance.held_points) == (700, 0)
    with noodles.ledger.engine.connect() as conn:
        receivable = conn.execute(sa.select(cross_redemptions)).one()
    assert (receivable.status, receivable.value_fen, receivable.clearing_id) == (
        "captured",
        300,
        captured.clearing_id,
    )
    assert tea.ledger.audit() == []


async def test_void_releases_the_hold(coalition):
    tea, salon = await member_with_points(coalition), coalition["salon"]
    code = tea.wallet_code("m1", coalition.clock, "salon", 250)
    auth = await salon.client.authorize_cross(
        "tea", "m1", "cut-1", amount_fen=250, consent_code=code
    )
    assert auth.points == 250
    voided = await salon.client.void_cross(auth.authorization_id)
    assert voided.voided
    assert (await tea.client.get_balance("m1")).available_points == 1000
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await salon.client.capture_cross(auth.authorization_id)
    assert error_info_of(err.value).reason == "AUTHORIZATION_VOIDED"


async def test_an_uncaptured_hold_lapses_and_can_never_be_captured(coalition):
    tea, noodles = await member_with_points(coalition), coalition["noodles"]
    code = tea.wallet_code("m1", coalition.clock, "noodles", 100)
    auth = await noodles.client.authorize_cross(
        "tea", "m1", "bowl-2", points=100, consent_code=code
    )
    coalition.clock.advance(minutes=16)  # holds last 15 minutes
    assert (await tea.client.get_balance("m1")).available_points == 1000  # before any sweep
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await noodles.client.capture_cross(auth.authorization_id)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info_of(err.value).reason == "HOLD_EXPIRED"
    tea.ledger.expire_due()
    with tea.ledger.engine.connect() as conn:
        assert conn.execute(sa.select(holds.c.status)).scalar_one() == "expired"
    with coalition.exchange.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(clearing_records)).scalar() == 0


async def test_law_5_three_way_match_after_a_mixed_workload(coalition):
    clock = coalition.clock
    for i, issuer in enumerate(("tea", "noodles", "salon")):
        await member_with_points(coalition, f"m{i}", at=issuer)
    captured = voided = 0
    for round_ in range(4):
        for i, issuer_id in enumerate(("tea", "noodles", "salon")):
            issuer = coalition[issuer_id]
            acquirer = coalition[("noodles", "salon", "tea")[i]]
            clock.advance(seconds=31)  # a fresh one-time code each time
            code = issuer.wallet_code(f"m{i}", clock, acquirer.merchant_id, 10 + round_ * 7 + i)
            auth = await acquirer.client.authorize_cross(
                issuer_id, f"m{i}", f"o{round_}-{i}", points=10 + round_ * 7 + i, consent_code=code
            )
            if (round_ + i) % 3 == 0:
                await acquirer.client.void_cross(auth.authorization_id)
                voided += 1
            else:
                await acquirer.client.capture_cross(auth.authorization_id)
                captured += 1
    with coalition.exchange.engine.connect() as conn:
        records = {
            r.authorization_id: (r.issuer_id, r.acquirer_id, r.points, r.value_fen, r.fee_fen)
            for r in conn.execute(sa.select(clearing_records))
        }
    posted, receivables = {}, {}
    for node in coalition.nodes.values():
        with node.ledger.engine.connect() as conn:
            for h in conn.execute(sa.select(holds).where(holds.c.status == "posted")):
                posted[h.hold_ref] = (node.merchant_id, h.points)
            for r in conn.execute(
                sa.select(cross_redemptions).where(cross_redemptions.c.status == "captured")
            ):
                receivables[r.authorization_id] = (
                    r.issuer_id,
                    node.merchant_id,
                    r.points,
                    r.value_fen,
                    r.fee_fen,
                )
        assert node.ledger.audit() == []
    assert len(records) == captured and voided > 0
    assert receivables == records
    assert posted == {auth: (rec[0], rec[2]) for auth, rec in records.items()}
    from coalition_kernel.db import run_in_transaction
    from exchange import audit

    assert run_in_transaction(coalition.exchange.engine, audit.verify_chain) == []


async def test_a_quote_is_honoured_until_it_expires(coalition):
    from coalition.merchant.v1 import merchant_node_pb2 as pb

    tea, noodles = await member_with_points(coalition), coalition["noodles"]
    quote = await noodles.client.stub.QuoteCrossRedemption(
        pb.QuoteCrossRedemptionRequest(issuer_id="tea", amount_fen=500),
        metadata=noodles.client.auth,
    )
    await coalition.operator.set_terms("tea", fen_per_point="2")  # points now worth twice as much
    code = tea.wallet_code("m1", coalition.clock, "noodles", 500)
    auth = await noodles.client.authorize_cross(
        "tea", "m1", "o1", quote_id=quote.quote_id, consent_code=code
    )
    assert (auth.points, auth.value_fen) == (500, 500)  # the quoted price, not the new one
    quote2 = await noodles.client.stub.QuoteCrossRedemption(
        pb.QuoteCrossRedemptionRequest(issuer_id="tea", amount_fen=500),
        metadata=noodles.client.auth,
    )
    assert quote2.points == 250
    coalition.clock.advance(seconds=121)
    code = tea.wallet_code("m1", coalition.clock, "noodles", 250)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await noodles.client.authorize_cross(
            "tea", "m1", "o2", quote_id=quote2.quote_id, consent_code=code
        )
    assert error_info_of(err.value).reason == "QUOTE_EXPIRED"


async def test_the_portfolio_shows_balances_at_every_issuer_the_member_consented_to(coalition):
    await member_with_points(coalition, "m1", at="tea", fen=10_000)
    await coalition["salon"].client.enroll_member("m1")
    await coalition["salon"].client.earn("m1", "s1", 5_000)
    clock = coalition.clock
    consents = {
        shop: coalition[shop].portfolio_code("m1", clock, "noodles") for shop in ("tea", "salon")
    }
    portfolio = await coalition["noodles"].client.get_portfolio("m1", consents)
    assert {
        (line.issuer_id, line.available_points, line.value_fen) for line in portfolio.lines
    } == {
        ("tea", 100, 100),
        ("salon", 50, 50),
    }
    assert portfolio.total_value_fen == 150


async def test_a_retry_signed_anew_gets_the_first_answer_and_holds_once(coalition):
    tea, noodles = await member_with_points(coalition), coalition["noodles"]
    code = tea.wallet_code("m1", coalition.clock, "noodles", 100)
    first = await noodles.client.authorize_cross(
        "tea", "m1", "o1", points=100, consent_code=code, request_id="r-1"
    )
    coalition.clock.advance(seconds=200)  # the node signs the retry anew: a new issued_at
    again = await noodles.client.authorize_cross(
        "tea", "m1", "o1", points=100, consent_code=code, request_id="r-1"
    )
    assert again == first
    with tea.ledger.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(holds)).scalar() == 1


async def test_voiding_a_hold_that_already_lapsed_reports_it_failed(coalition):
    tea, noodles = await member_with_points(coalition), coalition["noodles"]
    code = tea.wallet_code("m1", coalition.clock, "noodles", 100)
    auth = await noodles.client.authorize_cross("tea", "m1", "o1", points=100, consent_code=code)
    coalition.clock.advance(minutes=16)
    voided = await noodles.client.void_cross(auth.authorization_id)
    assert not voided.voided
    with tea.ledger.engine.connect() as conn:
        assert conn.execute(sa.select(holds.c.status)).scalar_one() == "expired"
