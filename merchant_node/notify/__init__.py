"""Telling members things: an outbox in the node's database, channels, a dispatcher.

Finding what to say (reminders.py) only writes outbox rows, one per event under a unique
dedupe key; sending (dispatcher.py) is a separate step that claims due rows, sends them through
a channel (channels.py: the merchant's signed webhook, or SMTP email) and records the outcome.
Expiry never waits on either. Delivery is at least once per notification id: docs/merchant-node.md
says exactly when a receiver can see an id twice and how to verify a webhook.
"""
