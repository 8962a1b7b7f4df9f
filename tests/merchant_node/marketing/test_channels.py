"""Channels against real receivers on loopback: apprise's HTTP-based targets (json://, ntfy://)
at a local HTTP server, the node's signed webhook and SMTP; a member's preferred channel, the
merchant's fallback order and default, through the outbox and the dispatcher (SQLite and
PostgreSQL)."""

from __future__ import annotations

import email
import email.policy
import json
from datetime import UTC, datetime

import pytest

from coalition_kernel.db import run_in_transaction
from merchant_node.ledger.commands import Enroll
from merchant_node.ledger.store import find_member
from merchant_node.notify import outbox
from merchant_node.notify.apprise_channel import AppriseChannel
from merchant_node.notify.channels import DeliveryFailed, Outgoing
from merchant_node.notify.dispatcher import Dispatcher
from tests.merchant_node.test_notifications import (  # noqa: F401 - fixtures
    Mailbox,
    WebhookReceiver,
    mailbox,
    node,
    receiver,
    with_settings,
)

AT = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


def _message(member: str = "m1", **data) -> Outgoing:  # type: ignore[no-untyped-def]
    payload = {"subject": "新品到店", "text": "您常买的品类有新品到店", **data}
    return Outgoing("n-42", f"trigger:x:{member}", "tea", member, "marketing", AT, payload)


def _hostport(receiver: WebhookReceiver) -> str:  # noqa: F811
    return receiver.url.split("://")[1].split("/")[0]


def test_apprise_json_target_posts_the_message_with_its_id(receiver):  # noqa: F811
    channel = AppriseChannel(f"json://{_hostport(receiver)}/wecom?member={{member_id}}")
    channel.send(_message("m-7"))
    (got,) = receiver.requests
    body = json.loads(got.body)
    assert body["title"] == "新品到店"
    assert "您常买的品类有新品到店" in body["message"] and "[n-42]" in body["message"]


def test_apprise_ntfy_target_reaches_a_local_server(receiver):  # noqa: F811
    AppriseChannel(f"ntfy://{_hostport(receiver)}/tea-members").send(_message())
    (got,) = receiver.requests
    body = json.loads(got.body)  # ntfy's JSON publish: topic, title, message
    assert (body["topic"], body["title"]) == ("tea-members", "新品到店")
    assert body["message"].endswith("[n-42]")


def test_apprise_failure_is_retried_and_a_bad_url_is_dead(receiver):  # noqa: F811
    receiver.answers.put(500)
    with pytest.raises(DeliveryFailed) as failed:
        AppriseChannel(f"json://{_hostport(receiver)}/x").send(_message())
    assert not failed.value.permanent
    with pytest.raises(DeliveryFailed) as dead:
        AppriseChannel("nosuchscheme://nowhere").send(_message())
    assert dead.value.permanent


def test_preferred_channel_fallback_and_default_through_the_dispatcher(
    node,  # noqa: F811
    receiver,  # noqa: F811
    mailbox: Mailbox,  # noqa: F811
):
    ledger, clock, config = node
    config = with_settings(
        config,
        webhook_url=receiver.url,
        smtp_host="127.0.0.1",
        smtp_port=mailbox.port,
        smtp_starttls=False,
        smtp_from="points@tea.example",
        quiet_hours="",
        apprise_urls={"wecom": f"json://{_hostport(receiver)}/wecom/{{member_id}}"},
        fallback_order=("email", "webhook"),
    )
    s = config.notifications
    for member in ("by-wecom", "by-sms", "by-sms-no-email", "by-default"):
        ledger.enroll(Enroll(f"e-{member}", member))
    contacts = {
        "by-wecom": dict(preferred_channel="wecom"),
        "by-sms": dict(preferred_channel="sms", email="sms@example.com"),  # sms not configured
        "by-sms-no-email": dict(preferred_channel="sms"),
    }

    def setup(conn):  # type: ignore[no-untyped-def]
        items = []
        for member in ("by-wecom", "by-sms", "by-sms-no-email", "by-default"):
            if member in contacts:
                outbox.set_member_contact(conn, member, clock(), **contacts[member])
            row = find_member(conn, member)
            contact = contacts.get(member, {})
            channel = outbox.resolve_channel(
                contact.get("preferred_channel"), contact.get("email"), s
            )
            items.append(
                outbox.NewNotification(
                    f"hello:{member}",
                    row.id,
                    "marketing",
                    {"subject": "hi", "text": f"hello {member}"},
                    channel,
                    clock(),
                )
            )
        return outbox.enqueue(conn, items, clock())

    assert run_in_transaction(ledger.engine, setup) == 4
    report = Dispatcher.from_config(ledger.engine, config, clock=clock).run_until_idle()
    assert report.sent == 4 and not report.dead
    # wecom through apprise; sms unconfigured -> the fallback's first usable (email, having
    # an address; webhook without one); no preference -> the default (webhook).
    apprise_posts = [r for r in receiver.requests if "title" in json.loads(r.body)]
    signed = [json.loads(r.body) for r in receiver.requests if "title" not in json.loads(r.body)]
    assert (
        len(apprise_posts) == 1 and "hello by-wecom" in json.loads(apprise_posts[0].body)["message"]
    )
    assert sorted(b["member_id"] for b in signed) == ["by-default", "by-sms-no-email"]
    mails = [
        email.message_from_bytes(raw, policy=email.policy.default) for _, _, raw in mailbox.messages
    ]
    assert [m["To"] for m in mails] == ["sms@example.com"]
