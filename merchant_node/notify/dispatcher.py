"""The dispatcher: claims due notifications, sends each through its channel, records outcomes.

Guarantee: at least once to the channel per notification, and once in the normal case. A
notification is re-sent only when the outcome of the previous attempt is unknown: the
dispatcher claimed it and then died (or hung past its lease) before recording what the channel
answered. Receivers dedupe on the notification id (webhook header and body, email Message-ID).
No transaction is open while a channel talks to the network.
"""

from __future__ import annotations

import pathlib
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from coalition_kernel.db import run_in_transaction, utc_now
from coalition_kernel.keys import load_private_key
from merchant_node.config import NodeConfig, NotificationSettings
from merchant_node.notify import outbox
from merchant_node.notify.apprise_channel import AppriseChannel
from merchant_node.notify.channels import (
    Channel,
    DeliveryFailed,
    EmailChannel,
    Outgoing,
    WebhookChannel,
)
from merchant_node.notify.quiet import deliverable_at, effective_quiet_hours


@dataclass(frozen=True)
class DispatchReport:
    sent: int = 0
    retrying: int = 0
    dead: int = 0
    deferred: int = 0  # quiet hours: given back unsent
    lost: int = 0  # our lease ran out and another dispatcher took the notification over

    def __add__(self, other: DispatchReport) -> DispatchReport:
        return DispatchReport(
            *(getattr(self, f.name) + getattr(other, f.name) for f in fields(self))
        )

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))


class Dispatcher:
    """Sends what the outbox holds. Run `run_once` from a schedule or a loop; several
    dispatchers (threads, processes, PostgreSQL only) may run at once."""

    def __init__(
        self,
        engine: Engine,
        channels: Mapping[str, Channel],
        settings: NotificationSettings,
        *,
        merchant_id: str,
        clock: Callable[[], datetime] = utc_now,
        rng: random.Random | None = None,
    ) -> None:
        self.engine = engine
        self.channels = dict(channels)
        self.settings = settings
        self.merchant_id = merchant_id
        self.clock = clock
        self.zone = ZoneInfo(settings.timezone)
        self.rng = rng or random.Random()

    @classmethod
    def from_config(
        cls, engine: Engine, config: NodeConfig, *, clock: Callable[[], datetime] = utc_now
    ) -> Dispatcher:
        """The channels the config sets up: the webhook (signed with the node's key) if it names
        a URL, email if it names an SMTP host, each apprise URL, and the merchant's own inbox."""
        s = config.notifications
        channels: dict[str, Channel] = {}
        if s.webhook_url:
            key = load_private_key(pathlib.Path(config.private_key_file))
            channels["webhook"] = WebhookChannel(
                s.webhook_url, key, timeout=s.webhook_timeout_seconds, clock=clock
            )
        if s.smtp_host:
            channels["email"] = EmailChannel(s, clock=clock)
        for name, url in s.apprise_urls.items():
            channels[name] = AppriseChannel(url, timeout=s.webhook_timeout_seconds)
        if s.merchant_alert_url:
            channels[outbox.MERCHANT_CHANNEL] = AppriseChannel(
                s.merchant_alert_url, timeout=s.webhook_timeout_seconds
            )
        return cls(engine, channels, s, merchant_id=config.merchant_id, clock=clock)

    def backoff(self, attempt: int) -> timedelta:
        """Exponential, capped, with jitter: half the step fixed, half random, so notifications
        that failed together do not all come back together."""
        step = min(
            self.settings.backoff_max_seconds,
            self.settings.backoff_base_seconds * 2 ** min(attempt - 1, 30),
        )
        return timedelta(seconds=step / 2 + self.rng.uniform(0, step / 2))

    def run_once(self, limit: int = 50) -> DispatchReport:
        """Claims up to `limit` due notifications and sends them, one after another."""
        now = self.clock()
        claims, died = run_in_transaction(
            self.engine, lambda conn: outbox.claim_due(conn, now, limit, self.settings)
        )
        lease_end = now + timedelta(seconds=self.settings.lease_seconds)
        counts = {"sent": 0, "retrying": 0, "dead": died, "deferred": 0, "lost": 0}
        for claim in claims:
            outcome = self._deliver(claim, lease_end)
            counts[outcome] += 1
        return DispatchReport(**counts)

    def run_until_idle(self, limit: int = 50, rounds: int = 100) -> DispatchReport:
        """`run_once` until nothing due is left (or `rounds` ran); the sums of their reports."""
        total = DispatchReport()
        for _ in range(rounds):
            report = self.run_once(limit)
            total += report
            if not report:
                break
        return total

    def _deliver(self, claim: outbox.Claimed, lease_end: datetime) -> str:
        quiet = effective_quiet_hours(claim.quiet_hours, self.settings.quiet_hours)
        now = self.clock()
        until = deliverable_at(now, quiet, self.zone)
        if until > now:
            return self._record(outbox.defer, claim, until, outcome="deferred")
        if now + self.settings.send_budget > lease_end:
            # Earlier sends of this claim took long: a send begun now might outlive the lease
            # and race another dispatcher's. Give it back unsent instead.
            return self._record(outbox.defer, claim, now, outcome="deferred")
        channel = self.channels.get(claim.channel)
        try:
            if channel is None:
                raise DeliveryFailed(f"the {claim.channel} channel is not configured on this node")
            channel.send(self._outgoing(claim))
        except Exception as exc:  # noqa: BLE001 - whatever broke, the outcome is recorded
            permanent = isinstance(exc, DeliveryFailed) and exc.permanent
            if permanent or claim.attempt >= self.settings.max_attempts:
                return self._record(outbox.mark_failed, claim, str(exc), None, outcome="dead")
            retry_at = deliverable_at(self.clock() + self.backoff(claim.attempt), quiet, self.zone)
            return self._record(outbox.mark_failed, claim, str(exc), retry_at, outcome="retrying")
        return self._record(outbox.mark_sent, claim, self.clock(), outcome="sent")

    def _record(self, mark, claim: outbox.Claimed, *args, outcome: str) -> str:  # type: ignore[no-untyped-def]
        recorded = run_in_transaction(self.engine, lambda conn: mark(conn, claim, *args))
        return outcome if recorded else "lost"

    def _outgoing(self, claim: outbox.Claimed) -> Outgoing:
        return Outgoing(
            notification_id=str(claim.id),
            event=claim.dedupe_key,
            merchant_id=self.merchant_id,
            member_id=claim.member_id,
            kind=claim.kind,
            created_at=claim.created_at,
            data=claim.payload,
            email=claim.email,
        )
