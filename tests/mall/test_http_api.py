"""The member-facing HTTP/JSON API (Connect) through a real HTTP server: Node's fetch and
plain HTTP, member tokens, CORS, and errors a mini-program can switch on."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from google.rpc import error_details_pb2

from tests.mall.support import ADMIN_TOKEN, available, coupon_item, member_with_points, start_mall

CLIENT = Path(__file__).with_name("client.mjs")


def post(
    port: int, method: str, body: dict, credential: str = "", origin: str = ""
) -> tuple[int, dict, dict]:  # type: ignore[type-arg]
    headers = {"content-type": "application/json"}
    if credential:
        headers["authorization"] = f"Bearer {credential}"
    if origin:
        headers["origin"] = origin
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/coalition.merchant.v1.MallService/{method}",
        data=json.dumps(body).encode(),
        headers=headers,
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return res.status, json.loads(res.read()), dict(res.headers)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read()), dict(err.headers)


def reason(error: dict) -> str:  # type: ignore[type-arg]
    detail = next(d for d in error["details"] if d["type"] == "google.rpc.ErrorInfo")
    raw = base64.b64decode(detail["value"] + "=" * (-len(detail["value"]) % 4))
    return error_details_pb2.ErrorInfo.FromString(raw).reason


@pytest.mark.asyncio
@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
async def test_node_fetch_browses_buys_gets_a_coupon_and_redeems_it_at_the_pos(ledger):
    member_with_points(ledger, "m1", 2000)
    async with start_mall(ledger) as running:
        running.mall.upsert_item("up-1", coupon_item(), "admin")
        token, _ = running.mall.issue_token("m1", 600)
        proc = await asyncio.create_subprocess_exec(
            "node",
            str(CLIENT),
            f"http://127.0.0.1:{running.http_port}",
            token,
            ADMIN_TOKEN,
            "tea-coupon",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    result = json.loads(out)
    assert result["cors"] == "https://shop.example"
    assert result["items"] == [["tea-coupon", 500]]
    assert result["order"] == {"status": "ORDER_STATUS_FULFILLED", "points": 500}
    assert result["couponStatus"] == "COUPON_STATUS_ISSUED"
    assert result["redeemed"] == "COUPON_STATUS_REDEEMED"
    assert "HTTP 400 failed_precondition COUPON_ALREADY_REDEEMED" in result["second"]
    assert result["available"] == 1500 == available(ledger, "m1")


@pytest.mark.asyncio
async def test_member_api_refuses_bad_tokens_staff_methods_and_foreign_origins(ledger, clock):
    member_with_points(ledger, "m1", 2000)
    async with start_mall(ledger) as running:
        port = running.http_port
        running.mall.upsert_item("up-1", coupon_item(), "admin")
        token, _ = running.mall.issue_token("m1", 60)
        status, body, _ = await asyncio.to_thread(post, port, "BrowseItems", {})
        assert (status, body["code"], reason(body)) == (
            401,
            "unauthenticated",
            "MISSING_CREDENTIAL",
        )
        status, body, _ = await asyncio.to_thread(post, port, "BrowseItems", {}, token[:-2] + "xx")
        assert (status, reason(body)) == (401, "BAD_MEMBER_TOKEN")
        # A member token is no POS credential.
        status, body, _ = await asyncio.to_thread(
            post, port, "RedeemCoupon", {"requestId": "r", "code": "A" * 20, "tillId": "t"}, token
        )
        assert (status, reason(body)) == (401, "BAD_ADMIN_TOKEN")
        status, body, _ = await asyncio.to_thread(
            post, port, "BuyItem", {"requestId": "b1", "itemId": "nope"}, token
        )
        assert (status, body["code"], reason(body)) == (404, "not_found", "ITEM_NOT_FOUND")
        status, body, headers = await asyncio.to_thread(
            post, port, "GetMyBalance", {}, token, "https://evil.example"
        )
        assert status == 200 and "access-control-allow-origin" not in {k.lower() for k in headers}
        clock.advance(seconds=61)
        status, body, _ = await asyncio.to_thread(post, port, "GetMyBalance", {}, token)
        assert (status, reason(body)) == (401, "MEMBER_TOKEN_EXPIRED")
    assert available(ledger, "m1") == 2000


@pytest.mark.asyncio
async def test_cors_preflight_is_answered_for_allowed_origins_only(ledger):
    async with start_mall(ledger) as running:

        def preflight(origin: str) -> tuple[int, dict]:  # type: ignore[type-arg]
            req = urllib.request.Request(
                f"http://127.0.0.1:{running.http_port}/coalition.merchant.v1.MallService/BuyItem",
                method="OPTIONS",
                headers={"origin": origin, "access-control-request-method": "POST"},
            )
            try:
                with urllib.request.urlopen(req, timeout=10) as res:
                    return res.status, {k.lower(): v for k, v in res.headers.items()}
            except urllib.error.HTTPError as err:
                return err.code, {}

        status, headers = await asyncio.to_thread(preflight, "https://shop.example")
        assert status == 204
        assert headers["access-control-allow-origin"] == "https://shop.example"
        assert "authorization" in headers["access-control-allow-headers"]
        status, _ = await asyncio.to_thread(preflight, "https://evil.example")
        assert status == 403
