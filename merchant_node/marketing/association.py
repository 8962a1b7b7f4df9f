"""Which categories (or SKUs) a shop's members buy together: frequent itemsets and association
rules over the shop's baskets (the order lines of each order), with mlxtend's FP-Growth and
association_rules (the `[marketing]` extra). Feeds related-product offers (a category shift's
"related new products") and partnerships. Read-only; the shop's own data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from coalition_kernel.errors import InvalidArgument
from merchant_node.marketing.schema import order_lines


@dataclass(frozen=True)
class Rule:
    antecedents: tuple[str, ...]
    consequents: tuple[str, ...]
    support: float  # share of baskets holding both sides
    confidence: float  # of baskets holding the antecedents, the share also holding the rest
    lift: float  # confidence over the consequents' own share: > 1, bought together by choice


def baskets(
    conn: Connection, since: datetime, until: datetime, by: str = "category"
) -> list[set[str]]:
    """Each order's distinct categories (or SKUs) in [since, until)."""
    if by not in ("category", "sku"):
        raise InvalidArgument("BAD_ITEM_LEVEL", "by must be category or sku")
    column = order_lines.c[by]
    rows = conn.execute(
        select(order_lines.c.order_id, column)
        .where(order_lines.c.occurred_at >= since, order_lines.c.occurred_at < until)
        .order_by(order_lines.c.order_id)
    )
    grouped: dict[str, set[str]] = {}
    for order_id, item in rows:
        grouped.setdefault(order_id, set()).add(item)
    return list(grouped.values())


def association_rules(
    carts: list[set[str]], min_support: float = 0.01, min_confidence: float = 0.3
) -> list[Rule]:
    """Rules A → B with support ≥ min_support and confidence ≥ min_confidence, by lift."""
    if not 0 < min_support <= 1 or not 0 < min_confidence <= 1:
        raise InvalidArgument("BAD_THRESHOLD", "min_support and min_confidence are in (0, 1]")
    carts = [c for c in carts if c]
    if not carts:
        return []
    import pandas as pd
    from mlxtend.frequent_patterns import association_rules as mine_rules
    from mlxtend.frequent_patterns import fpgrowth
    from mlxtend.preprocessing import TransactionEncoder

    encoder = TransactionEncoder()
    table = pd.DataFrame(encoder.fit(carts).transform(carts), columns=encoder.columns_)
    itemsets = fpgrowth(table, min_support=min_support, use_colnames=True)
    if itemsets.empty:
        return []
    found = mine_rules(
        itemsets, num_itemsets=len(carts), metric="confidence", min_threshold=min_confidence
    )
    rules = [
        Rule(
            tuple(sorted(row.antecedents)),
            tuple(sorted(row.consequents)),
            float(row.support),
            float(row.confidence),
            float(row.lift),
        )
        for row in found.itertuples()
    ]
    return sorted(rules, key=lambda r: (-r.lift, -r.confidence, r.antecedents, r.consequents))
