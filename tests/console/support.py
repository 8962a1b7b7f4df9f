"""A real console for the tests: the ASGI app served by uvicorn on a loopback port, over real
node (and exchange) databases, with admin keys issued as `coalition node client add` does."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import uvicorn

from console.app import Console
from console.logins import password_digest
from console.sessions import Sessions

OPERATOR_PASSWORD = "correct horse battery staple"


def make_console(nodes, exchange=None, clock=None, temporal=None) -> Console:  # type: ignore[no-untyped-def]
    kwargs = {"clock": clock} if clock is not None else {}
    return Console(
        sessions=Sessions(secrets.token_bytes(32)),
        nodes=nodes,
        exchange=exchange,
        operator_name="ops-lin",
        operator_password_sha256=password_digest(OPERATOR_PASSWORD),
        temporal=temporal,
        refresh_seconds=0.2,
        **kwargs,
    )


@dataclass
class Served:
    url: str
    console: Console
    keys: dict[str, str] = field(default_factory=dict)


async def serve(console: Console) -> AsyncIterator[str]:
    server = uvicorn.Server(
        uvicorn.Config(console, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    task = asyncio.ensure_future(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.01)
    assert server.started, "the console did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
