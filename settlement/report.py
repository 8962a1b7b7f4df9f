"""The settlement report: per party what it owes, is owed, pays in fees and for breakage, and
nets; the transfers that settle it; and the commitment root that lets each merchant check its
entries.

Amounts are integer fen everywhere, in JSON and CSV alike: a spreadsheet or a bank file never
sees a rounded float. For every party, net = receivable − fee − payable − breakage, and the nets
are the netting's positions; the operator's receivable is the fees it collects plus the
breakage shares the issuers pay it. positions.csv always has the breakage_fen column; in
report.json a position carries breakage_fen when the batch allocates any breakage (a reader
takes a missing one as 0), so a batch without breakage reads as it always did.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from settlement.netting import OPERATOR, Transfer, net_positions, transfer_plan
from settlement.obligations import Obligation


@dataclass(frozen=True, slots=True)
class PartyLine:
    """One row of a future `settlement_positions` table (batch id, party)."""

    party: str
    payable_fen: int  # gross value of its points redeemed elsewhere (as issuer)
    receivable_fen: int  # gross value of others' points redeemed here (as acquirer)
    fee_fen: int  # the operator's fees on its receivables
    net_fen: int  # > 0 it is paid, < 0 it pays
    breakage_fen: int = 0  # what it pays the operator for its breakage (as issuer)


@dataclass(frozen=True)
class SettlementReport:
    period: str
    record_count: int
    commitment_root: str  # hex
    lines: tuple[PartyLine, ...]
    transfers: tuple[Transfer, ...]


def build_report(
    period: str,
    obligations: Iterable[Obligation],
    commitment_root: bytes,
    breakage: Iterable[Obligation] = (),
) -> SettlementReport:
    """The report of a period from its gross obligations, the issuers' breakage obligations to
    the operator (settlement.obligations.breakage_obligations) and its batch commitment."""
    obligations, breakage = list(obligations), list(breakage)
    payable: dict[str, int] = {}
    receivable: dict[str, int] = {}
    fee: dict[str, int] = {}
    owed_breakage: dict[str, int] = {}
    for o in obligations:
        payable[o.issuer_id] = payable.get(o.issuer_id, 0) + o.value_fen
        receivable[o.acquirer_id] = receivable.get(o.acquirer_id, 0) + o.value_fen
        fee[o.acquirer_id] = fee.get(o.acquirer_id, 0) + o.fee_fen
    for b in breakage:
        if b.acquirer_id != OPERATOR or b.fee_fen or b.records:
            raise ValueError(f"not a breakage obligation to the operator: {b}")
        owed_breakage[b.issuer_id] = owed_breakage.get(b.issuer_id, 0) + b.value_fen
    positions = net_positions(obligations + breakage)
    if obligations or breakage:
        receivable[OPERATOR] = positions[OPERATOR]
    lines = tuple(
        PartyLine(
            party,
            payable.get(party, 0),
            receivable.get(party, 0),
            0 if party == OPERATOR else fee.get(party, 0),
            positions[party],
            owed_breakage.get(party, 0),
        )
        for party in sorted(positions)
    )
    for line in lines:
        # Two computations of one number: the report must never disagree with the netting.
        if net_of(line) != line.net_fen:
            raise AssertionError(f"report line disagrees with netting: {line}")
    return SettlementReport(
        period,
        sum(o.records for o in obligations),
        commitment_root.hex(),
        lines,
        tuple(transfer_plan(positions)),
    )


def net_of(line: PartyLine) -> int:
    """A line's net from its columns: what it is owed less fees, what it owes and breakage."""
    return line.receivable_fen - line.fee_fen - line.payable_fen - line.breakage_fen


def to_json(report: SettlementReport) -> str:
    with_breakage = any(line.breakage_fen for line in report.lines)
    return json.dumps(
        {
            "period": report.period,
            "record_count": report.record_count,
            "commitment_root": report.commitment_root,
            "positions": [_position(line, with_breakage) for line in report.lines],
            "transfers": [asdict(t) for t in report.transfers],
        },
        indent=2,
        ensure_ascii=False,
    )


def _position(line: PartyLine, with_breakage: bool) -> dict[str, object]:
    position = asdict(line)
    if not with_breakage:
        del position["breakage_fen"]
    return position


# breakage last, after the columns positions.csv had before it, so a reader by position still works.
_AMOUNTS = ("payable", "receivable", "fee", "net", "breakage")


def to_csv(report: SettlementReport) -> dict[str, str]:
    """Two CSV files, positions.csv and transfers.csv; each row names its period and root, so
    rows of many batches can be pooled and still traced to their batch."""
    batch = [report.period, report.commitment_root]
    positions = _csv(
        ["period", "commitment_root", "party"] + [f"{x}_fen" for x in _AMOUNTS],
        (
            batch + [line.party] + [getattr(line, f"{x}_fen") for x in _AMOUNTS]
            for line in report.lines
        ),
    )
    transfers = _csv(
        ["period", "commitment_root", "sequence", "payer", "payee", "amount_fen"],
        (batch + [i, t.payer, t.payee, t.amount_fen] for i, t in enumerate(report.transfers, 1)),
    )
    return {"positions.csv": positions, "transfers.csv": transfers}


def _csv(header: list[str], rows: Iterable[list[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()
