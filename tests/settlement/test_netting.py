"""Netting: positions sum to zero and match the records; the plan settles them in ≤ N−1."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settlement.netting import OPERATOR, Transfer, net_positions, settles, transfer_plan
from settlement.obligations import Obligation
from settlement.records import ClearingRecord
from tests.settlement.support import clearing_records, examples, reference_obligations


def test_issuer_pays_value_acquirer_gets_value_less_fee_operator_gets_fee() -> None:
    positions = net_positions([Obligation("tea", "noodles", 100, 1000, 30, 1)])
    assert positions == {"tea": -1000, "noodles": 970, OPERATOR: 30}
    assert transfer_plan(positions) == [
        Transfer("tea", "noodles", 970),
        Transfer("tea", OPERATOR, 30),
    ]


def test_obligations_both_ways_net_to_one_transfer() -> None:
    positions = net_positions(
        [Obligation("tea", "noodles", 1, 1000, 0, 1), Obligation("noodles", "tea", 1, 600, 0, 1)]
    )
    assert positions == {"tea": -400, "noodles": 400, OPERATOR: 0}
    assert transfer_plan(positions) == [Transfer("tea", "noodles", 400)]


def test_nothing_to_settle_gives_no_transfers() -> None:
    assert net_positions([]) == {}
    assert transfer_plan({}) == []
    assert transfer_plan({"tea": 0, "noodles": 0}) == []


def test_positions_that_do_not_balance_are_refused() -> None:
    with pytest.raises(ValueError):
        transfer_plan({"tea": -5, "noodles": 4})


def test_a_fee_above_the_value_is_refused() -> None:
    with pytest.raises(ValueError):
        net_positions([Obligation("tea", "noodles", 1, 10, 11, 1)])


@examples()
@given(clearing_records())
def test_net_positions_sum_to_zero_and_match_the_clearing_records(
    records: list[ClearingRecord],
) -> None:
    netted = net_positions(reference_obligations(records))
    assert sum(netted.values()) == 0
    assert netted == net_positions(records)  # aggregating first changes nothing
    for party, position in netted.items():
        if party == OPERATOR:
            assert position == sum(r.fee_fen for r in records)
            continue
        paid = sum(r.value_fen for r in records if r.issuer_id == party)
        received = sum(r.value_fen - r.fee_fen for r in records if r.acquirer_id == party)
        assert position == received - paid


balanced_positions = st.dictionaries(
    st.text("abcxyz", min_size=1, max_size=3), st.integers(-(10**15), 10**15), max_size=40
).map(lambda p: {**p, "balance": -sum(p.values())})


@examples()
@given(balanced_positions)
def test_the_plan_settles_every_position_exactly_in_at_most_n_minus_one_transfers(
    positions: dict[str, int],
) -> None:
    plan = transfer_plan(positions)
    nonzero = sum(1 for amount in positions.values() if amount)
    assert len(plan) <= max(0, nonzero - 1)
    assert settles(positions, plan)
    for t in plan:
        assert type(t.amount_fen) is int and t.amount_fen > 0
        assert (
            positions[t.payer] < 0 < positions[t.payee]
        )  # debtors only pay, creditors only receive
    assert transfer_plan(positions) == plan  # deterministic


@examples()
@given(clearing_records())
def test_the_plan_of_real_records_settles_them(records: list[ClearingRecord]) -> None:
    positions = net_positions(reference_obligations(records))
    plan = transfer_plan(positions)
    assert settles(positions, plan)
    assert len(plan) <= max(0, sum(1 for a in positions.values() if a) - 1)
