"""The churn model (merchant_node/marketing/churn.py) on the CDNOW sample that `lifetimes`
ships (2,357 customers, Jan 1997 - Jun 1998), next to the published figures:

- BG/NBD fitted on the 39-week calibration period (weeks as the unit), as in Fader, Hardie &
  Lee (2005), "Counting your customers the easy way", Marketing Science 24(2): r = 0.243,
  alpha = 4.414, a = 0.793, b = 2.426; their holdout check: repeat purchases in weeks 40-78,
  predicted against actual (by the number of calibration repeat purchases, as in its fig. 3).
- Gamma-Gamma on the calibration summary with average order values (Fader, Hardie & Lee 2005,
  "RFM and CLV", and the lifetimes documentation): p = 6.25, q = 3.74, v = 15.44.
- The at-risk ranking against the plain rule: AUC of "did not buy again in the holdout" for
  the model's expected holdout orders (fewest first: the node's at-risk order), for 1 - P(alive)
  alone, and for "90 days (13 weeks) or more since the last purchase".

Run: .venv/bin/python bench/marketing_model_check.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import lifetimes  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from lifetimes.utils import calibration_and_holdout_data  # noqa: E402

from merchant_node.marketing.churn import Customer, ModelParams, fit, score  # noqa: E402

PUBLISHED_BG = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_GG = {"p": 6.25, "q": 3.74, "v": 15.44}


# The data files lifetimes ships (its own loaders need pkg_resources, gone from setuptools 81).
DATASETS = Path(lifetimes.__file__).parent / "datasets"


def auc(scores: np.ndarray, positives: np.ndarray) -> float:
    """Probability that a random positive outranks a random negative (ties count half)."""
    ranks = pd.Series(scores).rank(method="average").to_numpy()
    n_pos = int(positives.sum())
    n_neg = len(positives) - n_pos
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def main() -> None:
    raw = pd.read_csv(
        DATASETS / "CDNOW_sample.txt",
        header=None,
        sep=r"\s+",
        names=["customer", "customer_index", "date", "quantity", "amount"],
        dtype={"date": str},
    )
    raw["date"] = pd.to_datetime(raw["date"], format="%Y%m%d")
    summary = calibration_and_holdout_data(
        raw,
        "customer",
        "date",
        calibration_period_end="1997-09-30",
        observation_period_end="1998-06-30",
        freq="D",
        monetary_value_col="amount",
    )
    # Days counted, weeks reported (the paper's unit, with day precision like its t_x and T).
    for column in ("recency_cal", "T_cal", "duration_holdout"):
        summary[column] = summary[column] / 7
    customers = [
        Customer(
            int(i),
            int(row.frequency_cal),
            float(row.recency_cal),
            float(row.T_cal),
            float(row.monetary_value_cal),
        )
        for i, row in summary.iterrows()
    ]
    params = fit(customers)
    assert params is not None
    print(f"CDNOW sample: {len(summary)} customers, calibration 1997-01-01..1997-09-30 (weeks)")
    print("BG/NBD        ours     published")
    for name, published in PUBLISHED_BG.items():
        print(f"  {name:<8} {getattr(params, name):8.3f}  {published:8.3f}")

    holdout_weeks = float(summary["duration_holdout"].iloc[0])
    scored = score(params, customers, horizon_days=int(round(holdout_weeks)))
    predicted = sum(s.expected_orders_90d_milli for s in scored) / 1000
    actual = int(summary["frequency_holdout"].sum())
    print(
        f"Holdout ({holdout_weeks:.0f} weeks): repeat purchases predicted {predicted:,.0f}, "
        f"actual {actual:,}"
    )
    print("  by calibration repeat purchases: mean holdout purchases, predicted vs actual")
    frame = pd.DataFrame(
        {
            "x": summary["frequency_cal"].clip(upper=7).astype(int),
            "predicted": [s.expected_orders_90d_milli / 1000 for s in scored],
            "actual": summary["frequency_holdout"],
        }
    )
    for x, group in frame.groupby("x"):
        label = f"{x}+" if x == 7 else str(x)
        print(
            f"    x={label:<3} n={len(group):5d}  predicted {group.predicted.mean():5.2f}"
            f"  actual {group.actual.mean():5.2f}"
        )

    gg_summary = pd.read_csv(DATASETS / "cdnow_customers_summary_with_transactions.csv")
    gg_summary.columns = ["customer_id", "frequency", "recency", "T", "monetary_value"]
    gg_summary = gg_summary.set_index("customer_id")
    repeaters = gg_summary[gg_summary["frequency"] > 0]
    gg_customers = [
        Customer(int(i), int(r.frequency), float(r.recency), float(r["T"]), float(r.monetary_value))
        for i, r in repeaters.iterrows()
    ]
    gg = fit(gg_customers)
    assert gg is not None and gg.p is not None
    print(f"Gamma-Gamma ({len(repeaters)} repeat customers)   ours     published")
    for name, published in PUBLISHED_GG.items():
        print(f"  {name:<8}                      {getattr(gg, name):8.3f}  {published:8.3f}")

    churned = (summary["frequency_holdout"] == 0).to_numpy()
    at_risk_model = np.array([1 - s.p_alive_bps / 10_000 for s in scored])
    # The node ranks by expected orders (fewest first): P(alive) is 1 for a customer who never
    # bought again, so alone it ranks one-time buyers safest, which they are not.
    at_risk_expected = np.array([-s.expected_orders_90d_milli for s in scored], dtype=float)
    weeks_silent = (summary["T_cal"] - summary["recency_cal"]).to_numpy()
    rule_90_days = (weeks_silent >= 90 / 7).astype(float)
    print(f"At-risk ranking, 'no purchase in the holdout' ({churned.sum()} of {len(churned)}):")
    print(f"  AUC 1 - P(alive) (BG/NBD)       {auc(at_risk_model, churned):.3f}")
    print(f"  AUC fewest expected orders      {auc(at_risk_expected, churned):.3f}  (the node's)")
    print(f"  AUC 90-day rule (yes/no)        {auc(rule_90_days, churned):.3f}")
    print(f"  AUC weeks since last purchase   {auc(weeks_silent, churned):.3f}")
    _ = ModelParams  # the stored form of the parameters (marketing_runs.model_params)


if __name__ == "__main__":
    main()
