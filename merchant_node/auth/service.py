"""Authenticating the node's callers, and the merchant's management of its API clients.

**The hook.** Every gRPC service of the node (MerchantNodeService, RulesAdminService, and the
new rooms' services: marketing, mall, console data) authenticates through `NodeAuth.guard`,
which `merchant_node/server.py` builds once per server. A new service wires it like this::

    from merchant_node.auth.domain import ADMIN, POS, READ
    SCOPES = {"ListOffers": READ, "PlaceOrder": POS, "PutItem": ADMIN}
    handlers.append((SERVICE, generic_handler(SERVICE, auth.guard(servicer.handlers(), SCOPES))))

Each method needs the scope the map names (a method left out needs `admin`). Inside a method,
`current_caller()` is the proven client (its key id, name, scopes and limits: e.g.
`current_caller().limits.check_order("amount_fen", req.amount_fen)`); it is also visible in
blocking work run through the server's Offload (the context is carried over).

Callers send gRPC metadata `authorization: Bearer cpk_<key id>_<secret>`. Refusals:
no key → UNAUTHENTICATED/API_KEY_REQUIRED; malformed or unknown → API_KEY_INVALID; revoked →
API_KEY_REVOKED; a key without the method's scope → PERMISSION_DENIED/SCOPE_DENIED (metadata
`scope` names it); over the client's `calls_per_minute` → RESOURCE_EXHAUSTED/RATE_LIMITED.
A refusal happens before the method runs, so it changes nothing.

Verified clients are cached for `cache_seconds` (2 s by default): a revocation by the CLI (another
process) takes effect within that time, one made through `NodeAuth.revoke` at once. Unknown key
ids are cached too, so a flood of made-up keys costs one indexed read per id per interval.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
from sqlalchemy import Engine

from coalition_kernel.db import run_in_transaction, utc_now
from coalition_kernel.errors import InvalidArgument, NotFound, ResourceExhausted, Unauthenticated
from coalition_kernel.rpc import Handler, Offload
from merchant_node.auth import domain, store
from merchant_node.auth.domain import ADMIN, NO_LIMITS, SCOPES, ApiClient, IssuedKey, Limits

_CALLER: contextvars.ContextVar[ApiClient] = contextvars.ContextVar("node_api_caller")
_CACHE_MAX = 10_000


def current_caller() -> ApiClient:
    """The client proven for the call being served (set by `NodeAuth.guard`)."""
    try:
        return _CALLER.get()
    except LookupError:
        raise Unauthenticated(
            "API_KEY_REQUIRED", "this method was reached without caller authentication"
        ) from None


def anonymous(defaults: Limits) -> ApiClient:
    """The caller of a node started with --insecure-no-auth: every scope, the node's limits."""
    return ApiClient(
        key_id="",
        name="anonymous (insecure-no-auth)",
        secret_digest="",
        scopes=frozenset(SCOPES),
        created_at=datetime(1970, 1, 1, tzinfo=UTC),
        limits=defaults,
    )


@dataclass
class _Window:
    started: float
    calls: int


class NodeAuth:
    """Proves callers by API key, with the node's default limits under each client's own."""

    def __init__(
        self,
        engine: Engine,
        offload: Offload,
        *,
        defaults: Limits = NO_LIMITS,
        required: bool = True,
        cache_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.offload = offload
        self.defaults = domain.check_limits(defaults)
        self.required = required
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._cache: dict[str, tuple[ApiClient | None, float]] = {}
        self._windows: dict[str, _Window] = {}
        self._anonymous = anonymous(self.defaults)

    def guard(
        self, handlers: Mapping[str, Handler], scopes: Mapping[str, str]
    ) -> dict[str, Handler]:
        """`handlers`, each calling `authorize` with its method's scope first."""
        unknown = set(scopes.values()) - set(SCOPES)
        if unknown:
            raise ValueError(f"unknown scopes {sorted(unknown)}")
        return {
            name: self._guarded(name, fn, scopes.get(name, ADMIN)) for name, fn in handlers.items()
        }

    def _guarded(self, method: str, fn: Handler, scope: str) -> Handler:
        async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
            client = await self.authorize(context, scope, method)
            token = _CALLER.set(client)
            try:
                return await fn(request, context)
            finally:
                _CALLER.reset(token)

        return call

    async def authorize(
        self, context: grpc.aio.ServicerContext, scope: str, method: str
    ) -> ApiClient:
        """The caller, proven and holding `scope`; or the refusal (see the module docstring)."""
        if not self.required:
            return self._anonymous
        key_id, secret = domain.parse_key(domain.bearer_of(context.invocation_metadata()))
        client = domain.verify(await self._lookup(key_id), key_id, secret)
        client.require(scope, method)
        self._count_call(client)
        return client

    async def _lookup(self, key_id: str) -> ApiClient | None:
        now = self.clock()
        cached = self._cache.get(key_id)
        if cached is not None and cached[1] > now:
            return cached[0]
        client = await self.offload(self._read, key_id)
        if client is not None:
            client = client.with_limits_over(self.defaults)
        if len(self._cache) >= _CACHE_MAX:
            self._cache = {k: v for k, v in self._cache.items() if v[1] > now}
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
        self._cache[key_id] = (client, now + self.cache_seconds)
        return client

    def _read(self, key_id: str) -> ApiClient | None:
        with self.engine.connect() as conn:
            return store.find(conn, key_id)

    def _count_call(self, client: ApiClient) -> None:
        limit = client.limits.calls_per_minute
        if limit is None:
            return
        now = self.clock()
        window = self._windows.get(client.key_id)
        if window is None or now - window.started >= 60.0:
            window = self._windows[client.key_id] = _Window(now, 0)
        if window.calls >= limit:
            raise ResourceExhausted(
                "RATE_LIMITED",
                f"client {client.name} may make {limit} calls a minute; retry in "
                f"{60.0 - (now - window.started):.0f} s",
                limit=str(limit),
            )
        window.calls += 1

    def forget(self, key_id: str | None = None) -> None:
        """Drops cached clients (one, or all): the next call reads the database."""
        if key_id is None:
            self._cache.clear()
        else:
            self._cache.pop(key_id, None)

    def revoke(self, name_or_id: str) -> ApiClient:
        """Revokes a client and stops honouring its key in this process at once."""
        client = revoke_client(self.engine, name_or_id)
        self.forget(client.key_id)
        return client


# -- the merchant's management of clients (`coalition node client …`) ---------------------------


def add_client(
    engine: Engine,
    name: str,
    scopes: str,
    limits: Limits = NO_LIMITS,
    now: Callable[[], datetime] = utc_now,
) -> IssuedKey:
    """A new client and its key; the key is in the answer only, the database keeps its digest."""
    key_id, key, digest = domain.new_key()
    client = ApiClient(
        key_id=key_id,
        name=domain.check_name(name),
        secret_digest=digest,
        scopes=domain.parse_scopes(scopes),
        created_at=now(),
        limits=domain.check_limits(limits),
    )
    run_in_transaction(engine, lambda conn: store.add(conn, client))
    return IssuedKey(client, key)


def list_clients(engine: Engine) -> list[ApiClient]:
    with engine.connect() as conn:
        return store.all_clients(conn)


def revoke_client(
    engine: Engine, name_or_id: str, now: Callable[[], datetime] = utc_now
) -> ApiClient:
    """Revokes the client with this key id, or the one active client with this name."""

    def work(conn: Any) -> ApiClient:
        found = store.by_name_or_id(conn, name_or_id)
        by_id = [c for c in found if c.key_id == name_or_id]
        active = [c for c in found if c.revoked_at is None]
        if by_id:
            target = by_id[0]
        elif len(active) == 1:
            target = active[0]
        elif not found:
            raise NotFound("CLIENT_NOT_FOUND", f"no client has key id or name {name_or_id!r}")
        elif not active:
            return found[0]  # revoked already
        else:
            ids = ", ".join(c.key_id for c in active)
            raise InvalidArgument(
                "CLIENT_AMBIGUOUS", f"{len(active)} active clients are named {name_or_id}: {ids}"
            )
        store.revoke(conn, target.key_id, now())
        revoked = store.find(conn, target.key_id)
        assert revoked is not None
        return revoked

    return run_in_transaction(engine, work)
