"""The points mall (积分商城): catalog, orders, coupons, a provably fair lottery (issue 14)."""
