"""Live figures of a node: per-minute rollups kept by the database in the same transaction as
each journal entry (node migration 0012), and the queries the console and /metrics read."""
