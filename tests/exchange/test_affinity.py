"""Shops sharing customers, from known clearing records: exact counts, lifts, suppression under k,
shared customers and ranked partnership suggestions (exchange/affinity.py), through the module,
the operator's RPC and `coalition operator affinity`; SQLite and PostgreSQL.

The district (k = 5, a 30-day window ending 2026-01-05 09:00 UTC):

    tea → noodles   members t1..t6 (t1, t2 twice): 8 redemptions, 50 points / 100 fen each
    noodles → tea   members n1..n5, once each, 10 points / 10 fen
    salon → tea     members s1..s5, once each
    noodles → salon members n1, n6..n9, once each
    tea → salon     members t1, t7                    (2 < k: suppressed)
    bakery → salon  members b1..b4                    (4 < k: suppressed)
    tea → noodles   t9, 31 days ago; t8 at the window's end (both outside it)

Shown: m(T→N) 6, m(N→T) 5, m(S→T) 5, m(N→S) 5. out: T 6, N 10, S 5; in: N 6, T 10, S 5; total 21.
    lift(T→N) = 6·(21−10)·10000 // (6·6)  = 18333
    lift(N→T) = 5·(21−6)·10000 // (10·10) = 7500
    lift(S→T) = 5·(21−5)·10000 // (5·10)  = 16000
    lift(N→S) = 5·(21−6)·10000 // (10·5)  = 15000
Shared: {noodles, tea} 11, {noodles, salon} 5, {salon, tea} 5.
Suggestions (strong = lift ≥ 10000; only one direction of each pair is strong):
    noodles offers to tea's members 18333 (6); tea to salon's 16000 (5); salon to noodles' 15000 (5).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from functools import partial
from itertools import count

import grpc
import pytest
import pytest_asyncio
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coalition.exchange.v1 import exchange_pb2 as xpb
from coalition.exchange.v1.exchange_pb2_grpc import OperatorServiceStub
from coalition_kernel.db import make_engine
from coalition_kernel.envelope import EXCHANGE_ID, OPERATOR_ID, Signer
from coalition_kernel.errors import InvalidArgument, error_info_of
from exchange import affinity as aff
from exchange.migrate import upgrade
from exchange.operator_client import OperatorClient
from exchange.redemption import Settings
from exchange.runtime import ExchangeApp
from exchange.schema import authorizations, clearing_records

NOW = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
_ids = count(1)


def redeem(conn, issuer, acquirer, member, points=10, value_fen=10, at=None, now=NOW):  # type: ignore[no-untyped-def]
    """One captured cross-shop redemption: its authorization and its clearing record."""
    n = next(_ids)
    at = at or now - timedelta(days=1)
    common = {
        "issuer_id": issuer,
        "acquirer_id": acquirer,
        "member_id": member,
        "order_id": f"o{n}",
        "points": points,
        "value_fen": value_fen,
        "fee_fen": 0,
        "rate_version": 1,
    }
    conn.execute(
        sa.insert(authorizations).values(
            authorization_id=f"a{n}", request_id=f"r{n}", consent_code="000000",
            status="captured", created_at=at, updated_at=at, **common,
        )
    )  # fmt: skip
    conn.execute(
        sa.insert(clearing_records).values(
            clearing_id=f"c{n}", authorization_id=f"a{n}", settlement_period=at.date().isoformat(),
            authorized_at=at, captured_at=at, acquirer_envelope=b"", issuer_envelope=b"",
            **common,
        )
    )  # fmt: skip


def district(conn, now: datetime = NOW) -> None:  # type: ignore[no-untyped-def]
    r = partial(redeem, conn, now=now)
    for i in range(1, 7):
        r("tea", "noodles", f"t{i}", 50, 100)
    r("tea", "noodles", "t1", 50, 100, now - timedelta(days=29, hours=23))
    r("tea", "noodles", "t2", 50, 100, now - timedelta(minutes=1))
    for i in range(1, 6):
        r("noodles", "tea", f"n{i}")
        r("salon", "tea", f"s{i}")
    for member in ("n1", "n6", "n7", "n8", "n9"):
        r("noodles", "salon", member)
    r("tea", "salon", "t1")
    r("tea", "salon", "t7")
    for i in range(1, 5):
        r("bakery", "salon", f"b{i}")
    r("tea", "noodles", "t9", 50, 100, now - timedelta(days=31))
    r("tea", "noodles", "t8", 50, 100, now)


@pytest.fixture
def engine(db_url):  # type: ignore[no-untyped-def]
    engine = make_engine(db_url)
    upgrade(engine)
    with engine.begin() as conn:
        district(conn)
    yield engine
    engine.dispose()


def test_flows_are_counted_by_distinct_member_and_suppressed_under_k(engine):
    with engine.connect() as conn:
        result = aff.affinity(conn, NOW)
    assert result.window_start == NOW - timedelta(days=30) and result.window_end == NOW
    assert result.min_members == 5
    assert result.flows == [
        aff.Flow("noodles", "salon", 5, 5, 50, 50, 15000),
        aff.Flow("noodles", "tea", 5, 5, 50, 50, 7500),
        aff.Flow("salon", "tea", 5, 5, 50, 50, 16000),
        aff.Flow("tea", "noodles", 6, 8, 400, 800, 18333),
    ]
    assert result.suppressed_flows == 2  # tea → salon (2), bakery → salon (4)
    assert result.shared == [
        aff.Shared("noodles", "tea", 11),
        aff.Shared("noodles", "salon", 5),
        aff.Shared("salon", "tea", 5),
    ]


def test_one_way_flows_suggest_the_acquirers_related_offer_ranked_by_lift(engine):
    with engine.connect() as conn:
        suggestions = aff.affinity(conn, NOW).suggestions
    r = aff.RELATED_PRODUCT_OFFER
    assert suggestions == [
        aff.Suggestion(r, "noodles", "tea", 18333, 6),
        aff.Suggestion(r, "tea", "salon", 16000, 5),
        aff.Suggestion(r, "salon", "noodles", 15000, 5),
    ]


def test_a_higher_k_leaves_suppressed_flows_out_of_every_figure(engine):
    with engine.connect() as conn:
        result = aff.affinity(conn, NOW, min_members=6)
    # Only tea → noodles is left; it is then the whole district, exactly as expected (10000).
    assert result.flows == [aff.Flow("tea", "noodles", 6, 8, 400, 800, 10000)]
    assert result.shared == [aff.Shared("noodles", "tea", 6)]
    assert result.suggestions == [
        aff.Suggestion(aff.RELATED_PRODUCT_OFFER, "noodles", "tea", 10000, 6)
    ]
    assert result.suppressed_flows == 5


def test_a_shorter_window_counts_only_its_own_records(engine):
    with engine.connect() as conn:
        result = aff.affinity(conn, NOW, days=1, min_members=3)
    # The last day: every flow but t1's second visit to noodles (29 days 23 hours ago).
    assert [(f.issuer_id, f.acquirer_id, f.members, f.redemptions) for f in result.flows] == [
        ("bakery", "salon", 4, 4),
        ("noodles", "salon", 5, 5),
        ("noodles", "tea", 5, 5),
        ("salon", "tea", 5, 5),
        ("tea", "noodles", 6, 7),
    ]
    assert result.suppressed_flows == 1  # tea → salon


def test_mutual_strong_flows_suggest_a_joint_offer(db_url):
    engine = make_engine(db_url)
    upgrade(engine)
    with engine.begin() as conn:
        for i in range(5):
            redeem(conn, "tea", "noodles", f"t{i}")
            redeem(conn, "noodles", "tea", f"n{i}")
        redeem(conn, "noodles", "tea", "n5")
        with_both = aff.affinity(conn, NOW)
    engine.dispose()
    # Two shops: each flow is exactly what independence predicts.
    assert [f.lift_bp for f in with_both.flows] == [10000, 10000]
    assert with_both.shared == [aff.Shared("noodles", "tea", 11)]
    assert with_both.suggestions == [aff.Suggestion(aff.JOINT_OFFER, "noodles", "tea", 10000, 11)]


@pytest.mark.parametrize(
    ("days", "k", "reason"),
    [
        (367, 0, "DAYS_OUT_OF_RANGE"),
        (-1, 0, "DAYS_OUT_OF_RANGE"),
        (0, 2, "MIN_MEMBERS_OUT_OF_RANGE"),
        (0, 1001, "MIN_MEMBERS_OUT_OF_RANGE"),
        (0, -5, "MIN_MEMBERS_OUT_OF_RANGE"),
    ],
)
def test_a_window_or_k_out_of_range_is_refused(days, k, reason):
    with pytest.raises(InvalidArgument) as refused:
        aff.checked(days, k)
    assert refused.value.reason == reason


def test_no_records_no_flows(db_url):
    engine = make_engine(db_url)
    upgrade(engine)
    with engine.connect() as conn:
        result = aff.affinity(conn, NOW)
    engine.dispose()
    assert (result.flows, result.shared, result.suggestions, result.suppressed_flows) == (
        [],
        [],
        [],
        0,
    )


# -- through the operator's RPC and command line ------------------------------------------------


@pytest_asyncio.fixture
async def exchange(new_database, clock):  # type: ignore[no-untyped-def]
    """An exchange server over the district's records, and the operator's key and client."""
    # The real time: the command line signs with it, and the exchange refuses stale messages.
    clock.now = datetime.now(UTC).replace(microsecond=0)
    exchange_key, operator_key = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    engine = make_engine(new_database("exchange"))
    upgrade(engine)
    with engine.begin() as conn:
        district(conn, clock.now)
    app = ExchangeApp(
        engine,
        exchange_key,
        operator_key.public_key(),
        settings=Settings(issuer_timeout=3.0),
        clock=clock,
        recovery_interval=None,
    )
    target = f"127.0.0.1:{await app.start()}"
    operator = OperatorClient(target, Signer(OPERATOR_ID, operator_key, clock), app.public_key)
    try:
        yield {"app": app, "target": target, "operator": operator, "key": operator_key}
    finally:
        await operator.close()
        await app.stop(1)
        engine.dispose()


async def test_the_operator_reads_the_districts_affinity_over_its_rpc(exchange, clock):
    receipt = await exchange["operator"].affinity()
    assert receipt.window_end.ToDatetime(UTC) == clock.now
    assert receipt.window_start.ToDatetime(UTC) == clock.now - timedelta(days=30)
    assert (receipt.min_members, receipt.suppressed_flows) == (5, 2)
    assert [
        (f.issuer_id, f.acquirer_id, f.members, f.redemptions, f.points, f.value_fen, f.lift_bp)
        for f in receipt.flows
    ] == [
        ("noodles", "salon", 5, 5, 50, 50, 15000),
        ("noodles", "tea", 5, 5, 50, 50, 7500),
        ("salon", "tea", 5, 5, 50, 50, 16000),
        ("tea", "noodles", 6, 8, 400, 800, 18333),
    ]
    assert [(s.first_merchant_id, s.second_merchant_id, s.members) for s in receipt.shared] == [
        ("noodles", "tea", 11),
        ("noodles", "salon", 5),
        ("salon", "tea", 5),
    ]
    related = xpb.PARTNERSHIP_KIND_RELATED_PRODUCT_OFFER
    assert [
        (s.kind, s.offering_merchant_id, s.audience_merchant_id, s.score_bp, s.members)
        for s in receipt.suggestions
    ] == [
        (related, "noodles", "tea", 18333, 6),
        (related, "tea", "salon", 16000, 5),
        (related, "salon", "noodles", 15000, 5),
    ]
    higher_k = await exchange["operator"].affinity(days=30, min_members=6)
    assert [(f.issuer_id, f.acquirer_id) for f in higher_k.flows] == [("tea", "noodles")]


@pytest.mark.parametrize(
    ("days", "k", "reason"),
    [
        (367, 5, "DAYS_OUT_OF_RANGE"),
        (-3, 5, "DAYS_OUT_OF_RANGE"),
        (30, 2, "MIN_MEMBERS_OUT_OF_RANGE"),
    ],
)
async def test_a_bad_window_or_k_is_invalid_argument_with_its_reason(exchange, days, k, reason):
    signer = Signer(OPERATOR_ID, exchange["key"], exchange["operator"].signer.clock)
    request = signer.seal(
        xpb.AffinityCommand(days=days, min_members=k), audience=EXCHANGE_ID, request_id="op-bad"
    )
    async with grpc.aio.insecure_channel(exchange["target"]) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await OperatorServiceStub(channel).GetAffinity(
                xpb.GetAffinityRequest(envelope=request), timeout=10
            )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    info = error_info_of(refused.value)
    assert info is not None and info.reason == reason


def _pem_files(tmp_path, exchange) -> list[str]:  # type: ignore[no-untyped-def]
    key = tmp_path / "operator.pem"
    key.write_bytes(
        exchange["key"].private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pub = tmp_path / "exchange.pub.pem"
    pub.write_bytes(
        exchange["app"].public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return ["--exchange", exchange["target"], "--exchange-key", str(pub), "--key", str(key)]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coalition_cli.main", "operator", "affinity", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_coalition_operator_affinity_prints_the_table_and_json(tmp_path, clock, exchange):
    flags = _pem_files(tmp_path, exchange)
    done = await asyncio.to_thread(cli, *flags, "--json")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["min_members"] == 5 and answer["suppressed_flows"] == 2
    assert answer["suggestions"][0] == {
        "kind": "related_product_offer",
        "offering_merchant_id": "noodles",
        "audience_merchant_id": "tea",
        "score_bp": 18333,
        "members": 6,
    }
    assert answer["flows"][-1] == {
        "issuer_id": "tea",
        "acquirer_id": "noodles",
        "members": 6,
        "redemptions": 8,
        "points": 400,
        "value_fen": 800,
        "lift_bp": 18333,
    }
    table = await asyncio.to_thread(cli, *flags, "--days", "1", "--min-members", "3")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert "flows of fewer than 3 members left out: 1" in lines[0]
    assert next(line.split()[:6] for line in lines if line.split()[:2] == ["bakery", "salon"]) == [
        "bakery",
        "salon",
        "4",
        "4",
        "40",
        "40",
    ]
    refused = await asyncio.to_thread(cli, *flags, "--min-members", "2")
    assert refused.returncode == 1
    assert "MIN_MEMBERS_OUT_OF_RANGE" in refused.stderr


async def _ask_signed_by(target: str, signer: Signer) -> grpc.aio.AioRpcError:
    request = signer.seal(xpb.AffinityCommand(), audience=EXCHANGE_ID, request_id="op-who")
    async with grpc.aio.insecure_channel(target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await OperatorServiceStub(channel).GetAffinity(
                xpb.GetAffinityRequest(envelope=request), timeout=10
            )
    return refused.value


async def test_only_the_operator_key_may_ask(exchange, clock):
    merchant = await _ask_signed_by(
        exchange["target"], Signer("tea", Ed25519PrivateKey.generate(), clock)
    )
    assert merchant.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_info_of(merchant).reason == "SIGNER_NOT_ALLOWED"  # type: ignore[union-attr]
    forged = await _ask_signed_by(
        exchange["target"], Signer(OPERATOR_ID, Ed25519PrivateKey.generate(), clock)
    )
    assert forged.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_info_of(forged).reason == "UNKNOWN_KEY"  # type: ignore[union-attr]
