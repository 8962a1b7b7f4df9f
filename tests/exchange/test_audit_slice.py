"""A merchant fetches its own slice of the exchange's audit log and checks it: hashes and the
signatures of its own and the exchange's messages. Tampering at the exchange shows."""

from __future__ import annotations

import sqlalchemy as sa

from coalition_kernel.envelope import Signer
from exchange.schema import audit_log
from merchant_node.acquirer import ExchangeLink
from merchant_node.audit_slice import fetch_and_verify


async def slice_report(coalition, merchant_id: str):  # type: ignore[no-untyped-def]
    node = coalition[merchant_id]
    link = ExchangeLink(
        coalition.exchange_target,
        Signer(merchant_id, node.key, coalition.clock),
        coalition.exchange.public_key,
    )
    try:
        return await fetch_and_verify(
            link, node.key.public_key(), coalition.exchange.public_key, page=7
        )
    finally:
        await link.close()


async def redeem_across(coalition) -> None:  # type: ignore[no-untyped-def]
    tea, noodles = coalition["tea"], coalition["noodles"]
    await tea.client.enroll_member("m1")
    await tea.client.earn("m1", "seed", 10_000)
    code = tea.wallet_code("m1", coalition.clock, "noodles", 40)
    auth = await noodles.client.authorize_cross("tea", "m1", "o1", points=40, consent_code=code)
    await noodles.client.capture_cross(auth.authorization_id)


async def test_each_merchant_verifies_its_slice_page_by_page(coalition):
    await redeem_across(coalition)
    for merchant_id in ("tea", "noodles"):
        report = await slice_report(coalition, merchant_id)
        assert report.problems == []
        assert report.entries > 2  # more than one page
        assert report.signatures_checked >= report.entries - 2


async def test_an_entry_altered_at_the_exchange_fails_the_merchants_check(coalition):
    await redeem_across(coalition)
    engine = coalition.exchange.engine
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("DROP TRIGGER audit_log_append_only_update")
        else:
            conn.exec_driver_sql("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only")
        first = conn.execute(
            sa.select(audit_log.c.sequence)
            .where(audit_log.c.peer_id == "noodles")
            .order_by(audit_log.c.sequence)
            .limit(1)
        ).scalar_one()
        conn.execute(
            sa.update(audit_log).where(audit_log.c.sequence == first).values(outcome="refused:NOPE")
        )
    report = await slice_report(coalition, "noodles")
    assert any(p.startswith(f"entry {first}: its hash") for p in report.problems)
