"""Channels: the merchant's webhook (HTTP POST, JSON, Ed25519-signed) and email (SMTP).

A channel returns when the receiver accepted the message and raises DeliveryFailed otherwise,
saying whether trying again can help. docs/merchant-node.md describes the webhook's body,
headers and the exact bytes signed, for receivers in any language.
"""

from __future__ import annotations

import base64
import json
import smtplib
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from coalition_kernel.db import utc_now
from coalition_kernel.keys import key_id
from merchant_node.config import NotificationSettings

WEBHOOK_TAG = b"COALITION-WEBHOOK-V1"
ID_HEADER = "Coalition-Notification-Id"
MERCHANT_HEADER = "Coalition-Merchant-Id"
TIMESTAMP_HEADER = "Coalition-Timestamp"
KEY_ID_HEADER = "Coalition-Key-Id"
SIGNATURE_HEADER = "Coalition-Signature"


class DeliveryFailed(Exception):
    """The receiver did not take the message; `permanent`: retrying cannot help."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Outgoing:
    """One notification as every channel sends it. `notification_id` is what receivers dedupe
    on: a re-sent notification carries the same id (and the same body)."""

    notification_id: str
    event: str  # the dedupe key: what happened, e.g. "expiry_reminder:m1:2026-07-04:7d"
    merchant_id: str
    member_id: str
    kind: str
    created_at: datetime
    data: dict[str, Any] = field(default_factory=dict)
    email: str | None = None

    def body(self) -> bytes:
        """The webhook body: compact JSON, keys sorted, UTF-8."""
        document = {
            "notification_id": self.notification_id,
            "event": self.event,
            "merchant_id": self.merchant_id,
            "member_id": self.member_id,
            "kind": self.kind,
            "created_at": self.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "data": self.data,
        }
        return json.dumps(
            document, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()


class Channel(Protocol):
    def send(self, message: Outgoing) -> None: ...


# -- webhook ---------------------------------------------------------------------------------


def webhook_signed_bytes(timestamp: str, body: bytes) -> bytes:
    """What the signature covers: tag ‖ 0x00 ‖ timestamp (decimal ASCII) ‖ 0x00 ‖ body.
    The tag keeps a webhook signature from ever passing as an envelope signature of the same
    node key (coalition_kernel.envelope signs another tag), and the other way round."""
    return WEBHOOK_TAG + b"\x00" + timestamp.encode("ascii") + b"\x00" + body


def sign_webhook(private_key: Ed25519PrivateKey, body: bytes, at: datetime) -> dict[str, str]:
    timestamp = str(int(at.timestamp()))
    signature = private_key.sign(webhook_signed_bytes(timestamp, body))
    return {
        TIMESTAMP_HEADER: timestamp,
        KEY_ID_HEADER: key_id(private_key.public_key()),
        SIGNATURE_HEADER: base64.b64encode(signature).decode("ascii"),
    }


class WebhookRejected(Exception):
    pass


def verify_webhook(
    public_key: Ed25519PublicKey,
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
    *,
    tolerance: timedelta = timedelta(minutes=5),
) -> dict[str, Any]:
    """What a receiver does (in Python): key id, signature, time window; returns the body."""
    lower = {k.lower(): v for k, v in headers.items()}
    try:
        timestamp = lower[TIMESTAMP_HEADER.lower()]
        kid = lower[KEY_ID_HEADER.lower()]
        signature = base64.b64decode(lower[SIGNATURE_HEADER.lower()], validate=True)
    except (KeyError, ValueError) as exc:
        raise WebhookRejected(f"missing or malformed signature headers: {exc}") from exc
    if kid != key_id(public_key):
        raise WebhookRejected(f"signed with key {kid}, not this node's")
    try:
        public_key.verify(signature, webhook_signed_bytes(timestamp, body))
    except InvalidSignature as exc:
        raise WebhookRejected("bad signature") from exc
    if not timestamp.isdigit() or abs(now.timestamp() - int(timestamp)) > tolerance.total_seconds():
        raise WebhookRejected("timestamp outside the accepted window")
    return json.loads(body)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None  # a signed POST is not replayed elsewhere: a redirect is an error


class WebhookChannel:
    """POSTs to the merchant's backend. 2xx: delivered; anything else (any other status, a
    redirect, a timeout, a refused connection) is retried until the attempts run out: the
    backend is the merchant's own, and a 401 or 404 there is usually a deployment being fixed."""

    def __init__(
        self,
        url: str,
        private_key: Ed25519PrivateKey,
        *,
        timeout: float = 10.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.url = url
        self.private_key = private_key
        self.timeout = timeout
        self.clock = clock
        self._opener = urllib.request.build_opener(_NoRedirects)

    def send(self, message: Outgoing) -> None:
        body = message.body()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "coalition-merchant-node",
            ID_HEADER: message.notification_id,
            MERCHANT_HEADER: message.merchant_id,
            **sign_webhook(self.private_key, body, self.clock()),
        }
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                response.read(65536)
        except urllib.error.HTTPError as err:
            raise DeliveryFailed(f"webhook answered HTTP {err.code}") from err
        except (urllib.error.URLError, OSError) as err:
            raise DeliveryFailed(f"webhook unreachable: {err}") from err


# -- email -----------------------------------------------------------------------------------


def render(message: Outgoing) -> tuple[str, str]:
    """The subject and text of a notification, in Chinese and English."""
    data, shop = message.data, message.merchant_id
    if message.kind == "expiry_reminder":
        points, day = data["points"], data["expires_on"]
        return (
            f"您有 {points} 积分将于 {day} 到期 / {points} points expire on {day}",
            f"您好，您在 {shop} 的 {points} 积分将于 {day} 到期，请在到期前使用。\n"
            f"Hello, {points} of your points at {shop} expire on {day}. "
            "Use them before then.\n",
        )
    if message.kind == "expired":
        points = data["points"]
        return (
            f"{points} 积分已过期 / {points} points expired",
            f"您在 {shop} 的 {points} 积分已过期。\n{points} of your points at {shop} expired.\n",
        )
    if "subject" in data and "text" in data:  # campaigns say their own piece
        return str(data["subject"]), str(data["text"])
    return f"{shop}: {message.kind}", json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def compose_email(message: Outgoing, sender: str, at: datetime) -> EmailMessage:
    if not message.email:
        raise DeliveryFailed("the member has no email address", permanent=True)
    subject, text = render(message)
    domain = sender.rpartition("@")[2] or "coalition.invalid"
    email = EmailMessage()
    email["From"] = sender
    email["To"] = message.email
    email["Subject"] = subject
    email["Date"] = format_datetime(at)
    # The same notification re-sent keeps its Message-ID, which mail systems dedupe on.
    email["Message-ID"] = f"<{message.merchant_id}.{message.notification_id}@{domain}>"
    email[ID_HEADER] = message.notification_id
    email.set_content(text)
    return email


class EmailChannel:
    """SMTP (stdlib smtplib), with STARTTLS and login when configured. The recipient or the
    message refused with a 5xx answer: dead, retrying cannot help. Anything else (4xx, a lost
    connection, a login or sender the server refuses: the node's configuration) is retried."""

    def __init__(
        self, settings: NotificationSettings, *, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self.settings = settings
        self.clock = clock

    def send(self, message: Outgoing) -> None:
        s = self.settings
        email = compose_email(message, s.smtp_from, self.clock())
        try:
            with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_seconds) as smtp:
                if s.smtp_starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if s.smtp_username:
                    smtp.login(s.smtp_username, s.smtp_password)
                smtp.send_message(email)
        except smtplib.SMTPRecipientsRefused as err:
            codes = [code for code, _ in err.recipients.values()]
            permanent = all(code >= 500 for code in codes)
            raise DeliveryFailed(f"recipient refused: {codes}", permanent=permanent) from err
        except smtplib.SMTPDataError as err:
            raise DeliveryFailed(
                f"message refused: SMTP {err.smtp_code} {err.smtp_error!r}",
                permanent=err.smtp_code >= 500,
            ) from err
        except (smtplib.SMTPException, OSError) as err:
            raise DeliveryFailed(f"SMTP failed: {err}") from err
