"""The net-debit cap: the exchange authorizes nothing more drawing on an issuer whose unsettled
net debit would pass its cap, until its settlement is paid. A real exchange and real nodes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime

import grpc
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization

from coalition_kernel.db import make_engine
from coalition_kernel.errors import CoalitionError, error_info_of
from exchange import registry
from exchange.migrate import upgrade
from exchange.schema import (
    audit_log,
    authorizations,
    clearing_records,
    inbound_requests,
    settlement_batches,
)
from tests.exchange.test_cross_redemption import member_with_points

PERIOD = "2026-01-05"  # the Asia/Shanghai day of the fake clock's 09:00 UTC


async def authorize(coalition, points, *, issuer="tea", member="m1", at="noodles", order="o"):  # type: ignore[no-untyped-def]
    coalition.clock.advance(seconds=31)  # a fresh one-time code each time
    code = coalition[issuer].wallet_code(member, coalition.clock, at, points)
    return await coalition[at].client.authorize_cross(
        issuer, member, order, points=points, consent_code=code
    )


async def refused(coalition, points, **kwargs):  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await authorize(coalition, points, **kwargs)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info_of(err.value).reason == "NET_DEBIT_CAP_EXCEEDED"
    return err.value.details()


def count(coalition, table, *where):  # type: ignore[no-untyped-def]
    with coalition.exchange.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table).where(*where)).scalar()


async def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    # In a thread: the exchange and the nodes serve on this test's event loop.
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "coalition_cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def exchange_key_file(coalition, path):  # type: ignore[no-untyped-def]
    path.write_bytes(
        coalition.exchange.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


def write_batch(coalition, status: str, period: str = PERIOD) -> None:  # type: ignore[no-untyped-def]
    """The settlement batch of the period, in the state given (as the workflow would leave it)."""
    now = coalition.clock()
    with coalition.exchange.engine.begin() as conn:
        done = conn.execute(
            sa.update(settlement_batches)
            .where(settlement_batches.c.period == period)
            .values(status=status, updated_at=now)
        )
        if done.rowcount == 0:
            conn.execute(
                sa.insert(settlement_batches).values(
                    batch_id=f"sb-{period}",
                    period=period,
                    first_day=period,
                    last_day=period,
                    status=status,
                    opened_at=now,
                    updated_at=now,
                )
            )


async def test_authorizations_pass_under_the_cap_and_the_one_crossing_it_changes_nothing(
    coalition,
):
    tea = await member_with_points(coalition)  # 1000 points at 1 fen each
    merchant = await coalition.operator.set_terms("tea", net_debit_cap_fen=500)
    assert merchant.net_debit_cap_fen == 500
    await authorize(coalition, 300, order="o1")
    await authorize(coalition, 200, order="o2")  # exactly at the cap: still allowed
    before = await tea.client.get_balance("m1")
    audit_before = count(coalition, audit_log)

    details = await refused(coalition, 1, order="o3")

    assert "tea" in details and "cap of 500 fen" in details and "net debit of 500 fen" in details
    assert "1 fen" in details and "until its next settlement is paid" in details
    assert count(coalition, authorizations) == 2  # no authorization row
    after = await tea.client.get_balance("m1")
    assert (after.available_points, after.held_points) == (before.available_points, 500)
    # The refusal is on the record like any other: stored for its request id, and logged.
    refusals = inbound_requests.c.error_reason == "NET_DEBIT_CAP_EXCEEDED"
    assert count(coalition, inbound_requests, refusals) == 1
    with coalition.exchange.engine.connect() as conn:
        outcomes = conn.execute(
            sa.select(audit_log.c.peer_id, audit_log.c.outcome).where(
                audit_log.c.sequence > audit_before
            )
        ).all()
    assert ("noodles", "refused:NET_DEBIT_CAP_EXCEEDED") in outcomes
    assert all(peer != "tea" for peer, _ in outcomes)  # the issuer was never asked


async def test_voiding_an_open_authorization_frees_room(coalition):
    await member_with_points(coalition)
    await coalition.operator.set_terms("tea", net_debit_cap_fen=300)
    first = await authorize(coalition, 300, order="o1")
    await refused(coalition, 100, order="o2")
    await coalition["noodles"].client.void_cross(first.authorization_id)
    second = await authorize(coalition, 100, order="o3")
    assert second.points == 100


async def test_a_lapsed_hold_stops_counting_without_a_void(coalition):
    await member_with_points(coalition)
    await coalition.operator.set_terms("tea", net_debit_cap_fen=300)
    await authorize(coalition, 300, order="o1")
    await refused(coalition, 100, order="o2")
    coalition.clock.advance(minutes=16)  # holds last 15 minutes: it can never be captured now
    assert (await authorize(coalition, 300, order="o3")).points == 300


async def test_captured_debit_counts_until_the_periods_batch_is_paid(coalition):
    await member_with_points(coalition)
    await coalition.operator.set_terms("tea", net_debit_cap_fen=300)
    auth = await authorize(coalition, 300, order="o1")
    await coalition["noodles"].client.capture_cross(auth.authorization_id)
    await refused(coalition, 1, order="o2")
    write_batch(coalition, "closed")
    await refused(coalition, 1, order="o3")  # closed is not paid
    write_batch(coalition, "approved")
    await refused(coalition, 1, order="o4")  # nor is approved
    write_batch(coalition, "paid")
    assert (await authorize(coalition, 300, order="o5")).points == 300


async def test_receivables_as_acquirer_offset_the_debit(coalition):
    await member_with_points(coalition)
    await member_with_points(coalition, "m2", at="salon")
    await coalition.operator.set_terms("tea", net_debit_cap_fen=100)
    # Tea acquires 400 fen of salon's points: salon will pay it 400 - 4 (fee) = 396.
    bought = await authorize(coalition, 400, issuer="salon", member="m2", at="tea", order="t1")
    await coalition["tea"].client.capture_cross(bought.authorization_id)
    with coalition.exchange.engine.connect() as conn:
        assert registry.unsettled_net_debit(conn, "tea", coalition.clock()) == -396
    await authorize(coalition, 450, order="o1")  # 450 - 396 = 54 <= 100
    await authorize(coalition, 46, order="o2")  # 100: at the cap
    details = await refused(coalition, 1, order="o3")
    assert "net debit of 100 fen" in details


async def test_concurrent_authorizations_never_pass_the_cap_together(coalition):
    """16 authorizations at once, 100 fen each, against a cap of 500: exactly 5 pass. On
    PostgreSQL the issuer's row lock is what keeps them from all seeing room."""
    members = [f"c{i}" for i in range(16)]
    for member in members:
        await member_with_points(coalition, member, fen=10_000)  # 100 points each
    await coalition.operator.set_terms("tea", net_debit_cap_fen=500)
    coalition.clock.advance(seconds=31)
    codes = {m: coalition["tea"].wallet_code(m, coalition.clock, "noodles", 100) for m in members}
    noodles = coalition["noodles"].client

    async def one(member: str) -> str:
        try:
            await noodles.authorize_cross(
                "tea", member, f"o-{member}", points=100, consent_code=codes[member]
            )
        except grpc.aio.AioRpcError as err:
            return error_info_of(err).reason
        return "ok"

    outcomes = await asyncio.gather(*(one(m) for m in members))
    assert sorted(outcomes) == ["NET_DEBIT_CAP_EXCEEDED"] * 11 + ["ok"] * 5
    with coalition.exchange.engine.connect() as conn:
        assert registry.unsettled_net_debit(conn, "tea", coalition.clock()) == 500
    assert count(coalition, authorizations) == 5


async def test_the_operator_sets_changes_and_removes_a_cap(coalition):
    operator = coalition.operator
    listed = {m.merchant_id: m for m in await operator.list()}
    assert not listed["tea"].HasField("net_debit_cap_fen")  # no cap by default
    for bad in (-2, -(10**12)):
        with pytest.raises(CoalitionError) as err:
            await operator.set_terms("tea", net_debit_cap_fen=bad)
        assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert err.value.reason == "CAP_OUT_OF_RANGE"
    assert (await operator.set_terms("tea", net_debit_cap_fen=0)).net_debit_cap_fen == 0
    # A command without the field (an older client) keeps the cap.
    kept = await operator.set_terms("tea", fee_bps=50)
    assert (kept.fee_bps, kept.net_debit_cap_fen) == (50, 0)
    await member_with_points(coalition)
    await refused(coalition, 1)  # a cap of 0: nothing may be drawn
    removed = await operator.set_terms("tea", net_debit_cap_fen=registry.NO_CAP)
    assert not removed.HasField("net_debit_cap_fen")
    assert (await authorize(coalition, 1, order="o2")).points == 1
    with pytest.raises(CoalitionError) as err:
        await operator.set_terms("nobody", net_debit_cap_fen=10)
    assert err.value.reason == "MERCHANT_NOT_FOUND"


async def test_the_operator_command_line_sets_and_removes_a_cap(coalition, tmp_path):
    coalition.clock.now = datetime.now(UTC)  # the command line signs with the real clock
    key = tmp_path / "operator.pem"
    key.write_bytes(
        coalition.operator_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    op = ["--exchange", coalition.exchange_target, "--key", str(key)]
    op += ["--exchange-key", str(exchange_key_file(coalition, tmp_path / "exchange.pub.pem"))]

    capped = await run_cli("operator", "set-terms", *op, "tea", "--net-debit-cap-fen", "700")
    assert capped.returncode == 0, capped.stderr
    assert "cap 700 fen" in capped.stdout
    listed = await run_cli("operator", "list", *op)
    assert "cap 700 fen" in listed.stdout and listed.stdout.count("no cap") == 2
    refused = await run_cli("operator", "set-terms", *op, "tea", "--net-debit-cap-fen", "-5")
    assert refused.returncode == 1 and "CAP_OUT_OF_RANGE" in refused.stderr
    both = await run_cli(
        "operator", "set-terms", *op, "tea", "--net-debit-cap-fen", "1", "--no-net-debit-cap"
    )
    assert both.returncode == 2  # one or the other
    removed = await run_cli("operator", "set-terms", *op, "tea", "--no-net-debit-cap")
    assert removed.returncode == 0 and "no cap" in removed.stdout


def test_only_days_a_paid_batch_covers_stop_counting(db_url):
    """Tea issues 2^k fen on day k, so the sum names the days still counted: days before any
    batch, of a disputed or open batch, of no batch, and after the last paid one."""
    engine = make_engine(db_url)
    upgrade(engine)
    now = datetime(2026, 1, 10, tzinfo=UTC)
    days = ["2025-12-31"] + [f"2026-01-0{d}" for d in range(1, 10)]
    batches = [  # (period, first, last, status)
        ("2026-01-01", "2026-01-01", "2026-01-01", "paid"),
        ("2026-01-02", "2026-01-02", "2026-01-02", "disputed"),
        ("2026-W01", "2026-01-03", "2026-01-05", "paid"),  # overlaps the next
        ("2026-01-04", "2026-01-04", "2026-01-04", "confirmed"),
        ("2026-01-07", "2026-01-07", "2026-01-07", "confirmed"),
        ("2026-01-08", "2026-01-08", "2026-01-08", "open"),
    ]
    auth = dict(member_id="m", order_id="o", points=1, fee_fen=0, rate_version=1)
    auth.update(consent_code="1", created_at=now, updated_at=now)

    def record(i: int, issuer: str, acquirer: str, value: int, fee: int, day: str) -> None:
        conn.execute(
            sa.insert(authorizations).values(
                **auth,
                authorization_id=f"a{i}",
                request_id=f"r{i}",
                acquirer_id=acquirer,
                issuer_id=issuer,
                value_fen=value,
                status="captured",
            )
        )
        conn.execute(
            sa.insert(clearing_records).values(
                clearing_id=f"c{i}",
                authorization_id=f"a{i}",
                issuer_id=issuer,
                acquirer_id=acquirer,
                member_id="m",
                order_id="o",
                points=1,
                value_fen=value,
                fee_fen=fee,
                rate_version=1,
                settlement_period=day,
                authorized_at=now,
                captured_at=now,
                acquirer_envelope=b"",
                issuer_envelope=b"",
            )
        )

    with engine.begin() as conn:
        for k, day in enumerate(days):
            record(k, "tea", "noodles", 2**k, 0, day)
        record(20, "salon", "tea", 1000, 10, "2026-01-06")  # unsettled: tea is owed 990
        record(21, "salon", "tea", 5000, 50, "2026-01-07")  # paid already
        for n, status in enumerate(("pending", "authorized", "capturing", "voided", "failed")):
            conn.execute(
                sa.insert(authorizations).values(
                    **auth,
                    authorization_id=f"open{n}",
                    request_id=f"open{n}",
                    acquirer_id="noodles",
                    issuer_id="tea",
                    value_fen=10**6 if status in ("voided", "failed") else 2048,
                    status=status,
                )
            )
        for period, first, last, status in batches:
            conn.execute(
                sa.insert(settlement_batches).values(
                    batch_id=f"sb-{period}",
                    period=period,
                    first_day=first,
                    last_day=last,
                    status=status,
                    opened_at=now,
                    updated_at=now,
                )
            )
    counted = [0, 2, 6, 8, 9]  # 2025-12-31, 01-02, 01-06, 01-08, 01-09
    try:
        with engine.connect() as conn:
            assert registry.unsettled_net_debit(conn, "tea", now) == (
                sum(2**k for k in counted) + 3 * 2048 - 990
            )
            assert registry.unsettled_net_debit(conn, "salon", now) == 1000
            assert registry.unsettled_net_debit(conn, "nobody", now) == 0
    finally:
        engine.dispose()


async def test_the_operators_breakage_share_counts_until_its_batch_is_paid(coalition):
    from exchange.registry import unsettled_net_debit
    from exchange.schema import settlement_breakage

    await member_with_points(coalition)
    await coalition.operator.set_terms("tea", net_debit_cap_fen=300)
    write_batch(coalition, "closed", period="2026-01-04")
    with coalition.exchange.engine.begin() as conn:
        conn.execute(
            sa.insert(settlement_breakage).values(
                batch_id="sb-2026-01-04",
                issuer_id="tea",
                points=500,
                value_fen=500,
                operator_bps=5000,
                operator_fen=250,
                issuer_envelope=b"receipt",
            )
        )
    with coalition.exchange.engine.connect() as conn:
        assert unsettled_net_debit(conn, "tea", coalition.clock()) == 250
    await refused(coalition, 51, order="o1")  # 250 owed for breakage + 51 > 300
    assert (await authorize(coalition, 50, order="o2")).points == 50
    write_batch(coalition, "paid", period="2026-01-04")
    with coalition.exchange.engine.connect() as conn:
        assert unsettled_net_debit(conn, "tea", coalition.clock()) == 50
