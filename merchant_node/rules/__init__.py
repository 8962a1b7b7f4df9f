"""How the node decides what a purchase earns. The full rules engine plugs in at `EarningRules`."""
