"""Netting, reconciliation and settlement batches over the exchange's clearing records
(pure logic and queries, no gRPC). Not built yet: issue 5."""
