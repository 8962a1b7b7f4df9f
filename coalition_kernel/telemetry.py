"""Metrics (Prometheus) and traces (OpenTelemetry) for every coalition process.

A wrapper around every gRPC service's handlers counts and times every call (`coalition_rpc_*`)
and opens a SERVER span whose parent is the W3C trace context the caller sent in its metadata
(`traceparent`); one
client interceptor on every coalition channel opens a CLIENT span and injects that context, so a
cross-shop redemption is one trace: the acquirer's node → the exchange → the issuer's node.
Business figures (points issued, open holds, outbox backlog, settlement state) are read from the
database at scrape time by collectors each server registers (`register_figures`): they are exact
and the same whichever replica is scraped.

Configured by the process's environment (so the node, the exchange and the worker need no flag):
  COALITION_TELEMETRY=off       no metrics, no traces (the benchmark's baseline)
  COALITION_METRICS_PORT=N      serve /metrics on that port (COALITION_METRICS_HOST, default
                                127.0.0.1); unset: the `metrics_port` key of node.toml or
                                exchange.toml (`use_metrics_port`), else metrics are kept but
                                not served
  COALITION_TRACE_FILE=path     export spans as JSON lines to that file
  OTEL_EXPORTER_OTLP_ENDPOINT   export spans over OTLP/gRPC (e.g. to a collector, Jaeger, Tempo)
  OTEL_SERVICE_NAME             the span's service.name (default: the process's first service)
Tracing is on when an exporter is configured, or forced by COALITION_TRACING=on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import REGISTRY, Counter, Histogram, start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

# Latency buckets from a cached read (a millisecond) to a slow issuer behind a deadline.
_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
RPC_CALLS = Counter(
    "coalition_rpc_calls", "gRPC calls served, by method and status code", ["method", "code"]
)
RPC_LATENCY = Histogram(
    "coalition_rpc_latency_seconds", "Time to answer a gRPC call", ["method"], buckets=_BUCKETS
)
CLIENT_CALLS = Counter(
    "coalition_rpc_client_calls",
    "gRPC calls this process made to other coalition services",
    ["method", "code"],
)


@dataclass(frozen=True)
class Settings:
    enabled: bool
    metrics_port: int | None
    metrics_host: str
    tracing: bool
    trace_file: str | None
    otlp_endpoint: str | None
    service_name: str | None

    @classmethod
    def from_env(
        cls, env: dict[str, str] | None = None, configured_port: int | None = None
    ) -> Settings:
        """COALITION_METRICS_PORT wins over the port a config file names (`configured_port`)."""
        env = dict(os.environ if env is None else env)
        port = env.get("COALITION_METRICS_PORT", "").strip()
        trace_file = env.get("COALITION_TRACE_FILE") or None
        otlp = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or None
        forced = env.get("COALITION_TRACING", "").lower()
        return cls(
            enabled=env.get("COALITION_TELEMETRY", "on").lower() not in ("off", "0", "false"),
            metrics_port=int(port) if port else configured_port,
            metrics_host=env.get("COALITION_METRICS_HOST", "127.0.0.1"),
            tracing=forced == "on" or (forced != "off" and bool(trace_file or otlp)),
            trace_file=trace_file,
            otlp_endpoint=otlp,
            service_name=env.get("OTEL_SERVICE_NAME") or None,
        )


class _State:
    lock = threading.Lock()
    settings: Settings | None = None
    metrics_port: int | None = None
    configured_port: int | None = None  # from node.toml / exchange.toml (use_metrics_port)
    provider: TracerProvider | None = None


def setup(default_service: str) -> Settings:
    """Reads the environment once per process: starts /metrics and the span exporter."""
    with _State.lock:
        if _State.settings is not None:
            return _State.settings
        settings = Settings.from_env(configured_port=_State.configured_port)
        _State.settings = settings
        if not settings.enabled:
            return settings
        if settings.metrics_port is not None:
            _State.metrics_port = serve_metrics(settings.metrics_port, settings.metrics_host)
        if settings.tracing:
            _State.provider = _tracer_provider(settings, default_service)
            trace.set_tracer_provider(_State.provider)
        return settings


def use_metrics_port(port: int) -> None:
    """The `metrics_port` a server's config file names (0: none); called before the server
    starts, since the first server of a process reads the settings once."""
    with _State.lock:
        _State.configured_port = port or None


def serve_metrics(port: int, host: str = "127.0.0.1") -> int | None:
    """Serves /metrics in a thread; returns the port, or None when it is taken (a second
    process of a `--processes N` group: the first one's metrics are served)."""
    try:
        server, _thread = start_http_server(port, addr=host)
    except OSError as exc:
        log.warning("metrics not served on %s:%s: %s", host, port, exc)
        return None
    bound = int(server.server_port)
    log.info("metrics served on http://%s:%d/metrics", host, bound)
    return bound


def metrics_port() -> int | None:
    return _State.metrics_port


def _tracer_provider(settings: Settings, default_service: str) -> TracerProvider:
    name = settings.service_name or default_service
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    if settings.trace_file:
        provider.add_span_processor(BatchSpanProcessor(JsonLinesExporter(settings.trace_file)))
    if settings.otlp_endpoint:
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError:  # the exporter is an optional dependency (the `otlp` extra)
            log.warning("OTEL_EXPORTER_OTLP_ENDPOINT set but the OTLP exporter is not installed")
        else:
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return provider


class JsonLinesExporter(SpanExporter):
    """Spans as one JSON object a line, appended to a file: enough to follow a trace on a
    machine without a collector, and what the trace test reads."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = [json.dumps(_span_record(s), sort_keys=True) + "\n" for s in spans]
        with self.lock, open(self.path, "a", encoding="utf-8") as out:
            out.writelines(lines)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def _span_record(span: ReadableSpan) -> dict[str, Any]:
    ctx = span.context
    parent = span.parent
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": f"{ctx.trace_id:032x}" if ctx else "",
        "span_id": f"{ctx.span_id:016x}" if ctx else "",
        "parent_span_id": f"{parent.span_id:016x}" if parent else "",
        "service": str(span.resource.attributes.get("service.name", "")),
        "start_ns": span.start_time,
        "end_ns": span.end_time,
        "status": span.status.status_code.name,
        "attributes": {k: str(v) for k, v in (span.attributes or {}).items()},
    }


# -- interceptors --------------------------------------------------------------------------


def server_wrapper(
    default_service: str,
) -> Callable[[grpc.GenericRpcHandler], grpc.GenericRpcHandler] | None:
    """What a server wraps each of its services' handlers in to count, time and (with tracing)
    trace every call; None when telemetry is off. A wrapper, not a grpc.aio interceptor: an
    interceptor makes grpc.aio run a coroutine chain to find every call's handler, which cost
    about a fifth of a node's CPU per Earn (bench/telemetry_bench.py)."""
    settings = setup(default_service)
    if not settings.enabled:
        return None
    wrap = _Wrap(settings.tracing)
    return lambda handler: Measured(handler, wrap)


def client_interceptors() -> list[grpc.aio.ClientInterceptor]:
    """Channels inject the trace context only where tracing is on (it costs a span a call)."""
    settings = _State.settings or Settings.from_env()
    return [ClientTelemetry()] if settings.enabled and settings.tracing else []


def _metadata_getter(metadata: Any) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, value in metadata or ():
        if key in ("traceparent", "tracestate"):
            found[key] = value if isinstance(value, str) else value.decode()
    return found


class Measured(grpc.GenericRpcHandler):
    """A service's handlers, each unary method wrapped once (on its first call) to be counted,
    timed and, with tracing, run inside a SERVER span continuing the caller's trace (its
    context is current while the handler runs, so the handler's own calls to other services
    are children of it). Only methods the service knows are kept: an unknown name costs a
    lookup, not an entry."""

    def __init__(self, inner: grpc.GenericRpcHandler, wrap: _Wrap) -> None:
        self.inner = inner
        self.wrap = wrap
        self.wrapped: dict[str, grpc.RpcMethodHandler] = {}

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> Any:
        method = handler_call_details.method  # type: ignore[attr-defined]
        known = self.wrapped.get(method)
        if known is not None:
            return known
        handler = self.inner.service(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler
        wrapped = self.wrap(method, handler)
        self.wrapped[method] = wrapped
        return wrapped


class _Wrap:
    def __init__(self, tracing: bool) -> None:
        self.tracer = trace.get_tracer("coalition.rpc") if tracing else None

    def __call__(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        inner = handler.unary_unary
        latency = RPC_LATENCY.labels(method)
        ok = RPC_CALLS.labels(method, "OK")
        tracer = self.tracer

        async def behaviour(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            code = "OK"
            token = None
            span = None
            if tracer is not None:
                parent = propagate.extract(_metadata_getter(context.invocation_metadata()))
                span = tracer.start_span(method, context=parent, kind=SpanKind.SERVER)
                token = otel_context.attach(trace.set_span_in_context(span, parent))
            try:
                return await inner(request, context)  # type: ignore[misc]
            except BaseException:
                found = context.code()
                code = found.name if isinstance(found, grpc.StatusCode) else "UNKNOWN"
                raise
            finally:
                latency.observe(time.perf_counter() - started)
                (ok if code == "OK" else RPC_CALLS.labels(method, code)).inc()
                if span is not None:
                    span.set_attribute("rpc.grpc.status_code", code)
                    if code != "OK":
                        span.set_status(Status(StatusCode.ERROR, code))
                    span.end()
                if token is not None:
                    otel_context.detach(token)

        return grpc.unary_unary_rpc_method_handler(
            behaviour,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


class ClientTelemetry(grpc.aio.UnaryUnaryClientInterceptor):
    """A CLIENT span around each call, its context sent as `traceparent` metadata."""

    def __init__(self) -> None:
        self.tracer = trace.get_tracer("coalition.rpc")

    async def intercept_unary_unary(self, continuation, client_call_details, request):  # type: ignore[no-untyped-def]
        method = client_call_details.method
        name = method.decode() if isinstance(method, bytes) else str(method)
        with self.tracer.start_as_current_span(name, kind=SpanKind.CLIENT) as span:
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            metadata = grpc.aio.Metadata(*(client_call_details.metadata or ()))
            for key, value in carrier.items():
                metadata.add(key, value)
            details = grpc.aio.ClientCallDetails(
                client_call_details.method,
                client_call_details.timeout,
                metadata,
                client_call_details.credentials,
                client_call_details.wait_for_ready,
            )
            call = await continuation(details, request)
            code = "OK"
            try:
                await call
            except grpc.aio.AioRpcError as err:
                code = err.code().name
                span.set_status(Status(StatusCode.ERROR, code))
                raise
            finally:
                CLIENT_CALLS.labels(name, code).inc()
                span.set_attribute("rpc.grpc.status_code", code)
            return call


# -- business figures ------------------------------------------------------------------------


class _Figures(Collector):
    """The business figures of every server in this process, as one collector: several nodes
    in one process (tests, the demo) each add their source; their samples share families."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sources: list[Collector] = []

    def describe(self) -> list[Metric]:
        return []  # names are only known from the databases, at scrape time

    def collect(self) -> Iterator[Metric]:
        with self.lock:
            sources = list(self.sources)
        families: dict[str, Metric] = {}
        for source in sources:
            for metric in source.collect():
                known = families.get(metric.name)
                if known is None:
                    families[metric.name] = metric
                else:
                    known.samples.extend(metric.samples)
        yield from families.values()


_FIGURES = _Figures()
REGISTRY.register(_FIGURES)


def register_figures(collector: Collector) -> Callable[[], Awaitable[None]]:
    """Adds a source of business figures to this process's /metrics; returns its removal
    (a server's cleanup: tests start and stop many servers in one process)."""
    with _FIGURES.lock:
        _FIGURES.sources.append(collector)

    async def unregister() -> None:
        with _FIGURES.lock, contextlib.suppress(ValueError):  # already removed
            _FIGURES.sources.remove(collector)

    return unregister


def flush_traces(timeout_ms: int = 5_000) -> None:
    if _State.provider is not None:
        _State.provider.force_flush(timeout_ms)
