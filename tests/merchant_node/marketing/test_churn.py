"""The churn model recovers the parameters of a population drawn from it, and ranks a member
who went quiet below one who keeps buying."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("lifetimes")

from lifetimes.generate_data import beta_geometric_nbd_model  # noqa: E402

from merchant_node.marketing.churn import Customer, fit, score  # noqa: E402


def test_fit_recovers_the_parameters_a_population_was_drawn_with():
    np.random.seed(13)
    drawn = beta_geometric_nbd_model(T=180, r=0.5, alpha=10.0, a=0.8, b=2.5, size=4000)
    rng = np.random.default_rng(13)
    customers = [
        Customer(
            i,
            int(row.frequency),
            float(row.recency),
            float(row["T"]),
            float(rng.integers(2_000, 9_000)),
        )
        for i, row in drawn.iterrows()
    ]
    params = fit(customers)
    assert params is not None
    assert params.r == pytest.approx(0.5, rel=0.2)
    assert params.alpha == pytest.approx(10.0, rel=0.25)
    assert params.a == pytest.approx(0.8, rel=0.35)
    assert params.b == pytest.approx(2.5, rel=0.5)
    assert params.p is not None and params.v is not None


def test_a_member_gone_quiet_scores_below_one_still_buying():
    np.random.seed(7)
    drawn = beta_geometric_nbd_model(T=180, r=0.5, alpha=10.0, a=0.8, b=2.5, size=1000)
    customers = [
        Customer(i, int(r.frequency), float(r.recency), float(r["T"]), 5_000.0)
        for i, r in drawn.iterrows()
    ]
    params = fit(customers)
    assert params is not None
    steady = Customer(-1, 10, 175.0, 180.0, 5_000.0)  # ten repeat orders, the last 5 days ago
    quiet = Customer(-2, 10, 60.0, 180.0, 5_000.0)  # the same ten, then 120 days of silence
    a, b = score(params, [steady, quiet])
    assert a.p_alive_bps > b.p_alive_bps
    assert a.expected_orders_90d_milli > b.expected_orders_90d_milli
    assert 0 <= b.p_alive_bps <= 10_000


def test_too_few_repeat_buyers_fit_no_model():
    assert fit([Customer(i, 1, 10.0, 30.0, 100.0) for i in range(5)]) is None
