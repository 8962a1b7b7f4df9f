"""Serving gRPC the same way everywhere: one translation of errors, bodies and deadlines.

Handlers are registered from the service descriptor with raw-bytes deserialization, so that a
truncated or garbage body is answered INVALID_ARGUMENT (grpc's own deserializer would answer a
bare INTERNAL). Blocking ledger work runs on a thread pool, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import signal
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from coalition_kernel import db
from coalition_kernel.errors import (
    CoalitionError,
    DeadlineExceeded,
    InvalidArgument,
    to_grpc_status,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
Handler = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Message]]


class Offload:
    """Runs blocking work off the event loop, on a pool sized to the DB connection pool."""

    def __init__(self, workers: int) -> None:
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ledger")

    async def __call__(self, fn: Callable[..., T], *args: Any) -> T:
        # Carry the caller's context (its deadline) into the worker thread.
        context = contextvars.copy_context()
        return await asyncio.get_running_loop().run_in_executor(self.pool, context.run, fn, *args)

    def shutdown(self) -> None:
        self.pool.shutdown(wait=True)


def generic_handler(
    service: ServiceDescriptor, handlers: dict[str, Handler]
) -> grpc.GenericRpcHandler:
    missing = {m.name for m in service.methods} - handlers.keys()
    if missing:
        raise ValueError(f"{service.full_name} lacks handlers for {sorted(missing)}")
    methods = {}
    for method in service.methods:
        request_type = GetMessageClass(method.input_type)
        methods[method.name] = grpc.unary_unary_rpc_method_handler(
            _guarded(request_type, handlers[method.name]),
            request_deserializer=None,
            response_serializer=lambda m: m.SerializeToString(),
        )
    return grpc.method_handlers_generic_handler(service.full_name, methods)


def _guarded(request_type: type[Message], handler: Handler):  # type: ignore[no-untyped-def]
    async def call(raw: bytes, context: grpc.aio.ServicerContext) -> Message:
        try:
            remaining = context.time_remaining()
            if remaining is not None:
                if remaining <= 0:
                    raise DeadlineExceeded(
                        "DEADLINE_EXCEEDED", "the call's deadline passed before work began"
                    )
                db.deadline.set(time.monotonic() + remaining)
            request = request_type()
            try:
                request.ParseFromString(raw)
            except DecodeError as exc:
                raise InvalidArgument(
                    "MALFORMED_REQUEST",
                    f"the request body is not a valid {request_type.DESCRIPTOR.full_name}",
                ) from exc
            return await handler(request, context)
        except CoalitionError as err:
            await context.abort_with_status(to_grpc_status(err))
        raise AssertionError("unreachable")

    return call


@dataclass
class Server:
    """A grpc.aio server with health, reflection and graceful shutdown."""

    handlers: list[tuple[ServiceDescriptor, grpc.GenericRpcHandler]]
    listen: str = "127.0.0.1:0"
    options: list[tuple[str, Any]] = field(default_factory=list)
    credentials: grpc.ServerCredentials | None = None
    cleanups: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    server: grpc.aio.Server | None = None
    port: int = 0
    _health: health.aio.HealthServicer | None = None

    async def start(self) -> int:
        self.server = grpc.aio.server(options=self.options)
        names = []
        for descriptor, handler in self.handlers:
            self.server.add_generic_rpc_handlers((handler,))
            names.append(descriptor.full_name)
        self._health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self.server)
        reflection.enable_server_reflection(
            [*names, health.SERVICE_NAME, reflection.SERVICE_NAME], self.server
        )
        if self.credentials is not None:
            self.port = self.server.add_secure_port(self.listen, self.credentials)
        else:
            self.port = self.server.add_insecure_port(self.listen)
        if not self.port:
            raise OSError(f"cannot listen on {self.listen}")
        await self.server.start()
        for name in ["", *names]:
            await self._health.set(name, health_pb2.HealthCheckResponse.SERVING)
        return self.port

    async def stop(self, grace: float = 5.0) -> None:
        """Stops taking calls, lets in-flight ones finish within `grace` seconds."""
        if self.server is None:
            return
        if self._health is not None:
            await self._health.enter_graceful_shutdown()
        await self.server.stop(grace)
        for cleanup in self.cleanups:
            await cleanup()

    async def serve_until_signalled(self, grace: float = 5.0) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("shutting down: finishing in-flight calls for up to %.0fs", grace)
        await self.stop(grace)
