"""The settlement report: per party what it owes, is owed, pays in fees and nets; the transfers
that settle it; and the commitment root that lets each merchant check its entries.

Amounts are integer fen everywhere, in JSON and CSV alike: a spreadsheet or a bank file never
sees a rounded float. For every party, net = receivable − fee − payable, and the nets are the
netting's positions; the operator's receivable is the fees it collects.
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


@dataclass(frozen=True)
class SettlementReport:
    period: str
    record_count: int
    commitment_root: str  # hex
    lines: tuple[PartyLine, ...]
    transfers: tuple[Transfer, ...]


def build_report(
    period: str, obligations: Iterable[Obligation], commitment_root: bytes
) -> SettlementReport:
    """The report of a period from its gross obligations and its batch commitment."""
    obligations = list(obligations)
    payable: dict[str, int] = {}
    receivable: dict[str, int] = {}
    fee: dict[str, int] = {}
    for o in obligations:
        payable[o.issuer_id] = payable.get(o.issuer_id, 0) + o.value_fen
        receivable[o.acquirer_id] = receivable.get(o.acquirer_id, 0) + o.value_fen
        fee[o.acquirer_id] = fee.get(o.acquirer_id, 0) + o.fee_fen
    positions = net_positions(obligations)
    if obligations:
        receivable[OPERATOR] = positions[OPERATOR]
    lines = tuple(
        PartyLine(
            party,
            payable.get(party, 0),
            receivable.get(party, 0),
            0 if party == OPERATOR else fee.get(party, 0),
            positions[party],
        )
        for party in sorted(positions)
    )
    for line in lines:
        # Two computations of one number: the report must never disagree with the netting.
        if line.receivable_fen - line.fee_fen - line.payable_fen != line.net_fen:
            raise AssertionError(f"report line disagrees with netting: {line}")
    return SettlementReport(
        period,
        sum(o.records for o in obligations),
        commitment_root.hex(),
        lines,
        tuple(transfer_plan(positions)),
    )


def to_json(report: SettlementReport) -> str:
    return json.dumps(
        {
            "period": report.period,
            "record_count": report.record_count,
            "commitment_root": report.commitment_root,
            "positions": [asdict(line) for line in report.lines],
            "transfers": [asdict(t) for t in report.transfers],
        },
        indent=2,
        ensure_ascii=False,
    )


_AMOUNTS = ("payable", "receivable", "fee", "net")


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
