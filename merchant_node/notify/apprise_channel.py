"""Any other channel through apprise (caronc/apprise): one well-kept library that speaks 100+
services — SMS gateways, WeCom (企业微信), WeChat via ServerChan/PushPlus, app push (ntfy,
Gotify, FCM, Bark), generic JSON/form webhooks — from a URL, instead of one hand-written client
per provider. The merchant maps a channel name to an apprise URL ([notifications] apprise_urls);
"{member_id}" and "{email}" in it are filled in per member (URL-quoted).

apprise answers only sent / not sent, so every failure is retried (the outbox's backoff) until
the notification is dead; a URL apprise cannot parse is dead at once. The body ends with the
notification id, which is what a receiver dedupes on (the outbox sends at least once).
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from merchant_node.notify.channels import DeliveryFailed, Outgoing, render

log = logging.getLogger(__name__)


class AppriseChannel:
    def __init__(self, url_template: str, *, timeout: float = 10.0) -> None:
        self.url_template = url_template
        self.timeout = timeout

    def url_for(self, message: Outgoing) -> str:
        return self.url_template.replace("{member_id}", quote(message.member_id, safe="")).replace(
            "{email}", quote(message.email or "", safe="@")
        )

    def send(self, message: Outgoing) -> None:
        import apprise  # imported on first use: the node starts without it

        url = self.url_for(message)
        separator = "&" if "?" in url else "?"
        # apprise's own connect/read timeouts, so a send stays within the outbox's lease.
        url = f"{url}{separator}cto={self.timeout:g}&rto={self.timeout:g}"
        target = apprise.Apprise()
        if not target.add(url):
            raise DeliveryFailed(
                f"apprise cannot use the URL {self.url_template!r}", permanent=True
            )
        subject, text = render(message)
        body = f"{text.rstrip()}\n[{message.notification_id}]"
        if not target.notify(body=body, title=subject):
            raise DeliveryFailed(f"apprise could not deliver to {url.split('://')[0]}://…")
