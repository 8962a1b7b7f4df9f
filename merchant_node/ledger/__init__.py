"""The node's ledger: members, point lots, holds, an append-only journal, idempotency records."""
