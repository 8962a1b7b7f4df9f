"""The expiry activities of one node, over its own database: each takes the workflow's time,
so a retried activity decides exactly as the first attempt did, and each is idempotent
(reminders are deduplicated, expiry at the same time finds nothing more to expire, a sent
notification is not sent again)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from temporalio import activity

from coalition_kernel.db import utc_now
from merchant_node.config import NotificationSettings
from merchant_node.ledger.service import NodeLedger
from merchant_node.notify.dispatcher import Dispatcher
from merchant_node.notify.reminders import enqueue_expiry_reminders
from workflows.expiry.shared import Breakage, Delivered, Expired
from workflows.heartbeat import heartbeating

# Builds the node's dispatcher with a clock: channels and settings come from the node's config.
DispatcherFactory = Callable[[Callable[[], datetime]], Dispatcher]


def _running_from(at: datetime) -> Callable[[], datetime]:
    """A clock that reads `at` when the activity starts and runs on from there."""
    offset = at - utc_now()
    return lambda: utc_now() + offset


@dataclass
class ExpiryActivities:
    ledger: NodeLedger
    settings: NotificationSettings
    dispatcher: DispatcherFactory
    batch: int = 5000

    def all(self) -> list[Callable[..., object]]:
        return [
            self.enqueue_reminders,
            self.expire_due,
            self.breakage_of_day,
            self.deliver_notifications,
        ]

    @activity.defn(name="enqueue_reminders")
    @heartbeating
    async def enqueue_reminders(self, at_iso: str) -> int:
        at = datetime.fromisoformat(at_iso)
        return await asyncio.to_thread(
            enqueue_expiry_reminders, self.ledger.engine, at, self.settings
        )

    @activity.defn(name="expire_due")
    @heartbeating
    async def expire_due(self, at_iso: str) -> Expired:
        at = datetime.fromisoformat(at_iso)
        run_id = f"expiry:{activity.info().workflow_id}"[:128]
        run = await asyncio.to_thread(
            functools.partial(self.ledger.run_expiry, now=at, batch=self.batch, run_id=run_id)
        )
        return Expired(
            run.lots_expired, run.points_expired, run.holds_lapsed, run.members, run.members_busy
        )

    @activity.defn(name="breakage_of_day")
    @heartbeating
    async def breakage_of_day(self, at_iso: str) -> Breakage:
        """The breakage of the run's local day, in points and in fen at issue."""
        at = datetime.fromisoformat(at_iso)
        zone = ZoneInfo(self.settings.timezone)
        day = at.astimezone(zone).date()
        start = datetime.combine(day, time(), zone)
        report = await asyncio.to_thread(
            self.ledger.breakage_report,
            start,
            datetime.combine(day + timedelta(days=1), time(), zone),
            timezone=self.settings.timezone,
        )
        return Breakage(day.isoformat(), report.points, report.value_fen)

    @activity.defn(name="deliver_notifications")
    @heartbeating
    async def deliver_notifications(self, at_iso: str) -> Delivered:
        dispatcher = self.dispatcher(_running_from(datetime.fromisoformat(at_iso)))
        report = await asyncio.to_thread(dispatcher.run_until_idle)
        return Delivered(report.sent, report.retrying, report.deferred, report.dead, report.lost)
