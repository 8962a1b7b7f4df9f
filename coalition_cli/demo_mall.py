"""The demo's mall chapter: noodle-bar's points mall on its own HTTP port, a member browsing it
as a mini-program would (HTTP/JSON, a member token), buying a voucher with her tea-house points
through the exchange, and redeeming it at noodle-bar's till. Its clearing record settles with
the rest of the day."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import urllib.error
import urllib.request
from typing import Any

from coalition_kernel.consent import spend_code
from coalition_kernel.rpc import Offload, Server
from merchant_node.acquirer import CrossRedemptions, ExchangeLink
from merchant_node.mall.api import TokenStaffAuth
from merchant_node.mall.catalog import Item
from merchant_node.mall.node import MallNode
from merchant_node.mall.service import Mall, MallSettings
from merchant_node.runtime import coalition_link

SERVICE = "coalition.merchant.v1.MallService"


def _post(port: int, method: str, body: dict[str, Any], credential: str) -> dict[str, Any]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/{SERVICE}/{method}",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json", "authorization": f"Bearer {credential}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as res:
            return json.loads(res.read())  # type: ignore[no-any-return]
    except urllib.error.HTTPError as err:
        return json.loads(err.read())  # type: ignore[no-any-return]


def _reason(error: dict[str, Any]) -> str:
    from google.rpc import error_details_pb2

    for d in error.get("details", []):
        if d["type"] == "google.rpc.ErrorInfo":
            raw = base64.b64decode(d["value"] + "=" * (-len(d["value"]) % 4))
            return error_details_pb2.ErrorInfo.FromString(raw).reason
    return error.get("code", "")


async def mall_chapter(shops, clock) -> None:  # type: ignore[no-untyped-def]
    tea, noodles = shops["tea-house"], shops["noodle-bar"]
    link_config = coalition_link(noodles.config, clock)
    assert link_config is not None  # the demo's nodes are all in the coalition
    from coalition_kernel.envelope import Signer

    signer = Signer(link_config.merchant_id, link_config.private_key, clock)
    link = ExchangeLink(link_config.exchange_endpoint, signer, link_config.exchange_key)
    offload = Offload(4)
    cross = CrossRedemptions(noodles.ledger.engine, link, offload, clock)
    mall = Mall(noodles.ledger, MallSettings(token_key=secrets.token_bytes(32)), cross=cross)
    pos_key = secrets.token_urlsafe(24)
    node = MallNode(mall, offload, TokenStaffAuth(pos_key), http_listen="127.0.0.1:0")
    server = Server([], listen="127.0.0.1:0")
    node.attach(server)
    await server.start()
    port = await node.start()
    try:
        print(f"\nnoodle-bar's points mall: HTTP/JSON (Connect) on 127.0.0.1:{port}")
        mall.upsert_item(
            "demo-mall-1",
            Item(
                item_id="noodle-voucher",
                kind="coupon",
                title="¥5 noodle voucher",
                price_points=500,
                stock_total=50,
                per_member_limit=2,
                coupon_value_fen=500,
                coupon_valid_days=30,
            ),
            "demo",
        )
        enrolled = await tea.client.enroll_member("m-sun", display_name="Sun")
        await tea.client.earn("m-sun", "tea-z1", 80_000)
        await noodles.client.enroll_member("m-sun")
        print("Sun earns 800 tea-house points; she has none at noodle-bar")
        token, _ = mall.issue_token("m-sun", 600)  # noodle-bar's backend, after her login
        items = await asyncio.to_thread(_post, port, "BrowseItems", {}, token)
        for i in items["items"]:
            print(f"  on the shelf: {i['title']} for {i['pricePoints']} points")
        refused = await asyncio.to_thread(
            _post, port, "BuyItem", {"requestId": "z-1", "itemId": "noodle-voucher"}, token
        )
        print(f"  buying it with noodle-bar points: {_reason(refused)}")
        code = spend_code(enrolled.wallet_secret, "tea-house", "noodle-bar", 500, clock())
        body = {
            "requestId": "z-2",
            "itemId": "noodle-voucher",
            "issuerId": "tea-house",
            "consentCode": code,
            "consentMaxPoints": "500",
        }
        order = (await asyncio.to_thread(_post, port, "BuyItem", body, token))["order"]
        voucher = order["couponCodes"][0]
        print(
            f"  with her tea-house points (her wallet's code for up to 500 at noodle-bar): "
            f"{order['status'].removeprefix('ORDER_STATUS_').lower()}, voucher {voucher[:4]}…"
        )
        bal = await tea.client.get_balance("m-sun")
        print(f"  tea-house balance now {bal.available_points}; noodle-bar is owed ¥5.00")
        till = {"requestId": "till-1-z", "code": voucher, "tillId": "till-1"}
        done = await asyncio.to_thread(_post, port, "RedeemCoupon", till, pos_key)
        print(f"  at noodle-bar's till: {done['coupon']['status'].removeprefix('COUPON_STATUS_')}")
        again = await asyncio.to_thread(
            _post,
            port,
            "RedeemCoupon",
            {**till, "requestId": "till-2-z", "tillId": "till-2"},
            pos_key,
        )
        print(f"  the same voucher at a second till: {_reason(again)}")
    finally:
        await server.stop(1)
        await link.close()
        offload.shutdown()
