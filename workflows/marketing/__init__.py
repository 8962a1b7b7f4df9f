"""A node's nightly member intelligence run (MemberIntelligenceWorkflow)."""
