"""Who may call the node: API keys with scopes and the merchant's limits (domain, store,
service), the hook every node gRPC service authenticates through (`service.NodeAuth.guard`),
transport security (`tls`) and members' wallet secrets sealed at rest (`vault`)."""
