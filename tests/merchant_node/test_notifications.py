"""Reminders, the outbox and its dispatcher against a real webhook receiver and a real SMTP
server on loopback, on SQLite and PostgreSQL: what arrives is exactly what the outbox promised,
signed; failures back off and retry; nothing is sent twice for one notification id unless a
dispatcher died not knowing whether it was; quiet hours hold."""

from __future__ import annotations

import email
import email.policy
import json
import pathlib
import queue
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller

from coalition_kernel.db import run_in_transaction
from coalition_kernel.keys import generate_keypair, load_public_key
from merchant_node.config import NodeConfig, NotificationSettings
from merchant_node.ledger.commands import Earn, Enroll
from merchant_node.ledger.schema import notifications
from merchant_node.ledger.service import NodeLedger
from merchant_node.notify import outbox
from merchant_node.notify.channels import (
    ID_HEADER,
    WebhookChannel,
    WebhookRejected,
    verify_webhook,
)
from merchant_node.notify.dispatcher import Dispatcher
from merchant_node.notify.reminders import enqueue_expiry_reminders
from tests.conftest import FakeClock, open_test_ledger

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # 17:00 in Shanghai
EXPIRES = START + timedelta(days=180)  # 2026-07-04 17:00 in Shanghai
SEVEN_DAYS_BEFORE = datetime(2026, 6, 27, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai, day D-7


# -- servers on loopback ---------------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    answers: queue.Queue[int] = field(default_factory=queue.Queue)  # statuses to give, then 200


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    state = WebhookReceiver("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append(Received(dict(self.headers.items()), body))
            status = 200 if state.answers.empty() else state.answers.get()
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/coalition/events"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@dataclass
class Mailbox:
    port: int
    messages: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    refusals: queue.Queue[str] = field(default_factory=queue.Queue)  # answers to DATA, then 250

    async def handle_DATA(self, server, session, envelope) -> str:  # type: ignore[no-untyped-def]  # noqa: N802
        if not self.refusals.empty():
            return self.refusals.get()
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox(free_port())
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    yield box
    controller.stop()


# -- the node --------------------------------------------------------------------------------


@pytest.fixture
def node(db_url: str, tmp_path: pathlib.Path) -> Iterator[tuple[NodeLedger, FakeClock, NodeConfig]]:
    """A ledger whose points live 180 days, a key pair, member m1 with 500 points."""
    clock = FakeClock(START)
    ledger = open_test_ledger(db_url, clock, ttl_days=180)
    private, public = tmp_path / "node.pem", tmp_path / "node.pub.pem"
    kid = generate_keypair(private, public)
    config = NodeConfig(
        "tea", db_url, private_key_file=str(private), public_key_file=str(public), key_id=kid
    )
    ledger.enroll(Enroll("enroll-m1", "m1"))
    ledger.earn(Earn("earn-o1", "m1", "o1", 50_000, "POS", None))
    yield ledger, clock, config
    ledger.engine.dispose()


def settings(config: NodeConfig, **kw: Any) -> NotificationSettings:
    return replace(config.notifications, **kw)


def with_settings(config: NodeConfig, **kw: Any) -> NodeConfig:
    return replace(config, notifications=settings(config, **kw))


def dispatcher(
    ledger: NodeLedger, config: NodeConfig, clock: FakeClock, seed: int = 7
) -> Dispatcher:
    import random

    d = Dispatcher.from_config(ledger.engine, config, clock=clock)
    d.rng = random.Random(seed)
    return d


def rows(ledger: NodeLedger) -> list[Any]:
    with ledger.engine.connect() as conn:
        return conn.execute(sa.select(notifications).order_by(notifications.c.id)).all()


def remind(ledger: NodeLedger, clock: FakeClock, config: NodeConfig) -> int:
    return enqueue_expiry_reminders(ledger.engine, clock.now, config.notifications)


def set_contact(ledger: NodeLedger, clock: FakeClock, member: str, **kw: Any) -> None:
    run_in_transaction(
        ledger.engine, lambda conn: outbox.set_member_contact(conn, member, clock.now, **kw)
    )


# -- reminders -------------------------------------------------------------------------------


def test_reminders_are_enqueued_once_seven_and_three_days_before_a_180_day_expiry(node):
    ledger, clock, config = node
    enqueued_on = {}
    clock.now = SEVEN_DAYS_BEFORE - timedelta(days=20)
    while clock.now < EXPIRES + timedelta(days=3):
        for _ in range(2):  # a schedule that fires twice a day adds nothing the second time
            if remind(ledger, clock, config):
                enqueued_on[rows(ledger)[-1].dedupe_key] = clock.now
        ledger.expire_due()
        clock.advance(days=1)
    assert enqueued_on == {
        "expiry_reminder:m1:2026-07-04:7d": SEVEN_DAYS_BEFORE,
        "expiry_reminder:m1:2026-07-04:3d": SEVEN_DAYS_BEFORE + timedelta(days=4),
    }
    payloads = [json.loads(r.payload) for r in rows(ledger)]
    assert payloads[0] == {
        "points": 500,
        "expires_on": "2026-07-04",
        "first_expires_at": EXPIRES.isoformat(),
        "days_left": 7,
        "reminder_days": 7,
    }
    assert [(r.kind, r.channel, r.status) for r in rows(ledger)] == [
        ("expiry_reminder", "webhook", "pending")
    ] * 2


def test_concurrent_reminder_runs_enqueue_each_reminder_once(node):
    ledger, clock, config = node
    for m in range(2, 12):
        ledger.enroll(Enroll(f"enroll-m{m}", f"m{m}"))
        ledger.earn(Earn(f"earn-o{m}", f"m{m}", f"o{m}", 10_000, "POS", None))
    clock.now = SEVEN_DAYS_BEFORE
    counts: list[int] = []
    threads = [
        threading.Thread(target=lambda: counts.append(remind(ledger, clock, config)))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counts) == 11 and len(rows(ledger)) == 11


def test_redeemed_or_already_warned_points_are_not_reminded_again(node):
    ledger, clock, config = node
    clock.now = SEVEN_DAYS_BEFORE
    assert remind(ledger, clock, config) == 1
    clock.advance(days=1)
    assert remind(ledger, clock, config) == 0  # same day of expiry, same offset: once
    ledger.enroll(Enroll("enroll-m2", "m2"))  # a member with nothing expiring
    assert remind(ledger, clock, config) == 0


# -- the webhook -----------------------------------------------------------------------------


def test_the_webhook_receives_exactly_what_the_outbox_promised_signed_by_the_node(node, receiver):
    ledger, clock, config = node
    config = with_settings(config, webhook_url=receiver.url)
    clock.now = SEVEN_DAYS_BEFORE
    remind(ledger, clock, config)
    row = rows(ledger)[0]

    report = dispatcher(ledger, config, clock).run_once()

    assert (report.sent, report.retrying, report.dead) == (1, 0, 0)
    [got] = receiver.requests
    public = load_public_key(pathlib.Path(config.public_key_file))
    body = verify_webhook(public, got.headers, got.body, clock.now)
    assert body == {
        "notification_id": str(row.id),
        "event": row.dedupe_key,
        "merchant_id": "tea",
        "member_id": "m1",
        "kind": "expiry_reminder",
        "created_at": "2026-06-27T02:00:00Z",
        "data": json.loads(row.payload),
    }
    assert got.headers[ID_HEADER] == str(row.id)
    assert got.headers["Coalition-Key-Id"] == config.key_id
    assert got.headers["Coalition-Timestamp"] == str(int(clock.now.timestamp()))
    with pytest.raises(WebhookRejected, match="bad signature"):
        verify_webhook(public, got.headers, got.body.replace(b"500", b"900"), clock.now)
    with pytest.raises(WebhookRejected, match="window"):
        verify_webhook(public, got.headers, got.body, clock.now + timedelta(minutes=6))
    [sent] = rows(ledger)
    assert (sent.status, sent.attempts, sent.sent_at, sent.lease_until) == (
        "sent",
        1,
        clock.now,
        None,
    )
    assert not dispatcher(ledger, config, clock).run_once()
    assert len(receiver.requests) == 1


def test_failures_back_off_with_jitter_then_succeed_and_are_never_duplicated(node, receiver):
    ledger, clock, config = node
    config = with_settings(config, webhook_url=receiver.url, backoff_base_seconds=60)
    for status in (500, 503):
        receiver.answers.put(status)
    clock.now = SEVEN_DAYS_BEFORE
    remind(ledger, clock, config)
    d = dispatcher(ledger, config, clock)

    for attempt, step, status in ((1, 60, 500), (2, 120, 503)):
        began = clock.now
        assert d.run_once().retrying == 1
        row = rows(ledger)[0]
        assert (row.status, row.attempts) == ("failed", attempt)
        assert row.last_error == f"webhook answered HTTP {status}"
        wait = row.next_attempt_at - began
        assert timedelta(seconds=step / 2) <= wait <= timedelta(seconds=step)
        clock.now = row.next_attempt_at - timedelta(seconds=1)
        assert not d.run_once()  # not due yet
        clock.now = row.next_attempt_at

    assert d.run_once().sent == 1
    assert [r.status for r in rows(ledger)] == ["sent"]
    assert len(receiver.requests) == 3
    assert {r.headers[ID_HEADER] for r in receiver.requests} == {str(rows(ledger)[0].id)}
    assert len({r.body for r in receiver.requests}) == 1
    clock.advance(days=30)
    assert not d.run_once()
    assert len(receiver.requests) == 3


def test_a_notification_is_dead_after_its_last_attempt(node, receiver):
    ledger, clock, config = node
    config = with_settings(config, webhook_url=receiver.url, max_attempts=3)
    for _ in range(10):
        receiver.answers.put(500)
    clock.now = SEVEN_DAYS_BEFORE
    remind(ledger, clock, config)
    d = dispatcher(ledger, config, clock)
    outcomes = []
    for _ in range(5):
        report = d.run_once()
        outcomes.append((report.retrying, report.dead))
        clock.advance(hours=1)  # past any backoff
    assert outcomes == [(1, 0), (1, 0), (0, 1), (0, 0), (0, 0)]
    [row] = rows(ledger)
    assert (row.status, row.attempts, row.last_error) == ("dead", 3, "webhook answered HTTP 500")
    assert len(receiver.requests) == 3


def test_an_unconfigured_channel_is_retried_not_lost(node):
    ledger, clock, config = node
    clock.now = SEVEN_DAYS_BEFORE
    remind(ledger, clock, config)
    assert dispatcher(ledger, config, clock).run_once().retrying == 1
    assert "not configured" in rows(ledger)[0].last_error


# -- crashes ---------------------------------------------------------------------------------


class Crash(BaseException):
    """The dispatcher's process dies here (nothing catches it)."""


class SendsThenCrashes:
    def __init__(self, channel: WebhookChannel) -> None:
        self.channel = channel

    def send(self, message) -> None:  # type: ignore[no-untyped-def]
        self.channel.send(message)
        raise Crash


def test_a_dispatcher_dying_after_its_claim_delivers_once_per_notification_id(node, receiver):
    ledger, clock, config = node
    config = with_settings(config, webhook_url=receiver.url, lease_seconds=300)
    ledger.enroll(Enroll("enroll-m2", "m2"))
    ledger.earn(Earn("earn-o2", "m2", "o2", 10_000, "POS", None))
    clock.now = SEVEN_DAYS_BEFORE
    assert remind(ledger, clock, config) == 2
    first, second = rows(ledger)

    # 1. Claimed, then died before sending: sent once, after the lease ran out.
    claims, _ = run_in_transaction(
        ledger.engine,
        lambda conn: outbox.claim_due(conn, clock.now, 1, config.notifications),
    )
    assert [c.id for c in claims] == [first.id]
    d = dispatcher(ledger, config, clock)
    d.channels["webhook"] = SendsThenCrashes(d.channels["webhook"])  # type: ignore[arg-type]

    # 2. Sent the other one, then died before recording it: the outcome is unknown.
    with pytest.raises(Crash):
        d.run_once()
    assert [r.status for r in rows(ledger)] == ["sending", "sending"]
    assert [r.headers[ID_HEADER] for r in receiver.requests] == [str(second.id)]

    healthy = dispatcher(ledger, config, clock)
    clock.advance(seconds=299)
    assert not healthy.run_once()  # both leases still held
    clock.advance(seconds=1)
    assert healthy.run_once().sent == 2
    assert [(r.status, r.attempts) for r in rows(ledger)] == [("sent", 2), ("sent", 2)]
    # The receiver saw `second` twice, as the same notification: it dedupes on the id.
    ids = [r.headers[ID_HEADER] for r in receiver.requests]
    assert sorted(ids) == sorted([str(first.id), str(second.id), str(second.id)])
    by_id = {}
    for r in receiver.requests:
        by_id.setdefault(r.headers[ID_HEADER], set()).add(r.body)
    assert all(len(bodies) == 1 for bodies in by_id.values())
    # The dead dispatcher's stale claim can no longer record anything.
    assert not run_in_transaction(
        ledger.engine, lambda conn: outbox.mark_sent(conn, claims[0], clock.now)
    )


class SlowChannel:
    """Each send takes 70 seconds of the fake clock."""

    def __init__(self, channel: WebhookChannel, clock: FakeClock) -> None:
        self.channel, self.clock = channel, clock

    def send(self, message) -> None:  # type: ignore[no-untyped-def]
        self.channel.send(message)
        self.clock.advance(seconds=70)


def test_a_claim_too_near_the_end_of_its_lease_is_given_back_unsent(node, receiver):
    ledger, clock, config = node
    config = with_settings(config, webhook_url=receiver.url, lease_seconds=120)
    ledger.enroll(Enroll("enroll-m2", "m2"))
    ledger.earn(Earn("earn-o2", "m2", "o2", 10_000, "POS", None))
    clock.now = SEVEN_DAYS_BEFORE
    assert remind(ledger, clock, config) == 2
    d = dispatcher(ledger, config, clock)
    d.channels["webhook"] = SlowChannel(d.channels["webhook"], clock)  # type: ignore[arg-type]

    report = d.run_once()  # the first send leaves 50 s of the lease: less than a send may take
    assert (report.sent, report.deferred) == (1, 1)
    assert [(r.status, r.attempts) for r in rows(ledger)] == [("sent", 1), ("pending", 0)]
    assert d.run_once().sent == 1
    assert len(receiver.requests) == 2


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_concurrent_dispatchers_share_the_work_and_send_each_once(node, receiver):
    ledger, clock, config = node
    config = with_settings(config, webhook_url=receiver.url)
    for m in range(2, 25):
        ledger.enroll(Enroll(f"enroll-m{m}", f"m{m}"))
        ledger.earn(Earn(f"earn-o{m}", f"m{m}", f"o{m}", 10_000, "POS", None))
    clock.now = SEVEN_DAYS_BEFORE
    assert remind(ledger, clock, config) == 24
    reports = []

    def work() -> None:
        reports.append(dispatcher(ledger, config, clock).run_until_idle(limit=3))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.sent for r in reports) == 24
    assert sorted(int(r.headers[ID_HEADER]) for r in receiver.requests) == [
        r.id for r in rows(ledger)
    ]


# -- quiet hours -----------------------------------------------------------------------------


def test_quiet_hours_hold_notifications_until_they_end(node, receiver):
    ledger, clock, config = node
    config = with_settings(config, webhook_url=receiver.url, quiet_hours="22:00-08:00")
    for m in ("night-owl", "changes-mind"):
        ledger.enroll(Enroll(f"enroll-{m}", m))
        ledger.earn(Earn(f"earn-{m}", m, f"o-{m}", 10_000, "POS", None))
    set_contact(ledger, clock, "night-owl", quiet_hours="none")
    clock.now = SEVEN_DAYS_BEFORE + timedelta(hours=13, minutes=30)  # 23:30 in Shanghai
    assert remind(ledger, clock, config) == 3
    morning = datetime(2026, 6, 28, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai
    assert [r.next_attempt_at for r in rows(ledger)] == [morning, clock.now, morning]
    d = dispatcher(ledger, config, clock)

    assert d.run_once().sent == 1  # the night owl's, at once
    assert json.loads(receiver.requests[0].body)["member_id"] == "night-owl"
    clock.now = morning - timedelta(minutes=1)
    assert not d.run_once()
    # A member who sets quiet hours after the reminder was queued is respected at sending time.
    set_contact(ledger, clock, "changes-mind", quiet_hours="07:00-09:00")
    clock.now = morning
    report = d.run_once()
    assert (report.sent, report.deferred) == (1, 1)
    held = next(r for r in rows(ledger) if r.status == "pending")
    assert (held.attempts, held.next_attempt_at) == (0, morning + timedelta(hours=1))
    clock.now = morning + timedelta(hours=1)
    assert d.run_once().sent == 1
    assert len(receiver.requests) == 3


# -- email -----------------------------------------------------------------------------------


def test_email_reaches_the_member_through_smtp(node, mailbox, receiver):
    ledger, clock, config = node
    config = with_settings(
        config,
        webhook_url=receiver.url,
        smtp_host="127.0.0.1",
        smtp_port=mailbox.port,
        smtp_starttls=False,
        smtp_from="points@tea.example",
    )
    set_contact(ledger, clock, "m1", email="li.lei@example.com", preferred_channel="email")
    ledger.enroll(Enroll("enroll-m2", "m2"))  # prefers email but gave no address: webhook
    ledger.earn(Earn("earn-o2", "m2", "o2", 10_000, "POS", None))
    set_contact(ledger, clock, "m2", preferred_channel="email")
    mailbox.refusals.put("451 4.3.0 try again later")
    clock.now = SEVEN_DAYS_BEFORE
    remind(ledger, clock, config)
    assert [r.channel for r in rows(ledger)] == ["email", "webhook"]
    d = dispatcher(ledger, config, clock)

    first = d.run_once()
    assert (first.sent, first.retrying) == (1, 1)  # the webhook went; the mail server said later
    clock.now = rows(ledger)[0].next_attempt_at
    assert d.run_once().sent == 1

    [(sender, recipients, content)] = mailbox.messages
    assert (sender, recipients) == ("points@tea.example", ["li.lei@example.com"])
    message = email.message_from_bytes(content, policy=email.policy.default)
    notification = rows(ledger)[0]
    assert message["To"] == "li.lei@example.com"
    assert (
        message["Subject"] == "您有 500 积分将于 2026-07-04 到期 / 500 points expire on 2026-07-04"
    )
    assert message["Message-ID"] == f"<tea.{notification.id}@tea.example>"
    assert message[ID_HEADER] == str(notification.id)
    text = message.get_content()
    assert "500" in text and "2026-07-04" in text and "tea" in text
    assert notification.status == "sent"


def test_a_refused_recipient_is_dead_at_once(node, mailbox):
    ledger, clock, config = node
    config = with_settings(
        config,
        smtp_host="127.0.0.1",
        smtp_port=mailbox.port,
        smtp_starttls=False,
        smtp_from="points@tea.example",
    )
    set_contact(ledger, clock, "m1", email="nobody@example.com", preferred_channel="email")
    mailbox.refusals.put("554 5.7.1 message refused")
    clock.now = SEVEN_DAYS_BEFORE
    remind(ledger, clock, config)
    assert dispatcher(ledger, config, clock).run_once().dead == 1
    assert rows(ledger)[0].status == "dead" and mailbox.messages == []


# -- configuration ---------------------------------------------------------------------------


def test_old_config_files_load_with_notification_defaults_and_new_ones_round_trip(tmp_path):
    old = tmp_path / "old.toml"
    old.write_text('[node]\nmerchant_id = "tea"\ndatabase_url = "sqlite://"\n')
    config = NodeConfig.load(old)
    assert config.notifications == NotificationSettings()
    assert config.notifications.reminder_offsets_days == (7, 3)
    assert config.notifications.quiet_hours == "22:00-08:00"

    new = replace(
        config,
        notifications=NotificationSettings(
            webhook_url="https://shop.example/hooks",
            reminder_offsets_days=(14, 7, 1),
            quiet_hours="",
            smtp_host="smtp.example",
            smtp_password="密码",
        ),
    )
    path = tmp_path / "new.toml"
    new.save(path)
    assert NodeConfig.load(path) == new

    bad = tmp_path / "bad.toml"
    bad.write_text(old.read_text() + '[notifications]\nquiet_hours = "late"\n')
    with pytest.raises(ValueError, match='quiet_hours: "late" is not HH:MM-HH:MM'):
        NodeConfig.load(bad)


def test_contact_settings_are_validated(node):
    ledger, clock, _ = node
    from coalition_kernel.errors import InvalidArgument, NotFound

    for kw in (
        {"preferred_channel": "pigeon"},
        {"email": "not-an-address"},
        {"quiet_hours": "9-5"},
    ):
        with pytest.raises(InvalidArgument):
            set_contact(ledger, clock, "m1", **kw)
    with pytest.raises(NotFound):
        set_contact(ledger, clock, "nobody", email="a@b.example")
    set_contact(ledger, clock, "m1", email="a@b.example")
    set_contact(ledger, clock, "m1", email="c@d.example", preferred_channel="email")
