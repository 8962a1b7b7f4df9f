"""Just enough HTTP over ASGI for the console: requests, responses, cookies, server-sent events.
(The console has a handful of routes; uvicorn serves them, no framework is needed.)"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:",
    ),
]


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    cookies: dict[str, str]
    body: bytes = b""

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in urllib.parse.parse_qs(self.body.decode()).items()}

    def json(self) -> dict[str, Any]:
        try:
            data = json.loads(self.body or b"{}")
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}


async def read_request(scope: dict[str, Any], receive: Receive) -> Request:
    headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
    cookie = SimpleCookie()
    cookie.load(headers.get("cookie", ""))
    body = b""
    if scope["method"] in ("POST", "PUT"):
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > 64 * 1024:
                break  # a console form is small; more is refused by the route
            if not message.get("more_body"):
                break
    query = {
        k: v[0] for k, v in urllib.parse.parse_qs(scope.get("query_string", b"").decode()).items()
    }
    return Request(
        scope["method"],
        scope["path"],
        query,
        headers,
        {k: m.value for k, m in cookie.items()},
        body,
    )


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)

    async def send(self, send: Send) -> None:
        headers = [
            (b"content-type", self.content_type.encode()),
            (b"content-length", str(len(self.body)).encode()),
            (b"cache-control", b"no-store"),
            *SECURITY_HEADERS,
            *self.headers,
        ]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})


def json_response(data: Any, status: int = 200) -> Response:
    body = json.dumps(data, ensure_ascii=False, sort_keys=True).encode()
    return Response(status, body, "application/json; charset=utf-8")


def error(status: int, reason: str, message: str) -> Response:
    return json_response({"error": reason, "message": message}, status)


def redirect(location: str, cookies: list[str] = ()) -> Response:  # type: ignore[assignment]
    headers = [(b"location", location.encode())]
    headers += [(b"set-cookie", c.encode()) for c in cookies]
    return Response(303, b"", "text/plain", headers)


def cookie(name: str, value: str, max_age: int) -> str:
    return f"{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict"


async def send_events(send: Send, events: AsyncIterator[str]) -> None:
    """A server-sent events stream: each item is one `data:` event (JSON text)."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/event-stream; charset=utf-8"),
                (b"cache-control", b"no-store"),
                (b"x-accel-buffering", b"no"),
                *SECURITY_HEADERS,
            ],
        }
    )
    async for data in events:
        await send(
            {"type": "http.response.body", "body": f"data: {data}\n\n".encode(), "more_body": True}
        )
    await send({"type": "http.response.body", "body": b""})
