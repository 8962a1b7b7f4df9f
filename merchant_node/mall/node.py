"""The mall on a running node: its two gRPC services on the node's server, the member-facing
HTTP/JSON API on a port of its own, and a timer that lapses unpaid orders and enqueues coupon
expiry reminders (both decided by timestamps: the timer only writes down what is due)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from coalition.merchant.v1 import mall_pb2 as pb
from coalition_kernel.rpc import Offload, Server, generic_handler
from merchant_node.mall.api import MallApi, Method, StaffAuth
from merchant_node.mall.http_api import HttpApi
from merchant_node.mall.service import Mall

ADMIN_SERVICE = pb.DESCRIPTOR.services_by_name["MallAdminService"]
MEMBER_SERVICE = pb.DESCRIPTOR.services_by_name["MallService"]
log = logging.getLogger(__name__)


def _grpc(methods: dict[str, Method]) -> dict[str, Any]:
    def adapt(method: Method):  # type: ignore[no-untyped-def]
        async def call(req: Any, context: Any) -> Any:
            metadata = {
                k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)
            }
            return await method(req, metadata)

        return call

    return {name: adapt(m) for name, m in methods.items()}


class MallNode:
    """Attaches the mall to a node's (not yet started) server; `start` after the server."""

    def __init__(
        self,
        mall: Mall,
        offload: Offload,
        staff: StaffAuth,
        *,
        http_listen: str | None = None,
        cors_origins: Iterable[str] = (),
        sweep_every: float | None = 30.0,
    ) -> None:
        self.mall = mall
        self.offload = offload
        mall.offload = offload
        self.api = MallApi(mall, offload, staff)
        self.http = (
            HttpApi(self.api.member_methods(), http_listen, cors_origins) if http_listen else None
        )
        self.sweep_every = sweep_every
        self._timer: asyncio.Task[None] | None = None

    def attach(self, server: Server) -> None:
        server.handlers.append(
            (ADMIN_SERVICE, generic_handler(ADMIN_SERVICE, _grpc(self.api.admin_methods())))
        )
        server.handlers.append(
            (MEMBER_SERVICE, generic_handler(MEMBER_SERVICE, _grpc(self.api.member_methods())))
        )
        server.cleanups.append(self.stop)

    async def start(self) -> int:
        """Starts the HTTP API (its port, 0 if none) and the sweep timer."""
        port = await self.http.start() if self.http else 0
        if self.sweep_every:
            self._timer = asyncio.create_task(self._sweep_forever(self.sweep_every))
        return port

    async def _sweep_forever(self, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await self.offload(self.mall.sweep_lapsed)
                await self.offload(self.mall.enqueue_coupon_reminders)
            except Exception:  # noqa: BLE001 - the next tick tries again; say why meanwhile
                log.exception("mall sweep failed; retrying at the next tick")

    async def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
            self._timer = None
        if self.http is not None:
            await self.http.stop()


def mount_mall(
    server: Server,
    ledger: Any,
    offload: Offload,
    config: Any,
    staff: StaffAuth,
    *,
    merchant_id: str = "",
    cross: Any = None,
) -> MallNode:
    """The mall of a node served from its node.toml: both services on `server` (not yet
    started), the HTTP API if `[mall] http_listen` is set. `config` is merchant_node.config's
    MallConfig; `cross` the node's CrossRedemptions, if it is in a coalition."""
    from datetime import timedelta

    from merchant_node.mall.service import MallSettings

    settings = MallSettings(
        token_key=bytes.fromhex(config.token_key),
        payment_window=timedelta(minutes=config.payment_window_minutes),
        reminder_days=config.coupon_reminder_days,
        merchant_id=merchant_id,
    )
    node = MallNode(
        Mall(ledger, settings, cross=cross, offload=offload),
        offload,
        staff,
        http_listen=config.http_listen or None,
        cors_origins=config.cors_origins,
    )
    node.attach(server)
    return node


def mount_for_node(
    server: Server,
    offload: Offload,
    ledger: Any,
    config: Any,
    *,
    insecure_no_auth: bool = False,
    http: bool = True,
) -> MallNode:
    """The mall of `coalition node serve`: `config` is the node's NodeConfig. Staff methods are
    authorized by the node's API keys (admin and pos scopes), other issuers' points go through
    the node's exchange link, the member API listens where `[mall] http_listen` says."""
    from merchant_node.acquirer import CrossRedemptions, ExchangeLink
    from merchant_node.auth.service import NodeAuth
    from merchant_node.mall.api import NodeKeyStaffAuth
    from merchant_node.runtime import coalition_link

    auth = NodeAuth(
        ledger.engine, offload, defaults=config.auth.limits(), required=not insecure_no_auth
    )
    cross = None
    link = coalition_link(config, ledger.clock)
    if link is not None:
        from coalition_kernel.envelope import Signer

        signer = Signer(link.merchant_id, link.private_key, link.clock)
        exchange = ExchangeLink(link.exchange_endpoint, signer, link.exchange_key)
        server.cleanups.append(exchange.close)
        cross = CrossRedemptions(ledger.engine, exchange, offload, link.clock)
    mall_config = config.mall if http else replace(config.mall, http_listen="")
    return mount_mall(
        server,
        ledger,
        offload,
        mall_config,
        NodeKeyStaffAuth(auth),
        merchant_id=config.merchant_id,
        cross=cross,
    )
