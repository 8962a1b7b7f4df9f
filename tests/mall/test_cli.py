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


@pytest.mark.asyncio
async def test_district_report_sums_every_merchants_mall(ledger, new_database, clock, capsys):
    from tests.conftest import open_test_ledger
    from tests.mall.support import coupon_item

    other = open_test_ledger(new_database("salon"), clock)
    try:
        for led, points in ((ledger, 1000), (other, 2000)):
            member_with_points(led, "m1", points)
        async with start_mall(ledger, http=False) as tea, start_mall(other, http=False) as salon:
            tea.mall.upsert_item("u1", coupon_item("tea-5"), "admin")
            salon.mall.upsert_item("u1", coupon_item("cut-5", price_points=700), "admin")
            tea.mall.buy("b1", "m1", "tea-5", 1)
            salon.mall.buy("b1", "m1", "cut-5", 2)
            argv = ["mall", "district-report"]
            for r in (tea, salon):
                argv += ["--node", f"{r.target}={ADMIN_TOKEN}"]
            assert await asyncio.to_thread(main, argv) == 0
            report = json.loads(capsys.readouterr().out)
            argv[1] = "district-items"
            assert await asyncio.to_thread(main, argv) == 0
            shelves = capsys.readouterr().out
        assert "tea-5" in shelves and "cut-5" in shelves
        assert report["pointsTaken"] == "1900" and report["couponsIssued"] == "3"
        assert report["couponLiabilityFen"] == "1500"
        sold = {i["itemId"].split("/")[1]: i.get("sold", "0") for i in report["items"]}
        assert sold == {"tea-5": "1", "cut-5": "2"}
    finally:
        other.engine.dispose()
