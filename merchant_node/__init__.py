"""A merchant's node: its points ledger, its earning rules and its gRPC server."""
