"""The settlement report: lines agree with the netting, and CSV and JSON carry exact fen."""

from __future__ import annotations

import csv
import io
import json

from hypothesis import given

from settlement.commitment import merkle_root
from settlement.netting import OPERATOR, Transfer, net_positions, settles
from settlement.obligations import Obligation
from settlement.records import ClearingRecord
from settlement.report import PartyLine, build_report, to_csv, to_json
from tests.settlement.support import clearing_records, examples, reference_obligations

ROOT = bytes.fromhex("ab" * 32)


def test_a_small_report_reads_as_expected() -> None:
    report = build_report(
        "2026-11-24",
        [
            Obligation("tea", "noodles", 100, 1000, 30, 2),
            Obligation("noodles", "tea", 50, 400, 12, 1),
        ],
        ROOT,
    )
    assert report.record_count == 3 and report.commitment_root == "ab" * 32
    assert report.lines == (
        PartyLine("noodles", 400, 1000, 30, 570),
        PartyLine(OPERATOR, 0, 42, 0, 42),
        PartyLine("tea", 1000, 400, 12, -612),
    )
    assert report.transfers == (Transfer("tea", "noodles", 570), Transfer("tea", OPERATOR, 42))
    data = json.loads(to_json(report))
    assert data["positions"][2] == {
        "party": "tea",
        "payable_fen": 1000,
        "receivable_fen": 400,
        "fee_fen": 12,
        "net_fen": -612,
    }
    assert data["transfers"][0] == {"payer": "tea", "payee": "noodles", "amount_fen": 570}
    files = to_csv(report)
    assert files["transfers.csv"].splitlines() == [
        "period,commitment_root,sequence,payer,payee,amount_fen",
        f"2026-11-24,{'ab' * 32},1,tea,noodles,570",
        f"2026-11-24,{'ab' * 32},2,tea,operator,42",
    ]


def test_an_empty_period_reports_nothing_to_pay() -> None:
    report = build_report("2026-11-24", [], merkle_root([]))
    assert (report.lines, report.transfers, report.record_count) == ((), (), 0)
    assert json.loads(to_json(report))["positions"] == []


@examples()
@given(clearing_records())
def test_report_lines_match_the_netting_and_survive_csv_and_json(
    records: list[ClearingRecord],
) -> None:
    report = build_report(
        "2026-11-24",
        reference_obligations(records),
        merkle_root(sorted(records, key=lambda r: r.authorization_id)),
    )
    positions = net_positions(records)
    assert {line.party: line.net_fen for line in report.lines} == positions
    assert sum(line.net_fen for line in report.lines) == 0
    merchants = [line for line in report.lines if line.party != OPERATOR]
    assert sum(x.payable_fen for x in merchants) == sum(x.receivable_fen for x in merchants)
    assert sum(x.fee_fen for x in merchants) == positions.get(OPERATOR, 0)
    assert settles(positions, report.transfers)
    assert report.record_count == len(records)

    data = json.loads(to_json(report))
    assert [PartyLine(**line) for line in data["positions"]] == list(report.lines)
    assert [Transfer(**t) for t in data["transfers"]] == list(report.transfers)
    assert data["commitment_root"] == report.commitment_root

    rows = list(csv.DictReader(io.StringIO(to_csv(report)["positions.csv"])))
    assert [
        PartyLine(
            r["party"],
            int(r["payable_fen"]),
            int(r["receivable_fen"]),
            int(r["fee_fen"]),
            int(r["net_fen"]),
        )
        for r in rows
    ] == list(report.lines)
    assert {r["commitment_root"] for r in rows} <= {report.commitment_root}
