"""Netting: one net position per party, then the fewest simple transfers that settle them.

Pure integer arithmetic in fen. Each obligation (or clearing record) moves money three ways:
the issuer pays `value_fen`, the acquirer receives `value_fen - fee_fen` and the operator
receives `fee_fen`, so every party's position is exact and the positions sum to zero.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from coalition_kernel.envelope import OPERATOR_ID

OPERATOR = OPERATOR_ID  # a reserved id: no merchant can be registered under it


class Owed(Protocol):
    """What netting needs of an obligation or of a single clearing record."""

    @property
    def issuer_id(self) -> str: ...
    @property
    def acquirer_id(self) -> str: ...
    @property
    def value_fen(self) -> int: ...
    @property
    def fee_fen(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Transfer:
    """One payment of the settlement: `payer` sends `amount_fen` (> 0) to `payee`."""

    payer: str
    payee: str
    amount_fen: int


def net_positions(obligations: Iterable[Owed]) -> dict[str, int]:
    """Each party's net position in fen: positive receives, negative pays.

    Every party named by an obligation appears, even when it nets to zero, and so does the
    operator once there is any obligation: a report lists everyone who took part.
    """
    positions: dict[str, int] = {}
    for o in obligations:
        if o.fee_fen < 0 or o.fee_fen > o.value_fen:
            raise ValueError(f"fee {o.fee_fen} outside 0..{o.value_fen} ({o.issuer_id})")
        positions[o.issuer_id] = positions.get(o.issuer_id, 0) - o.value_fen
        positions[o.acquirer_id] = positions.get(o.acquirer_id, 0) + o.value_fen - o.fee_fen
        positions[OPERATOR] = positions.get(OPERATOR, 0) + o.fee_fen
    return positions


def transfer_plan(positions: Mapping[str, int]) -> list[Transfer]:
    """Transfers that bring every position to zero: at most N−1 for N non-zero parties.

    Greedy: the largest debtor pays the largest creditor the smaller of the two amounts. Each
    transfer zeroes at least one party and the last zeroes two, hence N−1 at most. Ties break
    by party id, so the same positions always give the same plan.
    """
    if sum(positions.values()) != 0:
        raise ValueError(f"positions sum to {sum(positions.values())}, not zero")
    debtors = [(amount, party) for party, amount in positions.items() if amount < 0]
    creditors = [(-amount, party) for party, amount in positions.items() if amount > 0]
    heapq.heapify(debtors)  # most negative first: the largest debtor
    heapq.heapify(creditors)  # most negative (negated credit) first: the largest creditor
    plan: list[Transfer] = []
    while debtors:
        debt, payer = heapq.heappop(debtors)
        credit, payee = heapq.heappop(creditors)
        amount = min(-debt, -credit)
        plan.append(Transfer(payer, payee, amount))
        if debt + amount < 0:
            heapq.heappush(debtors, (debt + amount, payer))
        if credit + amount < 0:
            heapq.heappush(creditors, (credit + amount, payee))
    return plan


def settles(positions: Mapping[str, int], plan: Iterable[Transfer]) -> bool:
    """Whether the plan brings every position exactly to zero with positive amounts only."""
    left = dict(positions)
    for t in plan:
        if t.amount_fen <= 0 or t.payer == t.payee:
            return False
        left[t.payer] = left.get(t.payer, 0) + t.amount_fen
        left[t.payee] = left.get(t.payee, 0) - t.amount_fen
    return all(amount == 0 for amount in left.values())
