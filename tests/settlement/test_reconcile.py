"""Reconciliation finds every injected mismatch, on either side, and nothing else."""

from __future__ import annotations

import dataclasses

from hypothesis import assume, given
from hypothesis import strategies as st

from settlement.reconcile import (
    Mismatch,
    NodeStatement,
    PostedHold,
    Receivable,
    reconcile,
)
from settlement.records import ClearingRecord
from tests.settlement.support import MERCHANTS, clearing_records, examples


def honest_statements(records: list[ClearingRecord]) -> dict[str, NodeStatement]:
    """What every node booked when all went well: law 5 holds record by record."""
    return {
        m: NodeStatement(
            m,
            tuple(PostedHold(r.authorization_id, r.points) for r in records if r.issuer_id == m),
            tuple(
                Receivable(r.authorization_id, r.issuer_id, r.points, r.value_fen, r.fee_fen)
                for r in records
                if r.acquirer_id == m
            ),
        )
        for m in MERCHANTS
    }


def record(auth: str, issuer: str = "tea", acquirer: str = "noodles") -> ClearingRecord:
    return ClearingRecord(auth, f"c-{auth}", issuer, acquirer, 10, 100, 3, 1, "2026-11-24")


def test_agreeing_books_are_not_disputed() -> None:
    records = [record("a1"), record("a2", "noodles", "salon")]
    result = reconcile(records, honest_statements(records).values())
    assert result.mismatches == () and not result.disputed


def test_a_party_without_a_statement_disputes_the_batch() -> None:
    records = [record("a1")]
    statements = [s for m, s in honest_statements(records).items() if m != "noodles"]
    result = reconcile(records, statements)
    assert result.mismatches == (Mismatch("noodles", None, "no_statement"),)
    assert result.disputed


def test_an_altered_receivable_names_field_and_both_values() -> None:
    records = [record("a1")]
    statements = honest_statements(records)
    noodles = statements["noodles"]
    statements["noodles"] = dataclasses.replace(
        noodles, receivables=(dataclasses.replace(noodles.receivables[0], fee_fen=0),)
    )
    assert reconcile(records, statements.values()).mismatches == (
        Mismatch("noodles", "acquirer", "altered", "a1", "fee_fen", 3, 0),
    )


MUTATIONS = (
    "drop_hold",
    "drop_receivable",
    "extra_hold",
    "extra_receivable",
    "alter_hold",
    "alter_receivable",
    "repeat_hold",
    "drop_exchange_record",
    "extra_exchange_record",
    "alter_exchange_points",
    "alter_exchange_value",
    "no_statement",
)


@examples()
@given(records=clearing_records(max_size=12), mutation=st.sampled_from(MUTATIONS), data=st.data())
def test_reconciliation_catches_every_injected_mismatch(
    records: list[ClearingRecord], mutation: str, data: st.DataObject
) -> None:
    statements = honest_statements(records)
    assume(records or mutation in ("extra_hold", "extra_receivable", "extra_exchange_record"))
    victim = data.draw(st.sampled_from(records)) if records else None
    new = record(
        "zz-new", data.draw(st.sampled_from(MERCHANTS)), data.draw(st.sampled_from(MERCHANTS))
    )
    expected: set[Mismatch]

    def restate(merchant: str, **change: object) -> None:
        statements[merchant] = dataclasses.replace(statements[merchant], **change)  # type: ignore[arg-type]

    if mutation == "drop_hold":
        assert victim
        me, auth = victim.issuer_id, victim.authorization_id
        restate(
            me, posted_holds=tuple(h for h in statements[me].posted_holds if h.hold_ref != auth)
        )
        expected = {Mismatch(me, "issuer", "missing_at_node", auth)}
    elif mutation == "drop_receivable":
        assert victim
        me, auth = victim.acquirer_id, victim.authorization_id
        restate(
            me,
            receivables=tuple(r for r in statements[me].receivables if r.authorization_id != auth),
        )
        expected = {Mismatch(me, "acquirer", "missing_at_node", auth)}
    elif mutation == "extra_hold":
        me = new.issuer_id
        restate(
            me, posted_holds=statements[me].posted_holds + (PostedHold(new.authorization_id, 5),)
        )
        expected = {Mismatch(me, "issuer", "missing_at_exchange", new.authorization_id)}
    elif mutation == "extra_receivable":
        me = new.acquirer_id
        extra = Receivable(new.authorization_id, new.issuer_id, 5, 50, 1)
        restate(me, receivables=statements[me].receivables + (extra,))
        expected = {Mismatch(me, "acquirer", "missing_at_exchange", new.authorization_id)}
    elif mutation == "alter_hold":
        assert victim
        me, auth = victim.issuer_id, victim.authorization_id
        holds = tuple(
            PostedHold(h.hold_ref, h.points + 1) if h.hold_ref == auth else h
            for h in statements[me].posted_holds
        )
        restate(me, posted_holds=holds)
        expected = {
            Mismatch(me, "issuer", "altered", auth, "points", victim.points, victim.points + 1)
        }
    elif mutation == "alter_receivable":
        assert victim
        me, auth = victim.acquirer_id, victim.authorization_id
        field = data.draw(st.sampled_from(["issuer_id", "points", "value_fen", "fee_fen"]))
        was = getattr(victim, field)
        now = was + "x" if field == "issuer_id" else was + 1
        receivables = tuple(
            dataclasses.replace(r, **{field: now}) if r.authorization_id == auth else r
            for r in statements[me].receivables
        )
        restate(me, receivables=receivables)
        expected = {Mismatch(me, "acquirer", "altered", auth, field, was, now)}
    elif mutation == "repeat_hold":
        assert victim
        me = victim.issuer_id
        hold = next(h for h in statements[me].posted_holds if h.hold_ref == victim.authorization_id)
        restate(me, posted_holds=statements[me].posted_holds + (hold,))
        expected = {Mismatch(me, "issuer", "repeated_at_node", victim.authorization_id)}
    elif mutation == "drop_exchange_record":
        assert victim
        records = [r for r in records if r is not victim]
        auth = victim.authorization_id
        expected = {
            Mismatch(victim.issuer_id, "issuer", "missing_at_exchange", auth),
            Mismatch(victim.acquirer_id, "acquirer", "missing_at_exchange", auth),
        }
    elif mutation == "extra_exchange_record":
        records = records + [new]
        expected = {
            Mismatch(new.issuer_id, "issuer", "missing_at_node", new.authorization_id),
            Mismatch(new.acquirer_id, "acquirer", "missing_at_node", new.authorization_id),
        }
    elif mutation == "alter_exchange_points":
        assert victim
        altered = victim._replace(points=victim.points + 1)
        records = [altered if r is victim else r for r in records]
        auth, was, now = victim.authorization_id, victim.points + 1, victim.points
        expected = {
            Mismatch(victim.issuer_id, "issuer", "altered", auth, "points", was, now),
            Mismatch(victim.acquirer_id, "acquirer", "altered", auth, "points", was, now),
        }
    elif mutation == "alter_exchange_value":
        assert victim
        altered = victim._replace(value_fen=victim.value_fen + 1)
        records = [altered if r is victim else r for r in records]
        auth = victim.authorization_id
        expected = {
            Mismatch(
                victim.acquirer_id,
                "acquirer",
                "altered",
                auth,
                "value_fen",
                victim.value_fen + 1,
                victim.value_fen,
            )
        }
    else:
        assert victim
        del statements[victim.issuer_id]
        expected = {Mismatch(victim.issuer_id, None, "no_statement")}

    result = reconcile(records, statements.values())
    assert set(result.mismatches) == expected
    assert len(result.mismatches) == len(expected)
    assert result.disputed
