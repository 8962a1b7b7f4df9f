"""Settlement of the exchange's clearing records: periods, gross obligations (the exchange's
rollup of its records, or one SQL aggregate over them), net positions, a transfer plan of at
most N-1 payments, reconciliation against the nodes' statements, a Merkle commitment merchants
can verify (its subtrees hashed by helper processes), and the report. Pure logic and queries;
the Temporal workflow that runs the cycle is in workflows/settlement."""
