"""The catalog's rules, pure: windows, tiers, the priority window, limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from coalition_kernel.errors import CoalitionError
from merchant_node.mall import catalog
from merchant_node.mall.catalog import Buyer, Item

OPENS = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
GIFT = Item(
    item_id="gift",
    kind="pickup",
    title="Made-to-order gift",
    price_points=5000,
    stock_total=10,
    available_from=OPENS,
    available_until=OPENS + timedelta(days=7),
    priority_hours=24,
    priority_top_n=100,
    priority_tiers=("gold",),
)


def refusal(item: Item, buyer: Buyer, at: datetime) -> str:
    try:
        catalog.check_on_sale(item, buyer, at)
    except CoalitionError as err:
        return err.reason
    return "on sale"


@pytest.mark.parametrize(
    ("buyer", "hours", "expected"),
    [
        (Buyer("top", "", 1), -25, "ITEM_NOT_ON_SALE"),  # before the priority window
        (Buyer("top", "", 1), -23, "on sale"),  # top 100 by points, 24 h early
        (Buyer("r100", "", 100), -1, "on sale"),
        (Buyer("r101", "", 101), -1, "ITEM_NOT_ON_SALE"),
        (Buyer("gold", "gold", 5000), -1, "on sale"),  # a priority tier, whatever its rank
        (Buyer("anyone", "silver", 9999), 0, "on sale"),  # the general sale
        (Buyer("late", "", 1), 24 * 7, "ITEM_NOT_ON_SALE"),  # after available_until
    ],
)
def test_the_priority_window_opens_early_for_top_members_and_tiers_only(buyer, hours, expected):
    assert refusal(GIFT, buyer, OPENS + timedelta(hours=hours)) == expected


def test_tier_items_and_retired_items():
    gold_only = Item("g", "coupon", "Gold", 10, 1, tiers=("gold",), coupon_valid_days=1)
    assert refusal(gold_only, Buyer("m", "silver"), OPENS) == "TIER_REQUIRED"
    assert refusal(gold_only, Buyer("m", "gold"), OPENS) == "on sale"
    retired = Item("r", "coupon", "Old", 10, 1, active=False, coupon_valid_days=1)
    assert refusal(retired, Buyer("m", ""), OPENS) == "ITEM_RETIRED"
    assert not catalog.visible(gold_only, Buyer("m", "silver"), OPENS)


def test_limits_count_what_was_bought_ever_and_today():
    item = Item("x", "coupon", "X", 10, 9, per_member_limit=3, per_member_daily_limit=2)
    catalog.check_limits(item, 2, 0, 0)
    with pytest.raises(CoalitionError, match="per day"):
        catalog.check_limits(item, 1, 2, 2)
    with pytest.raises(CoalitionError, match="per member"):
        catalog.check_limits(item, 2, 2, 0)


def test_validation_names_the_field():
    for bad, field in [
        (Item("x", "gadget", "X", 10, 1), "kind"),
        (Item("x", "pickup", "", 10, 1), "title"),
        (Item("x", "pickup", "X", 0, 1), "price_points"),
        (Item("x", "pickup", "X", 10, 1, priority_hours=5), "available_from"),
        (Item("x", "coupon", "X", 10, 1), "coupon_valid_days"),
        (Item("bad id!", "pickup", "X", 10, 1), "item_id"),
    ]:
        with pytest.raises(CoalitionError) as err:
            catalog.validate(bad)
        assert field in err.value.message, (bad, err.value.message)
