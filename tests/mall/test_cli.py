"""`coalition mall …` against a real node's mall."""

from __future__ import annotations

import asyncio
import json

import pytest

from coalition_cli.main import main
from tests.mall.support import ADMIN_TOKEN, member_with_points, start_mall

ITEM = {
    "itemId": "tea-coupon",
    "kind": "ITEM_KIND_COUPON",
    "title": "¥5 tea coupon",
    "pricePoints": "500",
    "stockTotal": "10",
    "perMemberLimit": "2",
    "couponValueFen": "500",
    "couponValidDays": "30",
}


@pytest.mark.asyncio
async def test_put_items_report_token_and_refusals_from_the_command_line(ledger, tmp_path, capsys):
    member_with_points(ledger, "m1", 1000)
    async with start_mall(ledger, http=False) as running:
        remote = ["--target", running.target, "--credential", ADMIN_TOKEN]

        async def cli(*argv: str) -> int:
            return await asyncio.to_thread(main, ["mall", *argv, *remote])

        path = tmp_path / "item.json"
        path.write_text(json.dumps(ITEM, ensure_ascii=False))
        assert await cli("put", str(path)) == 0
        assert json.loads(capsys.readouterr().out)["stockLeft"] == "10"
        running.mall.buy("b1", "m1", "tea-coupon", 1)
        assert await cli("items") == 0
        assert "stock 9/10" in capsys.readouterr().out
        assert await cli("report") == 0
        assert json.loads(capsys.readouterr().out)["couponsIssued"] == "1"
        assert await cli("token", "m1") == 0
        assert running.mall.member_of(capsys.readouterr().out.strip()) == "m1"
        path.write_text(json.dumps({**ITEM, "couponValidDays": "0"}))
        assert await cli("put", str(path)) == 1
        assert "INVALID_ARGUMENT BAD_ITEM" in capsys.readouterr().err
        bad = ["mall", "items", "--target", running.target, "--credential", "wrong"]
        assert await asyncio.to_thread(main, bad) == 1
        assert "UNAUTHENTICATED BAD_ADMIN_TOKEN" in capsys.readouterr().err
