"""The mall's laws over random histories (hypothesis): whatever members buy, cancel, pay,
refund or let lapse, and however the clock moves,

* stock: stock_left + Σ quantity of live orders (awaiting payment, confirmed, fulfilled) = total;
* points: each member's available + held = what she earned − Σ points of paid orders not refunded;
  held = Σ points of her orders awaiting payment and not past pay_by;
* coupons: one issued per coupon item bought by a paid order, none left issued after its refund;
* the ledger's own laws hold (audit)."""

from __future__ import annotations

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coalition_kernel.errors import CoalitionError
from merchant_node.mall.schema import mall_coupons, mall_orders
from tests.conftest import FakeClock, open_test_ledger
from tests.mall.support import coupon_item, member_with_points, open_mall, pickup_item, stock_left

MEMBERS = ("a", "b", "c")
steps = st.lists(
    st.one_of(
        st.tuples(
            st.just("buy"),
            st.sampled_from(MEMBERS),
            st.sampled_from(["cpn", "mug"]),
            st.integers(1, 3),
        ),
        st.tuples(st.just("pay"), st.integers(0, 20)),
        st.tuples(st.just("cancel"), st.integers(0, 20)),
        st.tuples(st.just("refund"), st.integers(0, 20)),
        st.tuples(st.just("wait"), st.integers(1, 20)),
        st.tuples(st.just("sweep")),
    ),
    max_size=25,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(history=steps)
def test_stock_points_and_coupons_agree_after_any_history(tmp_path_factory, history):
    clock = FakeClock()
    path = tmp_path_factory.mktemp("laws") / "node.db"
    ledger = open_test_ledger(f"sqlite:///{path}", clock)
    try:
        mall = open_mall(ledger)
        for m in MEMBERS:
            member_with_points(ledger, m, 3000)
        mall.upsert_item("u1", coupon_item("cpn", stock=6, price_points=400), "admin")
        mall.upsert_item(
            "u2", pickup_item("mug", stock=4, price_points=300, price_fen=990), "admin"
        )
        placed: list[str] = []
        for n, step in enumerate(history):
            try:
                if step[0] == "buy":
                    placed.append(mall.buy(f"s{n}", step[1], step[2], step[3]).order_id)
                elif step[0] == "wait":
                    clock.advance(minutes=step[1])
                elif step[0] == "sweep":
                    mall.sweep_lapsed()
                elif placed:
                    order_id = placed[step[1] % len(placed)]
                    if step[0] == "pay":
                        cash = mall.order(order_id).cash_fen
                        mall.confirm_payment(f"s{n}", order_id, f"ref{n}", cash)
                    elif step[0] == "cancel":
                        mall.cancel(f"s{n}", mall.order(order_id).member_id, order_id)
                    else:
                        mall.refund(f"s{n}", order_id)
            except CoalitionError:
                pass  # a refusal changes nothing; the laws below say so
        now = clock.now
        with ledger.engine.connect() as conn:
            orders = conn.execute(sa.select(mall_orders)).all()
            coupons = conn.execute(sa.select(mall_coupons)).all()
        live = ("awaiting_payment", "confirmed", "fulfilled")
        for item_id, total in (("cpn", 6), ("mug", 4)):
            held = sum(o.quantity for o in orders if o.item_id == item_id and o.status in live)
            assert stock_left(ledger, item_id) + held == total
        for m in MEMBERS:
            mine = [o for o in orders if o.member_id == m]
            spent = sum(o.points for o in mine if o.status in ("confirmed", "fulfilled"))
            waiting = sum(
                o.points for o in mine if o.status == "awaiting_payment" and o.pay_by > now
            )
            balance = ledger.balance(m)
            assert balance.held_points == waiting
            assert balance.available_points + balance.held_points == 3000 - spent
        for o in orders:
            issued = [c for c in coupons if c.order_id == o.order_id]
            if o.item_id == "cpn" and o.status == "fulfilled":
                assert len(issued) == o.quantity and all(c.status == "issued" for c in issued)
            elif o.status == "refunded":
                assert all(c.status == "withdrawn" for c in issued)
            else:
                assert issued == []
        assert ledger.audit() == []
    finally:
        ledger.engine.dispose()
