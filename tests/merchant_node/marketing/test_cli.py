"""`coalition members …` and `coalition triggers …` against a real node server on loopback."""

from __future__ import annotations

import asyncio

from coalition_cli.main import main
from merchant_node.ledger.commands import Earn, Enroll
from tests.merchant_node.marketing.population import TRIGGERS


async def _run(capsys, *argv: str) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    code = await asyncio.to_thread(main, list(argv))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


async def test_members_and_triggers_commands(node, clock, tmp_path, capsys):
    ledger = node.ledger
    ledger.enroll(Enroll("e-m1", "m1"))
    ledger.earn(Earn("earn-1", "m1", "o1", 12_000, "POS", None))
    clock.advance(days=95)
    conn = ["--target", node.target, "--key", node.api_key]
    code, out = await _run(capsys, "members", "show", "m1", *conn)
    assert code == 0 and "segment 沉睡 (dormant)" in out and "recency_days=95" in out
    code, out = await _run(capsys, "members", "tags", "m1", *conn)
    assert code == 0 and "m1: 0 tag(s)" in out
    triggers = tmp_path / "triggers.yaml"
    triggers.write_text(TRIGGERS)
    code, out = await _run(capsys, "triggers", "validate", str(triggers))
    assert code == 0 and "valid, 3 trigger(s)" in out
    code, out = await _run(capsys, "triggers", "apply", str(triggers), "--by", "ops", *conn)
    assert code == 0 and "version 1 in force" in out
    code, out = await _run(capsys, "triggers", "list", *conn)
    assert code == 0 and "v1" in out and "by ops" in out
    code, out = await _run(capsys, "triggers", "report", "wake_long_silence", *conn)
    assert code == 0 and "treated 0" in out
    code, out = await _run(capsys, "triggers", "report", "nope", *conn)
    assert code == 1 and "NOT_FOUND TRIGGER_NOT_FOUND" in out
    code, out = await _run(capsys, "members", "churn", *conn)
    assert code == 0 and "member" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("segments: [{id: X}]")
    code, out = await _run(capsys, "members", "validate", str(bad))
    assert code == 1 and "INVALID" in out
