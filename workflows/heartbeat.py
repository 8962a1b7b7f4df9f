"""Heartbeats for the activities of every workflow family.

An activity decorated with `heartbeating` tells Temporal it is alive every second while it
works, so that a worker killed mid-activity is noticed after the workflow's heartbeat timeout
(seconds), not after the whole start-to-close timeout (up to an hour), and the activity is
retried on another worker. Every activity is idempotent, so the retry is harmless.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from temporalio import activity

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
HEARTBEAT_EVERY = 1.0  # seconds; the workflows' heartbeat timeouts are several times this


async def _beat(every: float) -> None:
    while True:
        activity.heartbeat()
        await asyncio.sleep(every)


def heartbeating(fn: F) -> F:
    @functools.wraps(fn)
    async def beating(*args: Any, **kwargs: Any) -> Any:
        beats = asyncio.create_task(_beat(HEARTBEAT_EVERY))
        try:
            return await fn(*args, **kwargs)
        finally:
            beats.cancel()

    return cast(F, beating)
