"""Member intelligence: what a merchant's node knows of its own members (facts, segments, tags,
churn) and what it does about it (triggers). Member data never leaves the node."""
