"""The console's routes (an ASGI app uvicorn serves): login, a merchant's shop pages, the
operator's district pages, their JSON and server-sent event streams, the decision on a batch.

Authorization is one rule per route family: /shop/<id> and /api/shop/<id>/… need a merchant
session of exactly that shop (anyone else gets 403, whether the shop exists or not);
/district and /api/district/… need the operator's session. Decisions are POSTs carrying the
header `X-Console-Request: 1` (a cross-site form cannot set it) with a SameSite=Strict cookie.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import pathlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from temporalio.client import Client

from coalition_kernel.db import utc_now
from coalition_kernel.errors import CoalitionError
from console import logins, merchant_view, operator_view, pages
from console.alerts_store import recent_alerts
from console.http import (
    Receive,
    Request,
    Response,
    Send,
    cookie,
    error,
    json_response,
    read_request,
    redirect,
    send_events,
)
from console.sessions import COOKIE, MERCHANT, OPERATOR, Session, Sessions

log = logging.getLogger(__name__)
STATIC = pathlib.Path(__file__).parent / "static"
REPO = pathlib.Path(__file__).resolve().parent.parent
ECHARTS = REPO / "node_modules" / "echarts" / "dist" / "echarts.min.js"
_SHOP = re.compile(r"^/(api/)?shop/([A-Za-z0-9_.-]{1,64})(/[a-z]+)?\Z")
_DECIDE = re.compile(r"^/api/district/batches/([0-9A-Za-z-]{1,10})/(approve|reject)\Z")


@dataclass
class Console:
    sessions: Sessions
    nodes: dict[str, Engine]  # merchant id -> its node's database
    exchange: Engine | None
    operator_name: str
    operator_password_sha256: str
    temporal: Callable[[], Awaitable[Client]] | None = None
    clock: Callable[[], datetime] = utc_now
    refresh_seconds: float = 2.0
    echarts_path: pathlib.Path = ECHARTS
    _temporal_client: Client | None = field(default=None, init=False)

    # -- ASGI ----------------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        request = await read_request(scope, receive)
        session = self.sessions.read(request.cookies.get(COOKIE))
        stream = self._stream_of(request, session)
        if stream is not None:
            await send_events(send, _until_disconnect(stream, receive))
            return
        try:
            response = await self.route(request, session)
        except CoalitionError as err:
            response = error(_http_status(err), err.reason, err.message)
        await response.send(send)

    async def route(self, request: Request, session: Session | None) -> Response:
        path, method = request.path, request.method
        lang = pages.language(request)
        if path == "/" and method == "GET":
            return Response(body=pages.login(lang, request.query.get("failed") == "1"))
        if path == "/login" and method == "POST":
            return await self.login(request)
        if path == "/logout" and method == "POST":
            return redirect("/", [cookie(COOKIE, "", 0)])
        if path.startswith("/static/") and method == "GET":
            return self.static(path.removeprefix("/static/"))
        shop = _SHOP.match(path)
        if shop and method == "GET":
            merchant_id, api, what = shop.group(2), shop.group(1), shop.group(3) or ""
            if session is None or not session.may_see_shop(merchant_id):
                return _forbidden(api is not None, lang)
            if not api:
                return Response(body=pages.shop(lang, merchant_id))
            if what == "/figures":
                return json_response(await self.shop_figures(merchant_id))
            if what == "/alerts":
                return json_response(await self.alerts(merchant_id))
        if path.startswith(("/district", "/api/district")):
            if session is None or session.role != OPERATOR:
                return _forbidden(path.startswith("/api/"), lang)
            if path == "/district" and method == "GET":
                return Response(body=pages.district(lang, session.subject))
            if path == "/api/district/figures" and method == "GET":
                return json_response(await self.district_figures())
            if path == "/api/district/alerts" and method == "GET":
                return json_response(await self.alerts(None))
            decide = _DECIDE.match(path)
            if decide and method == "POST":
                return await self.decide(request, session, decide.group(1), decide.group(2))
        return error(404, "NOT_FOUND", "no such page")

    # -- login ---------------------------------------------------------------------------------

    async def login(self, request: Request) -> Response:
        form = request.form()
        role = form.get("role", "")
        lifetime = self.sessions.lifetime
        if role == MERCHANT:
            merchant_id = form.get("merchant_id", "").strip()
            engine = self.nodes.get(merchant_id)
            key = form.get("key", "")
            if engine is not None and await asyncio.to_thread(
                logins.merchant_key_is_admin, engine, key
            ):
                token = self.sessions.issue(MERCHANT, merchant_id)
                return redirect(f"/shop/{merchant_id}", [cookie(COOKIE, token, lifetime)])
        elif (
            role == OPERATOR
            and self.exchange is not None
            and form.get("name", "") == self.operator_name
            and logins.operator_password_ok(self.operator_password_sha256, form.get("password", ""))
        ):
            token = self.sessions.issue(OPERATOR, self.operator_name)
            return redirect("/district", [cookie(COOKIE, token, lifetime)])
        log.info("console login refused (role %r)", role)
        return redirect("/?failed=1")

    # -- data ----------------------------------------------------------------------------------

    async def shop_figures(self, merchant_id: str) -> dict[str, Any]:
        engine = self.nodes[merchant_id]
        return await asyncio.to_thread(merchant_view.figures, engine, merchant_id, self.clock())

    async def district_figures(self) -> dict[str, Any]:
        assert self.exchange is not None
        return await asyncio.to_thread(operator_view.figures, self.exchange, self.clock())

    async def alerts(self, merchant_id: str | None) -> list[dict[str, Any]]:
        engine = self.nodes[merchant_id] if merchant_id else self.exchange
        assert engine is not None
        return await asyncio.to_thread(recent_alerts, engine)

    async def decide(
        self, request: Request, session: Session, period: str, decision: str
    ) -> Response:
        if request.headers.get("x-console-request") != "1":
            return error(403, "CSRF_HEADER_MISSING", "decisions are made from the console page")
        if self.temporal is None or self.exchange is None:
            return error(503, "TEMPORAL_NOT_CONFIGURED", "this console has no Temporal")
        if self._temporal_client is None:
            self._temporal_client = await self.temporal()
        note = str(request.json().get("note", ""))[:500]
        status = await operator_view.decide(
            self._temporal_client, self.exchange, period, decision, session.subject, note
        )
        return json_response({"period": period, "decision": decision, "state": status.state})

    # -- live ----------------------------------------------------------------------------------

    def _stream_of(self, request: Request, session: Session | None) -> AsyncIterator[str] | None:
        if request.method != "GET" or session is None:
            return None
        shop = _SHOP.match(request.path)
        if shop and shop.group(1) and shop.group(3) == "/events":
            merchant_id = shop.group(2)
            if session.may_see_shop(merchant_id):
                return self._live(lambda: self.shop_figures(merchant_id))
        if request.path == "/api/district/events" and session.role == OPERATOR:
            return self._live(self.district_figures)
        return None

    async def _live(self, read: Callable[[], Awaitable[dict[str, Any]]]) -> AsyncIterator[str]:
        """The figures now, then again whenever they change (read every refresh_seconds)."""
        last = ""
        while True:
            figures = await read()
            figures.pop("as_of", None)
            text = json.dumps(figures, ensure_ascii=False, sort_keys=True)
            digest = hashlib.sha256(text.encode()).hexdigest()
            if digest != last:
                last = digest
                yield text
            await asyncio.sleep(self.refresh_seconds)

    def static(self, name: str) -> Response:
        files = {
            "console.js": (STATIC / "console.js", "text/javascript; charset=utf-8"),
            "console.css": (STATIC / "console.css", "text/css; charset=utf-8"),
            "echarts.min.js": (self.echarts_path, "text/javascript; charset=utf-8"),
        }
        if name not in files or not files[name][0].exists():
            return error(404, "NOT_FOUND", "no such file")
        path, kind = files[name]
        return Response(body=path.read_bytes(), content_type=kind)


async def _until_disconnect(events: AsyncIterator[str], receive: Receive) -> AsyncIterator[str]:
    """Stops the stream when the browser goes away."""
    gone = asyncio.ensure_future(_disconnected(receive))
    try:
        while not gone.done():
            following = asyncio.ensure_future(anext(events))
            await asyncio.wait({following, gone}, return_when=asyncio.FIRST_COMPLETED)
            if not following.done():
                following.cancel()
                return
            yield following.result()
    finally:
        gone.cancel()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


def _forbidden(api: bool, lang: str) -> Response:
    if api:
        return error(403, "FORBIDDEN", "log in as this shop's merchant or as the operator")
    return Response(403, pages.forbidden(lang))


def _http_status(err: CoalitionError) -> int:
    return {
        "INVALID_ARGUMENT": 400,
        "NOT_FOUND": 404,
        "PERMISSION_DENIED": 403,
        "UNAUTHENTICATED": 401,
        "FAILED_PRECONDITION": 409,
    }.get(err.code.name, 500)
