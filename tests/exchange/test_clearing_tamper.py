"""An insider alters one clearing record after its batch closed (dropping the append-only guard
first): `coalition exchange audit verify` fails naming the record; the merchants it involves are
told which record differs from their books; the others that the batch changed after close."""

from __future__ import annotations

import sqlalchemy as sa

from exchange.runtime import ExchangeConfig
from exchange.schema import clearing_records
from tests.exchange.test_net_debit_cap import run_cli
from tests.exchange.test_settlement_proof import a_day_of_redemptions, check, fetch


def alter_record(engine: sa.Engine, issuer: str, acquirer: str, points: int) -> sa.Row:
    """As an insider would: drop the guard trigger, change the record's points and value."""
    c = clearing_records.c
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("DROP TRIGGER clearing_records_append_only ON clearing_records")
        else:
            conn.exec_driver_sql("DROP TRIGGER clearing_records_append_only_update")
        record = conn.execute(
            sa.select(clearing_records).where(
                c.issuer_id == issuer, c.acquirer_id == acquirer, c.points == points
            )
        ).one()
        conn.execute(
            sa.update(clearing_records)
            .where(c.clearing_id == record.clearing_id)
            .values(points=points - 100, value_fen=record.value_fen - 100)
        )
    return record


async def audit_verify(coalition, tmp_path):  # type: ignore[no-untyped-def]
    url = coalition.exchange.engine.url.render_as_string(hide_password=False)
    config = tmp_path / "exchange.toml"
    ExchangeConfig(database_url=url).save(config)
    return await run_cli("exchange", "audit", "verify", "--config", str(config))


async def test_an_untouched_exchange_audits_clean_batches_and_records(coalition, tmp_path):
    await a_day_of_redemptions(coalition)
    done = await audit_verify(coalition, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "clearing intact: 1 closed settlement batches" in done.stdout
    assert "4 clearing records against their signed envelopes" in done.stdout


async def test_an_altered_clearing_record_is_named_to_the_operator_and_its_merchants(
    coalition, tmp_path
):
    await a_day_of_redemptions(coalition)
    record = alter_record(coalition.exchange.engine, "tea", "noodles", 300)
    auth = record.authorization_id

    done = await audit_verify(coalition, tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "clearing BROKEN" in done.stdout
    assert "its records no longer hash to the committed root" in done.stdout
    named = [line for line in done.stdout.splitlines() if record.clearing_id in line]
    assert named and any(
        "points is 200 here, 300 in the issuer's signed answer" in line for line in named
    )
    assert all(auth in line for line in named)
    assert any(
        "no longer hash to the leaf hash written when it was captured" in line for line in named
    )

    for involved, side in (("tea", "issuer"), ("noodles", "acquirer")):
        problems = check(coalition, involved, await fetch(coalition, involved)).problems
        assert any(p.startswith("the batch's records no longer hash") for p in problems)
        assert (
            f"record {auth} differs from this node's books ({involved} as {side}): "
            "points is 200 in the batch, 300 here"
        ) in problems
    salon = check(coalition, "salon", await fetch(coalition, "salon")).problems
    assert salon[0].startswith("the batch's records no longer hash to its committed root")
    assert "changed after it closed" in salon[0]
    assert any("none of this merchant's" in p and "another merchant's" in p for p in salon)
    assert not any(auth in p for p in salon)
