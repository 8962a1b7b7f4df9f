"""What a purchase earns under a merchant's program, line by line. Pure: no I/O, no clock.

The composition (docs/rules.md works an example through it):
1. eligible fen = amount - excluded line items - the part paid with points (if excluded);
2. base points = eligible fen x the base rate, or x the spend brackets when the program has them;
3. each multiplier m adds (m - 1) x the base points of what it covers: multipliers add, they
   never compound, so a merchant can price each campaign on its own;
4. bonuses add points, but only to an order that earns at all (eligible fen > 0);
5. every line is rounded on its own, then the per-order and per-member-per-day caps cut, shown
   as negative lines. Lines always sum to the total and the total is never negative.
Budget pools are the ledger's to reserve: `pool_draws` says what to ask for, and
`apply_pool_grants` cuts the award to what the pools granted. A member in a campaign's control
group gets a 0-point `control_group:<rule id>` line instead of the campaign's points.

reference.py says this literally, rule by rule; the ledger runs the same composition compiled
once per program version (compiled.py), which the property tests hold to the reference.
"""

from __future__ import annotations

from dataclasses import replace

from coalition_kernel.points import Rate
from merchant_node.rules.base import Purchase, RuleLine
from merchant_node.rules.compiled import compiled
from merchant_node.rules.lines import (
    CONTROL_GROUP_LINE,
    Evaluation,
    MemberContext,
    PoolDraw,
    in_control_group,
)
from merchant_node.rules.program import Program

__all__ = [
    "CONTROL_GROUP_LINE",
    "Evaluation",
    "MemberContext",
    "PoolDraw",
    "ProgramRules",
    "apply_pool_grants",
    "in_control_group",
]


class ProgramRules:
    """A merchant's program behind the ledger's `EarningRules` seam."""

    def __init__(self, program: Program, version: str | None = None) -> None:
        self.program = program
        self.version = version or f"program-{program.digest()[:16]}"
        self._compiled = compiled(program)

    def evaluate(
        self, purchase: Purchase, rate: Rate, member: MemberContext | None = None
    ) -> Evaluation:
        return self._compiled.evaluate(purchase, rate, member)


def apply_pool_grants(evaluation: Evaluation, granted: dict[str, int]) -> Evaluation:
    """Cuts the award to what each pool granted (a pool missing from `granted` granted nothing)."""
    requested: dict[str, int] = {}
    for draw in evaluation.pool_draws:
        requested[draw.pool_id] = requested.get(draw.pool_id, 0) + draw.points
    cuts, draws = [], []
    for pool, wanted in requested.items():
        left = grant = max(0, min(granted.get(pool, 0), wanted))
        if grant < wanted:
            cuts.append(
                RuleLine(
                    f"budget_pool:{pool}",
                    f"pool {pool} granted {grant} of {wanted}",
                    grant - wanted,
                )
            )
        for draw in evaluation.pool_draws:
            if draw.pool_id == pool and left:
                draws.append(replace(draw, points=min(draw.points, left)))
                left -= draws[-1].points
    points = evaluation.points + sum(cut.points for cut in cuts)
    return replace(
        evaluation, points=points, breakdown=evaluation.breakdown + cuts, pool_draws=draws
    )
