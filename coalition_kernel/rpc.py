"""Serving gRPC the same way everywhere: one translation of errors, bodies and deadlines.

Handlers are registered from the service descriptor with raw-bytes deserialization, so that a
truncated or garbage body is answered INVALID_ARGUMENT (grpc's own deserializer would answer a
bare INTERNAL). Blocking ledger work runs on a thread pool, never on the event loop. Every call
leaves one structured log line (`coalition.rpc`). Channels and servers share one set of
connection options (`channel_options`, `server_options`): reconnect backoff capped near a second
and keepalive pings each side accepts, so a peer's restart costs seconds, not gRPC's default
two minutes.
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

from coalition_kernel import db, telemetry
from coalition_kernel.envelope import header_request_id
from coalition_kernel.errors import (
    CoalitionError,
    DeadlineExceeded,
    InvalidArgument,
    to_grpc_status,
)

log = logging.getLogger(__name__)
rpc_log = logging.getLogger("coalition.rpc")
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


# Client side: after a peer restarts, reconnect within about a second (gRPC's default backoff grows
# to 120 s); ping an idle connection every 30 s so a silently dead peer is noticed in 40 s.
KEEPALIVE_TIME_MS = 30_000
CHANNEL_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.min_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 1_000),
    ("grpc.keepalive_time_ms", KEEPALIVE_TIME_MS),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
)
# Server side: accept those pings (gRPC's default answers pings more often than every 5 minutes
# on an idle connection with GOAWAY "too_many_pings"); half the client's interval leaves margin.
SERVER_OPTIONS: tuple[tuple[str, Any], ...] = (
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", KEEPALIVE_TIME_MS // 2),
    ("grpc.http2.max_ping_strikes", 0),
)


def channel_options(*extra: tuple[str, Any]) -> list[tuple[str, Any]]:
    """The options every client channel of the coalition uses, plus the caller's own (e.g. a
    retry service config); a later option of the same name wins."""
    merged = dict(CHANNEL_OPTIONS)
    merged.update(extra)
    return list(merged.items())


def insecure_or_secure_channel(
    target: str,
    credentials: grpc.ChannelCredentials | None = None,
    *extra: tuple[str, Any],
) -> grpc.aio.Channel:
    """An asyncio channel with `channel_options`, TLS when `credentials` are given."""
    options = channel_options(*extra)
    interceptors = telemetry.client_interceptors() or None  # carries the trace context
    if credentials is not None:
        return grpc.aio.secure_channel(
            target, credentials, options=options, interceptors=interceptors
        )
    return grpc.aio.insecure_channel(target, options=options, interceptors=interceptors)


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
            _guarded(request_type, handlers[method.name], f"/{service.full_name}/{method.name}"),
            request_deserializer=None,
            response_serializer=lambda m: m.SerializeToString(),
        )
    return grpc.method_handlers_generic_handler(service.full_name, methods)


def _guarded(request_type: type[Message], handler: Handler, method: str):  # type: ignore[no-untyped-def]
    fields = request_type.DESCRIPTOR.fields_by_name
    request_id_of = _request_id_reader(plain="request_id" in fields, signed="envelope" in fields)

    async def call(raw: bytes, context: grpc.aio.ServicerContext) -> Message:
        started = time.perf_counter()
        status, reason = "OK", ""
        request: Message | None = None
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
            status, reason = err.code.name, err.reason
            await context.abort_with_status(to_grpc_status(err))
        except asyncio.CancelledError:
            status = "CANCELLED"
            raise
        except BaseException:  # an abort by the handler itself, or a bug (answered UNKNOWN)
            code = context.code()
            status = code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"
            raise
        finally:
            if rpc_log.isEnabledFor(logging.INFO):
                _log_call(method, context, request_id_of(request), status, reason, started)
        raise AssertionError("unreachable")

    return call


def _request_id_reader(*, plain: bool, signed: bool) -> Callable[[Message | None], str]:
    """How to find a request's id for the log: its own `request_id` field, or the header of the
    signed message it carries (field 1 of every command, read without knowing its type)."""

    def read(request: Message | None) -> str:
        if request is None:
            return ""
        if plain:
            return str(request.request_id)  # type: ignore[attr-defined]
        if signed:
            return header_request_id(request.envelope.payload)  # type: ignore[attr-defined]
        return ""

    return read


def _log_call(
    method: str,
    context: grpc.aio.ServicerContext,
    request_id: str,
    status: str,
    reason: str,
    started: float,
) -> None:
    """One line per call: what was called, by whom, how it ended and how long it took. Never
    payloads or metadata values (API keys, admin tokens travel there)."""
    latency_ms = round((time.perf_counter() - started) * 1000, 3)
    fields = {
        "method": method,
        "peer": context.peer(),
        "request_id": request_id,
        "status": status,
        "reason": reason,
        "latency_ms": latency_ms,
    }
    rpc_log.info(
        "rpc method=%s peer=%s request_id=%s status=%s reason=%s latency_ms=%.3f",
        method,
        fields["peer"],
        request_id or "-",
        status,
        reason or "-",
        latency_ms,
        extra={"rpc": fields},
    )


class PortInUse(OSError):
    """The listen address is taken (or not this machine's): refused rather than shared."""


@dataclass
class Server:
    """A grpc.aio server with health, reflection and graceful shutdown.

    It refuses a port another process holds (gRPC would otherwise share it silently through
    SO_REUSEPORT and spread calls over two different servers), unless `reuse_port` says several
    processes of this same server were started to share it on purpose (`--processes N`).
    `interceptors` (grpc.aio.ServerInterceptor) see every call; metrics and traces are not one
    (coalition_kernel.telemetry wraps the handlers instead, which costs less per call).
    """

    handlers: list[tuple[ServiceDescriptor, grpc.GenericRpcHandler]]
    listen: str = "127.0.0.1:0"
    options: list[tuple[str, Any]] = field(default_factory=list)
    credentials: grpc.ServerCredentials | None = None
    cleanups: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    reuse_port: bool = False
    interceptors: list[grpc.aio.ServerInterceptor] = field(default_factory=list)
    # Metrics and tracing (coalition_kernel.telemetry, configured by the environment); off only
    # for a benchmark's baseline.
    telemetry: bool = True
    server: grpc.aio.Server | None = None
    port: int = 0
    _health: health.aio.HealthServicer | None = None

    async def start(self) -> int:
        options = dict(SERVER_OPTIONS)
        options["grpc.so_reuseport"] = 1 if self.reuse_port else 0
        options.update(self.options)
        measured = None
        if self.telemetry:
            first = self.handlers[0][0].full_name if self.handlers else "coalition"
            measured = telemetry.server_wrapper(first)
        self.server = grpc.aio.server(
            options=list(options.items()), interceptors=list(self.interceptors) or None
        )
        names = []
        for descriptor, handler in self.handlers:
            self.server.add_generic_rpc_handlers((measured(handler) if measured else handler,))
            names.append(descriptor.full_name)
        self._health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self._health, self.server)
        reflection.enable_server_reflection(
            [*names, health.SERVICE_NAME, reflection.SERVICE_NAME], self.server
        )
        try:
            if self.credentials is not None:
                self.port = self.server.add_secure_port(self.listen, self.credentials)
            else:
                self.port = self.server.add_insecure_port(self.listen)
        except RuntimeError:  # grpc's "Failed to bind": the cause is only in its C log
            self.port = 0
        if not self.port:
            raise PortInUse(
                f"cannot listen on {self.listen}: the address is in use by another process "
                "(or is not an address of this machine); stop the other server or choose "
                "another port. To run several processes of one server on one port, start "
                "them together with --processes N."
            )
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
