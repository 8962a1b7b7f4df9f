"""The coalition's web console: a merchant's live figures of its own shop and the operator's
district (flows, net positions against caps, settlement batches to approve), in Chinese and
English, updated by server-sent events; alerts raised from rules kept as data."""
