"""The nodes' signed breakage of a settlement day (IssuerService GetBreakage) through the
exchange: per rate version, by the Asia/Shanghai day of the expiry, signed by the node and
logged, refused to anyone but the exchange; and the operator's breakage policy per merchant."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization

from coalition.envelope.v1.envelope_pb2 import SignedEnvelope
from coalition.issuer.v1 import issuer_pb2 as ipb
from coalition_kernel.db import run_in_transaction
from coalition_kernel.envelope import EXCHANGE_ID, Signer, signed_bytes
from coalition_kernel.errors import CoalitionError, InvalidArgument, Unavailable
from coalition_kernel.keys import key_id
from exchange import audit, registry
from exchange.schema import merchants
from exchange.statements import fetch_breakage
from merchant_node.ledger.commands import Earn, Enroll
from merchant_node.ledger.earning import EarnPolicy
from merchant_node.ledger.service import NodeLedger
from tests.exchange.conftest import Coalition
from tests.exchange.test_net_debit_cap import exchange_key_file, run_cli
from tests.exchange.test_statement import node_state, refused, seal_for, to_node

DAY = "2026-01-06"  # the fake clock starts on 2026-01-05 at 17:00 in Asia/Shanghai
Code = grpc.StatusCode


def earn_expiring(ledger: NodeLedger, member: str, order: str, points: int) -> None:
    """`points` (1 point a yuan) for `member`, living one day from the clock's now."""
    ledger.enroll(Enroll(f"enroll-{member}", member))  # a retry when enrolled: no change
    kept, ledger.policy = ledger.policy, EarnPolicy(points_ttl_days=1)
    try:
        ledger.earn(Earn(f"earn-{order}", member, order, points * 100, "POS", None))
    finally:
        ledger.policy = kept


def breakage_logged(c: Coalition, merchant_id: str) -> list[str]:
    """The outcomes of the breakage calls the exchange sent `merchant_id` and got back."""
    with c.exchange.engine.connect() as conn:
        entries = audit.read(conn, peer_id=merchant_id)
    return [
        f"{e.direction}:{e.outcome}"
        for e in entries
        if e.envelope
        and SignedEnvelope.FromString(e.envelope).payload_type.startswith("coalition.issuer.v1.Br")
    ]


def public_key(c: Coalition, merchant_id: str):  # type: ignore[no-untyped-def]
    return c[merchant_id].key.public_key()


# -- the node's word, through the exchange ---------------------------------------------------


async def test_a_nodes_breakage_of_a_day_comes_signed_per_rate_version(coalition):
    c = coalition
    tea = c["tea"].ledger
    earn_expiring(tea, "m1", "a", 1000)  # rate version 1: 1 fen a point
    tea.configure_rate("1", "1/3")  # version 2: a third of a fen a point
    earn_expiring(tea, "m2", "b", 500)
    c.clock.advance(days=1, seconds=1)  # 2026-01-06 17:00:01 in Shanghai
    assert tea.run_expiry().points_expired == 1500
    earn_expiring(tea, "m2", "c", 70)
    c.clock.advance(days=1, seconds=1)  # the next day
    assert tea.run_expiry().points_expired == 70

    stated = await c.exchange.redemptions.breakage("tea", DAY)
    # Each line's value rounded down on its own: 500 / 3 = 166.67 → 166.
    assert (stated.issuer_id, stated.points, stated.value_fen) == ("tea", 1500, 1166)
    envelope = SignedEnvelope.FromString(stated.envelope)
    public_key(c, "tea").verify(
        envelope.signature, signed_bytes(envelope.payload_type, envelope.payload)
    )
    receipt = ipb.BreakageReceipt.FromString(envelope.payload)
    assert (envelope.signer_id, receipt.header.audience) == ("tea", EXCHANGE_ID)
    assert receipt.settlement_period == DAY
    assert [(x.rate_version, x.points, x.value_fen) for x in receipt.lines] == [
        (1, 1000, 1000),
        (2, 500, 166),
    ]
    following = await c.exchange.redemptions.breakage("tea", "2026-01-07")
    assert (following.points, following.value_fen) == (70, 23)
    before = await c.exchange.redemptions.breakage("tea", "2026-01-05")
    assert (before.points, before.value_fen) == (0, 0)
    none = ipb.BreakageReceipt.FromString(SignedEnvelope.FromString(before.envelope).payload)
    assert list(none.lines) == []
    assert (await c.exchange.redemptions.breakage("noodles", DAY)).points == 0
    # Every call was signed by the node, verified and logged; the chain is intact.
    assert breakage_logged(c, "tea") == ["out:sent", "in:accepted"] * 3
    assert run_in_transaction(c.exchange.engine, audit.verify_chain) == []


async def test_breakage_counts_by_the_shanghai_day_the_points_expired_on(coalition):
    c = coalition
    tea = c["tea"].ledger
    c.clock.now = datetime(2026, 1, 5, 15, 59, 58, tzinfo=UTC)  # 23:59:58 in Shanghai
    earn_expiring(tea, "m1", "late", 10)
    c.clock.now = datetime(2026, 1, 5, 16, 0, 1, tzinfo=UTC)  # 00:00:01, the next day
    earn_expiring(tea, "m1", "early", 20)
    c.clock.now = datetime(2026, 1, 6, 15, 59, 59, tzinfo=UTC)  # 2026-01-06 23:59:59
    assert tea.run_expiry().points_expired == 10
    c.clock.now = datetime(2026, 1, 6, 16, 0, 1, tzinfo=UTC)  # 2026-01-07 00:00:01
    assert tea.run_expiry().points_expired == 20
    assert (await c.exchange.redemptions.breakage("tea", DAY)).points == 10
    assert (await c.exchange.redemptions.breakage("tea", "2026-01-07")).points == 20


# -- refusals --------------------------------------------------------------------------------


async def test_a_breakage_request_not_signed_by_the_exchange_is_refused_and_changes_nothing(
    coalition,
):
    c = coalition
    earn_expiring(c["tea"].ledger, "m1", "a", 10)
    c.clock.advance(days=1, seconds=1)
    c["tea"].ledger.run_expiry()
    command = ipb.BreakageCommand(settlement_period=DAY)
    noodles = Signer("noodles", c["noodles"].key, c.clock)
    claims_exchange = seal_for(c, "tea", command, Signer(EXCHANGE_ID, c["noodles"].key, c.clock))
    forged = SignedEnvelope()
    forged.CopyFrom(claims_exchange)
    forged.key_id = key_id(c.exchange.public_key)
    before = node_state(c, "tea")
    for envelope, code, reason in (
        (seal_for(c, "tea", command, noodles), Code.PERMISSION_DENIED, "SIGNER_NOT_ALLOWED"),
        (claims_exchange, Code.UNAUTHENTICATED, "UNKNOWN_KEY"),
        (forged, Code.UNAUTHENTICATED, "BAD_SIGNATURE"),
        (seal_for(c, "salon", command), Code.PERMISSION_DENIED, "WRONG_AUDIENCE"),
    ):
        assert await refused(to_node(c, "tea", "GetBreakage", envelope)) == (code, reason)
    assert node_state(c, "tea") == before
    answer = await to_node(c, "tea", "GetBreakage", seal_for(c, "tea", command))
    receipt = ipb.BreakageReceipt.FromString(answer.envelope.payload)
    assert (answer.envelope.signer_id, receipt.header.audience) == ("tea", EXCHANGE_ID)
    assert [(x.points, x.value_fen) for x in receipt.lines] == [(10, 10)]


@pytest.mark.parametrize(
    ("period", "reason"),
    [
        ("", "MISSING_FIELD"),
        ("2026-02-30", "MALFORMED_PERIOD"),
        ("2026-1-6", "MALFORMED_PERIOD"),
        ("2026-W02", "MALFORMED_PERIOD"),
        ("２０２６-01-06", "MALFORMED_PERIOD"),
    ],
)
async def test_a_bad_breakage_period_is_invalid_argument_at_the_node_and_the_exchange(
    coalition, period, reason
):
    c = coalition
    command = ipb.BreakageCommand(settlement_period=period)
    got = await refused(to_node(c, "tea", "GetBreakage", seal_for(c, "tea", command)))
    assert got == (Code.INVALID_ARGUMENT, reason)
    with pytest.raises(InvalidArgument) as err:
        await c.exchange.redemptions.breakage("tea", period)
    assert err.value.reason == reason
    assert breakage_logged(c, "tea") == []  # the exchange sent nothing


@pytest.mark.parametrize(
    "lie",
    ["another_period", "no_points", "negative_value", "a_version_twice"],
)
async def test_an_answer_that_does_not_answer_the_question_is_issuer_answer_invalid(coalition, lie):
    c = coalition
    earn_expiring(c["tea"].ledger, "m1", "a", 10)
    c.clock.advance(days=1, seconds=1)
    c["tea"].ledger.run_expiry()

    async def lying(merchant, method, command, request_id):  # type: ignore[no-untyped-def]
        receipt, answer = await c.exchange.redemptions._ask(merchant, method, command, request_id)
        if lie == "another_period":
            receipt.settlement_period = "2026-01-07"
        elif lie == "no_points":
            receipt.lines[0].points = 0
        elif lie == "negative_value":
            receipt.lines[0].value_fen = -1
        else:
            receipt.lines.append(receipt.lines[0])
        return receipt, answer

    with c.exchange.engine.connect() as conn:
        tea = registry.load(conn, "tea")
    assert (await fetch_breakage(c.exchange.redemptions._ask, tea, DAY)).points == 10
    with pytest.raises(Unavailable) as err:
        await fetch_breakage(lying, tea, DAY)
    assert err.value.reason == "ISSUER_ANSWER_INVALID"


# -- the policy ------------------------------------------------------------------------------


async def test_the_operator_sets_each_merchants_breakage_share_within_0_to_10000_bps(coalition):
    operator = coalition.operator
    listed = {m.merchant_id: m for m in await operator.list()}
    assert {m.breakage_operator_bps for m in listed.values()} == {0}  # the issuer keeps it
    assert (
        await operator.set_terms("salon", breakage_operator_bps=3000)
    ).breakage_operator_bps == 3000
    # A command without the field (an older client) keeps the share.
    kept = await operator.set_terms("salon", fee_bps=50)
    assert (kept.fee_bps, kept.breakage_operator_bps) == (50, 3000)
    for bad in (-1, 10_001, 2**31 - 1):
        with pytest.raises(CoalitionError) as err:
            await operator.set_terms("salon", breakage_operator_bps=bad)
        assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert err.value.reason == "BREAKAGE_SHARE_OUT_OF_RANGE"
    for edge in (10_000, 0):
        assert (
            await operator.set_terms("noodles", breakage_operator_bps=edge)
        ).breakage_operator_bps == edge
    with pytest.raises(CoalitionError) as err:
        await operator.set_terms("nobody", breakage_operator_bps=10)
    assert err.value.reason == "MERCHANT_NOT_FOUND"
    listed = {m.merchant_id: m for m in await operator.list()}
    assert {k: m.breakage_operator_bps for k, m in listed.items()} == {
        "noodles": 0,
        "salon": 3000,
        "tea": 0,
    }
    # The database holds the range too, whoever writes.
    with pytest.raises(sa.exc.IntegrityError), coalition.exchange.engine.begin() as conn:
        conn.execute(sa.update(merchants).values(breakage_operator_bps=10_001))


async def test_the_operator_command_line_sets_and_lists_the_breakage_share(coalition, tmp_path):
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

    shared = await run_cli("operator", "set-terms", *op, "salon", "--breakage-operator-bps", "3000")
    assert shared.returncode == 0, shared.stderr
    assert "breakage to operator 3000 bps" in shared.stdout
    listed = await run_cli("operator", "list", *op)
    assert listed.stdout.count("breakage to operator 0 bps") == 2
    assert "breakage to operator 3000 bps" in listed.stdout
    bad = await run_cli("operator", "set-terms", *op, "salon", "--breakage-operator-bps", "10001")
    assert bad.returncode == 1 and "BREAKAGE_SHARE_OUT_OF_RANGE" in bad.stderr
