"""A merchant checks its share of a closed settlement batch: the exchange's signed proof against
the batch's commitment root, its own books and its position; online, offline from a saved
file, and from the command line. A real exchange and real nodes on loopback."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization

from coalition.envelope.v1.envelope_pb2 import SignedEnvelope
from coalition.exchange.v1 import exchange_pb2 as xpb
from coalition_kernel.envelope import Signer
from coalition_kernel.errors import CoalitionError
from exchange.schema import settlement_batches, settlement_positions
from merchant_node import settlement_check
from merchant_node.acquirer import ExchangeLink
from merchant_node.config import NodeConfig
from merchant_node.ledger.schema import cross_redemptions
from settlement.report import SettlementReport
from settlement.settle import settle_period
from tests.exchange.test_cross_redemption import member_with_points
from tests.exchange.test_net_debit_cap import PERIOD, authorize, exchange_key_file, run_cli


async def a_day_of_redemptions(coalition) -> SettlementReport:  # type: ignore[no-untyped-def]
    """Tea's points spent at noodles (twice) and salon, salon's at tea, one void; then the
    period's batch, closed with the root and count settlement computes."""
    await member_with_points(coalition)
    await member_with_points(coalition, "m2", at="salon")
    for points, issuer, member, at in [
        (300, "tea", "m1", "noodles"),
        (120, "tea", "m1", "noodles"),
        (70, "tea", "m1", "salon"),
        (200, "salon", "m2", "tea"),
    ]:
        auth = await authorize(coalition, points, issuer=issuer, member=member, at=at, order="o")
        await coalition[at].client.capture_cross(auth.authorization_id)
    voided = await authorize(coalition, 50, order="v")
    await coalition["noodles"].client.void_cross(voided.authorization_id)
    report = settle_period(coalition.exchange.engine, PERIOD)
    assert report.record_count == 4
    write_batch(coalition, report, "closed")
    return report


def write_batch(coalition, report: SettlementReport, status: str) -> None:  # type: ignore[no-untyped-def]
    now = coalition.clock()
    with coalition.exchange.engine.begin() as conn:
        conn.execute(
            sa.insert(settlement_batches).values(
                batch_id=f"sb-{report.period}",
                period=report.period,
                first_day=report.period,
                last_day=report.period,
                status=status,
                record_count=report.record_count,
                commitment_root=bytes.fromhex(report.commitment_root),
                opened_at=now,
                updated_at=now,
            )
        )


def store_positions(coalition, report: SettlementReport, **changed: int) -> None:  # type: ignore[no-untyped-def]
    """The batch's positions, as netting stores them; `changed` overrides a party's net_fen."""
    with coalition.exchange.engine.begin() as conn:
        conn.execute(
            sa.insert(settlement_positions),
            [
                dict(
                    batch_id=f"sb-{report.period}",
                    party=line.party,
                    payable_fen=line.payable_fen,
                    receivable_fen=line.receivable_fen,
                    fee_fen=line.fee_fen,
                    net_fen=changed.get(line.party, line.net_fen),
                )
                for line in report.lines
            ],
        )


def link_of(coalition, merchant_id: str) -> ExchangeLink:  # type: ignore[no-untyped-def]
    node = coalition[merchant_id]
    signer = Signer(merchant_id, node.key, coalition.clock)
    return ExchangeLink(coalition.exchange_target, signer, coalition.exchange.public_key)


async def fetch(coalition, merchant_id: str, period: str = PERIOD) -> SignedEnvelope:  # type: ignore[no-untyped-def]
    link = link_of(coalition, merchant_id)
    try:
        return await settlement_check.fetch_proof(link, period)
    finally:
        await link.close()


def check(coalition, merchant_id: str, envelope: SignedEnvelope):  # type: ignore[no-untyped-def]
    return settlement_check.verify_proof(
        envelope,
        merchant_id,
        PERIOD,
        coalition.exchange.public_key,
        coalition[merchant_id].ledger.engine,
    )


def receipt_of(envelope: SignedEnvelope) -> xpb.SettlementProofReceipt:
    return xpb.SettlementProofReceipt.FromString(envelope.payload)


async def test_every_merchant_verifies_its_share_of_a_closed_batch(coalition):
    report = await a_day_of_redemptions(coalition)
    nets = {line.party: line.net_fen for line in report.lines}
    for merchant_id, entries in (("tea", 4), ("noodles", 2), ("salon", 2)):
        result = check(coalition, merchant_id, await fetch(coalition, merchant_id))
        assert result.problems == [], merchant_id
        assert (result.entries, result.net_fen, result.status) == (
            entries,
            nets[merchant_id],
            "CLOSED",
        )
        assert result.commitment_root.hex() == report.commitment_root
    # Tea pays 490 of its points' value and receives 200 - 2 (fee) for salon's: nets -292.
    assert nets["tea"] == -292


async def test_the_position_is_the_one_stored_at_netting_and_a_wrong_one_is_caught(coalition):
    report = await a_day_of_redemptions(coalition)
    store_positions(coalition, report, noodles=999)
    receipt = receipt_of(await fetch(coalition, "tea"))
    assert (receipt.position.payable_fen, receipt.position.receivable_fen) == (490, 200)
    assert check(coalition, "tea", await fetch(coalition, "tea")).problems == []
    problems = check(coalition, "noodles", await fetch(coalition, "noodles")).problems
    assert problems == ["entries net to 416 fen, the report says 999"]


async def test_a_proof_saved_to_a_file_verifies_later_without_the_exchange(coalition, tmp_path):
    await a_day_of_redemptions(coalition)
    path = tmp_path / "tea-proof.pb"
    settlement_check.save_proof(path, await fetch(coalition, "tea"))
    coalition.clock.advance(days=400)  # long after: the proof is evidence, not a live message
    await coalition.exchange.stop(0)  # nothing more to ask it
    result = settlement_check.load_and_verify(
        path, "tea", PERIOD, coalition.exchange.public_key, coalition["tea"].ledger.engine
    )
    assert (result.problems, result.entries) == ([], 4)


async def test_a_tampered_proof_file_is_not_the_exchanges_word(coalition, tmp_path):
    await a_day_of_redemptions(coalition)
    envelope = await fetch(coalition, "tea")
    receipt = receipt_of(envelope)
    receipt.entries[0].entry.value_fen += 1
    forged = SignedEnvelope()
    forged.CopyFrom(envelope)
    forged.payload = receipt.SerializeToString()
    path = tmp_path / "forged.pb"
    settlement_check.save_proof(path, forged)
    result = settlement_check.load_and_verify(
        path, "tea", PERIOD, coalition.exchange.public_key, coalition["tea"].ledger.engine
    )
    assert len(result.problems) == 1 and "BAD_SIGNATURE" in result.problems[0]
    (tmp_path / "junk.pb").write_bytes(b"\xff\xff\xff")
    junk = settlement_check.load_and_verify(
        tmp_path / "junk.pb",
        "tea",
        PERIOD,
        coalition.exchange.public_key,
        coalition["tea"].ledger.engine,
    )
    assert junk.problems and "junk.pb" in junk.problems[0]


async def test_an_entry_the_exchange_altered_fails_its_proof_and_the_books(coalition):
    """An exchange that signs a lie: the altered entry is not in the committed batch, disagrees
    with the acquirer's books, and no longer nets to the position."""
    await a_day_of_redemptions(coalition)
    receipt = receipt_of(await fetch(coalition, "noodles"))
    entry = receipt.entries[0].entry
    entry.value_fen += 10
    receipt.ClearField("header")
    lie = coalition.exchange.signer.seal(receipt, audience="noodles", request_id="lie-1")
    problems = check(coalition, "noodles", lie).problems
    assert f"entry {entry.authorization_id} is not in the batch as given" in problems
    assert any("value_fen" in p and entry.authorization_id in p for p in problems)
    assert any(p.startswith("entries net to") for p in problems)
    assert any(p.startswith("entries give receivable_fen") for p in problems)


async def test_a_commitment_root_changed_after_close_fails_every_entry(coalition):
    await a_day_of_redemptions(coalition)
    with coalition.exchange.engine.begin() as conn:
        conn.execute(sa.update(settlement_batches).values(commitment_root=b"\x00" * 32))
    problems = check(coalition, "tea", await fetch(coalition, "tea")).problems
    assert problems[0].startswith("the batch's records no longer hash to its committed root")
    assert "all 4 entries of this merchant" in problems[0]
    assert problems[1:] == [
        "none of this merchant's 4 entries differs from its own books: the record that changed "
        "is another merchant's; ask the operator (`coalition exchange audit verify` names it)"
    ]


async def test_a_record_missing_from_the_nodes_books_is_reported(coalition):
    await a_day_of_redemptions(coalition)
    noodles = coalition["noodles"]
    with noodles.ledger.engine.begin() as conn:
        lost = conn.execute(
            sa.select(cross_redemptions.c.authorization_id).where(
                cross_redemptions.c.status == "captured"
            )
        ).scalar()
        conn.execute(
            sa.delete(cross_redemptions).where(cross_redemptions.c.authorization_id == lost)
        )
    problems = check(coalition, "noodles", await fetch(coalition, "noodles")).problems
    assert problems == [
        f"noodles as acquirer: {lost} cleared by the exchange but not booked by the node"
    ]


@pytest.mark.parametrize(
    ("period", "code", "reason"),
    [
        ("2025-12-31", grpc.StatusCode.NOT_FOUND, "BATCH_NOT_FOUND"),
        ("2026-01-06", grpc.StatusCode.FAILED_PRECONDITION, "BATCH_OPEN"),
        ("2026-02-30", grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED_PERIOD"),
        ("", grpc.StatusCode.INVALID_ARGUMENT, "MISSING_FIELD"),
    ],
)
async def test_only_a_closed_batch_has_a_proof(coalition, period, code, reason):
    await a_day_of_redemptions(coalition)
    with coalition.exchange.engine.begin() as conn:
        conn.execute(
            sa.insert(settlement_batches).values(
                batch_id="sb-2026-01-06",
                period="2026-01-06",
                first_day="2026-01-06",
                last_day="2026-01-06",
                status="open",
                opened_at=coalition.clock(),
                updated_at=coalition.clock(),
            )
        )
    with pytest.raises(CoalitionError) as err:
        await fetch(coalition, "tea", period)
    assert (err.value.code, err.value.reason) == (code, reason)


async def test_the_command_line_fetches_saves_and_rechecks_a_proof(coalition, tmp_path):
    await a_day_of_redemptions(coalition)
    coalition.clock.now = datetime.now(UTC)  # the CLI signs with the real clock
    tea = coalition["tea"]
    key_file = tmp_path / "tea.pem"
    key_file.write_bytes(
        tea.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    config = tmp_path / "node.toml"
    NodeConfig(
        merchant_id="tea",
        database_url=tea.ledger.engine.url.render_as_string(hide_password=False),
        private_key_file=str(key_file),
        exchange_endpoint=coalition.exchange_target,
        exchange_public_key_file=str(exchange_key_file(coalition, tmp_path / "exchange.pem")),
    ).save(config)
    proof = tmp_path / "proof.pb"
    verify = ["settle", "verify", "--config", str(config), "--period", PERIOD]

    fetched = await run_cli(*verify, "--save", str(proof))
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    assert "tea: 4 entries, net -292 fen" in fetched.stdout and "verified" in fetched.stdout

    with tea.ledger.engine.begin() as conn:  # the books lose a receivable
        conn.execute(sa.delete(cross_redemptions))
    offline = await run_cli(*verify, "--file", str(proof))
    assert offline.returncode == 1
    assert "FAILED: 1 problem(s)" in offline.stdout
    assert "tea as acquirer" in offline.stdout and "not booked by the node" in offline.stdout

    missing = await run_cli(*verify[:-1], "2025-12-31")
    assert missing.returncode == 1 and "BATCH_NOT_FOUND" in missing.stderr
