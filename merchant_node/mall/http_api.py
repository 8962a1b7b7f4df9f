"""The member-facing HTTP/JSON API: MallService over the Connect protocol, on a port of its own.

Connect (connectrpc, the Connect project's own Python implementation, conformance-tested) is
chosen over google.api.http transcoding because it serves the same .proto with no second
mapping to keep in step and no proxy (Envoy) in front: a unary call is a plain
`POST /coalition.merchant.v1.MallService/<Method>` with a JSON body, which a mini-program's
wx.request or any fetch() makes. connectrpc speaks its own protobuf runtime; the two codecs
below let it carry the google.protobuf messages the gRPC side already uses, so both transports
run the very same methods (api.py). Errors carry the gRPC code's Connect name, the message and a
google.rpc.ErrorInfo detail (its reason) — see docs/mall.md.

CORS: browsers (H5 pages, the mini-program's web-view) preflight with OPTIONS; allowed origins
are configured (empty: none, "*": any). uvicorn serves the ASGI app inside the node's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any

import uvicorn
from connectrpc.code import Code
from connectrpc.errors import ConnectError, ErrorDetail
from connectrpc.method import IdempotencyLevel, MethodInfo, StreamType
from connectrpc.server import ConnectASGIApplication, Endpoint
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass
from google.rpc import error_details_pb2
from protobuf.wkt import Any as ConnectAny

from coalition.merchant.v1 import mall_pb2 as pb
from coalition_kernel.errors import ERROR_DOMAIN, CoalitionError
from merchant_node.mall.api import Method

SERVICE = pb.DESCRIPTOR.services_by_name["MallService"]


class _JsonCodec:
    def name(self) -> str:
        return "json"

    def encode(self, message: Message) -> bytes:
        return json_format.MessageToJson(message, indent=None).encode()

    def decode(self, data: bytes | bytearray, message_class: type[Message]) -> Message:
        msg = message_class()
        try:
            json_format.Parse(bytes(data) or b"{}", msg, ignore_unknown_fields=True)
        except json_format.ParseError as exc:
            raise ConnectError(Code.INVALID_ARGUMENT, f"malformed JSON request: {exc}") from exc
        return msg


class _BinaryCodec:
    def name(self) -> str:
        return "proto"

    def encode(self, message: Message) -> bytes:
        return message.SerializeToString()

    def decode(self, data: bytes | bytearray, message_class: type[Message]) -> Message:
        msg = message_class()
        try:
            msg.ParseFromString(bytes(data))
        except DecodeError as exc:
            raise ConnectError(Code.INVALID_ARGUMENT, "malformed protobuf request") from exc
        return msg


def connect_error(err: CoalitionError) -> ConnectError:
    info = error_details_pb2.ErrorInfo(
        reason=err.reason, domain=ERROR_DOMAIN, metadata=err.metadata
    )
    detail = ConnectAny(
        type_url="type.googleapis.com/google.rpc.ErrorInfo", value=info.SerializeToString()
    )
    return ConnectError(Code(err.code.name.lower()), err.message, details=[ErrorDetail(detail)])


class _MallApp(ConnectASGIApplication):  # type: ignore[type-arg]
    @property
    def path(self) -> str:
        return f"/{SERVICE.full_name}"


def connect_app(methods: dict[str, Method]) -> _MallApp:
    def endpoint(name: str) -> Any:
        desc = SERVICE.methods_by_name[name]
        info = MethodInfo(
            name=name,
            service_name=SERVICE.full_name,
            input=GetMessageClass(desc.input_type),
            output=GetMessageClass(desc.output_type),
            idempotency_level=IdempotencyLevel.UNKNOWN,
            stream_type=StreamType.UNARY,
        )
        method = methods[name]

        async def call(req: Any, ctx: Any) -> Any:
            headers = {k.lower(): v for k, v in ctx.request_headers.items()}
            try:
                return await method(req, headers)
            except CoalitionError as err:
                raise connect_error(err) from None

        return Endpoint.unary(info, call)

    endpoints: dict[str, Any] = {
        f"/{SERVICE.full_name}/{m.name}": endpoint(m.name) for m in SERVICE.methods
    }
    return _MallApp(
        service=object(),
        endpoints=lambda _svc: endpoints,
        codecs=[_BinaryCodec(), _JsonCodec()],  # type: ignore[list-item]
    )


class Cors:
    """Answers preflights and adds Access-Control-* headers for the allowed origins."""

    ALLOW_HEADERS = b"authorization, content-type, connect-protocol-version, connect-timeout-ms"

    def __init__(self, app: Any, origins: Iterable[str]) -> None:
        self.app = app
        self.origins = frozenset(origins)

    def _allowed(self, origin: str) -> bool:
        return bool(origin) and ("*" in self.origins or origin in self.origins)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = dict(scope.get("headers", ())).get(b"origin", b"").decode()
        cors = (
            [
                (b"access-control-allow-origin", origin.encode()),
                (b"vary", b"Origin"),
            ]
            if self._allowed(origin)
            else []
        )
        if scope["method"] == "OPTIONS":
            status = 204 if cors else 403
            headers = (
                cors
                + [
                    (b"access-control-allow-methods", b"POST, GET, OPTIONS"),
                    (b"access-control-allow-headers", self.ALLOW_HEADERS),
                    (b"access-control-max-age", b"600"),
                ]
                if cors
                else []
            )
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_with_cors(message: Any) -> None:
            if message["type"] == "http.response.start" and cors:
                message = dict(message, headers=[*message.get("headers", []), *cors])
            await send(message)

        await self.app(scope, receive, send_with_cors)


class HttpApi:
    """The Connect app served by uvicorn on `listen` ("host:port"; port 0 picks one)."""

    def __init__(self, methods: dict[str, Method], listen: str, origins: Iterable[str]) -> None:
        host, _, port = listen.rpartition(":")
        self.app = Cors(connect_app(methods), origins)
        config = uvicorn.Config(
            self.app,
            host=host or "127.0.0.1",
            port=int(port),
            log_level="warning",
            lifespan="off",
            access_log=False,
        )
        self.server = uvicorn.Server(config)
        self.task: asyncio.Task[None] | None = None
        self.port = 0

    async def start(self) -> int:
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            if self.task.done():
                self.task.result()  # raises why it could not start (e.g. the port is taken)
                raise OSError("the mall's HTTP server stopped before it started")
            await asyncio.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self.task is None:
            return
        self.server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
