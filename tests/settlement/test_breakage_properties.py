"""Breakage in settlement, as laws over random batches: the operator's share is never negative
nor more than the breakage and is the exact floor of value × bps / 10000; with the issuers'
shares netted beside the clearing records, nets still sum to zero, the report's columns agree
with the netting, and the transfers settle every position in at most N−1 payments."""

from __future__ import annotations

import csv
import io
import json

from hypothesis import given
from hypothesis import strategies as st

from settlement.commitment import merkle_root
from settlement.netting import OPERATOR, net_positions, settles
from settlement.obligations import (
    BreakageShare,
    StatedBreakage,
    allocate_breakage,
    breakage_obligations,
    operator_share,
    pack_receipts,
    unpack_receipts,
)
from settlement.records import ClearingRecord
from settlement.report import PartyLine, build_report, net_of, to_csv, to_json
from tests.settlement.support import MERCHANTS, clearing_records, examples, reference_obligations

PERIOD = "2026-11-24"
values = st.integers(0, 10**12) | st.integers(0, 5_000)
shares_bps = st.sampled_from([0, 1, 3000, 3333, 9999, 10_000]) | st.integers(0, 10_000)


@st.composite
def breakage_days(draw: st.DrawFn) -> list[StatedBreakage]:
    """One issuer's signed breakage of each day of a period (1 to 7 days)."""
    issuer = draw(st.sampled_from(MERCHANTS))
    return [
        StatedBreakage(issuer, f"2026-11-{24 + i}", draw(st.integers(0, 10**9)), draw(values),
                       draw(st.binary(max_size=40)))
        for i in range(draw(st.integers(1, 7)))
    ]  # fmt: skip


@st.composite
def breakage_shares(draw: st.DrawFn) -> list[BreakageShare]:
    """At most one share per issuer, as a batch stores them."""
    issuers = draw(st.lists(st.sampled_from(MERCHANTS), unique=True, max_size=len(MERCHANTS)))
    return [
        allocate_breakage(
            issuer,
            [StatedBreakage(issuer, PERIOD, draw(st.integers(0, 10**9)), draw(values), b"r")],
            draw(shares_bps),
        )
        for issuer in issuers
    ]


@examples()
@given(values, shares_bps)
def test_the_operators_share_is_the_floor_and_never_negative_nor_more_than_the_value(
    value: int, bps: int
) -> None:
    share = operator_share(value, bps)
    assert 0 <= share <= value
    # Exactly the floor: share ≤ value × bps / 10000 < share + 1, in integers.
    assert share * 10_000 <= value * bps < (share + 1) * 10_000
    assert operator_share(value, 0) == 0 and operator_share(value, 10_000) == value


@examples()
@given(breakage_days(), shares_bps)
def test_a_periods_share_is_taken_once_on_its_total_and_keeps_every_days_receipt(
    days: list[StatedBreakage], bps: int
) -> None:
    share = allocate_breakage(days[0].issuer_id, days, bps)
    total = sum(d.value_fen for d in days)
    assert (share.points, share.value_fen) == (sum(d.points for d in days), total)
    assert share.operator_fen == operator_share(total, bps)
    assert 0 <= share.operator_fen <= share.value_fen
    assert unpack_receipts(share.issuer_envelope, len(days)) == [d.envelope for d in days]
    if len(days) == 1:  # a day's receipt is stored as the node sent it
        assert share.issuer_envelope == pack_receipts([days[0].envelope]) == days[0].envelope


@examples()
@given(clearing_records(), breakage_shares())
def test_with_breakage_nets_sum_to_zero_and_the_columns_agree_with_the_netting(
    records: list[ClearingRecord], shares: list[BreakageShare]
) -> None:
    owed = breakage_obligations(shares)
    report = build_report(
        PERIOD,
        reference_obligations(records),
        merkle_root(sorted(records, key=lambda r: r.authorization_id)),
        owed,
    )
    positions = net_positions([*records, *owed])
    lines = {line.party: line for line in report.lines}
    assert {party: line.net_fen for party, line in lines.items()} == positions
    assert sum(positions.values()) == 0
    assert all(net_of(line) == line.net_fen for line in report.lines)
    # Each issuer's breakage column is the operator's share of its breakage; a share of
    # nothing makes no one a party.
    traders = {r.issuer_id for r in records} | {r.acquirer_id for r in records}
    for share in shares:
        if share.operator_fen:
            assert lines[share.issuer_id].breakage_fen == share.operator_fen
        elif share.issuer_id in traders:
            assert lines[share.issuer_id].breakage_fen == 0
        else:
            assert share.issuer_id not in lines
    fees = sum(r.fee_fen for r in records)
    breakage = sum(s.operator_fen for s in shares)
    assert sum(line.breakage_fen for line in report.lines) == breakage
    if OPERATOR in lines:
        operator = lines[OPERATOR]
        assert (operator.receivable_fen, operator.breakage_fen) == (fees + breakage, 0)
    else:
        assert fees == breakage == 0 and not records
    merchants = [line for line in report.lines if line.party != OPERATOR]
    assert sum(x.payable_fen for x in merchants) == sum(x.receivable_fen for x in merchants)
    # Without breakage the same records net as before; breakage moves only issuers → operator.
    plain = net_positions(records)
    for party, net in positions.items():
        moved = -lines[party].breakage_fen if party != OPERATOR else breakage
        assert net == plain.get(party, 0) + moved
    assert settles(positions, report.transfers)
    assert len(report.transfers) <= max(sum(1 for v in positions.values() if v) - 1, 0)
    assert report.record_count == len(records)

    data = json.loads(to_json(report))
    assert [PartyLine(**line) for line in data["positions"]] == list(report.lines)
    assert all(("breakage_fen" in line) == bool(breakage) for line in data["positions"])
    rows = list(csv.DictReader(io.StringIO(to_csv(report)["positions.csv"])))
    assert [int(r["breakage_fen"]) for r in rows] == [x.breakage_fen for x in report.lines]
    assert [int(r["net_fen"]) for r in rows] == [x.net_fen for x in report.lines]
