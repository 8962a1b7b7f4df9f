"""Churn model: BG/NBD (is the member still buying, how many orders next) and Gamma-Gamma
(what an order of theirs is worth), fitted each night on the node's own members.

We use `lifetimes` (0.11.3; the `[marketing]` extra): the reference implementation of Fader,
Hardie & Lee's models, small (3 MB over numpy/scipy/pandas/autograd) and a 1-3 s import, where
pymc-marketing would bring PyMC and PyTensor (hundreds of MB, a compiler at import) for the same
maximum-likelihood fit. bench/marketing_model_check.py checks the fit against the published
CDNOW parameters. The time unit is the day; amounts are fen.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass

MIN_REPEATERS = 20  # fewer repeat buyers than this: no model tonight (scores stay empty)


@dataclass(frozen=True)
class Customer:
    """One member in the models' terms: repeat orders, and days first→last and first→now."""

    member_pk: int
    frequency: int
    recency_days: float
    age_days: float
    avg_repeat_value_fen: float  # average order value (the models' `monetary_value`)


@dataclass(frozen=True)
class ModelParams:
    r: float
    alpha: float
    a: float
    b: float
    p: float | None = None  # Gamma-Gamma: None when too few repeaters to fit it
    q: float | None = None
    v: float | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


@dataclass(frozen=True)
class Score:
    member_pk: int
    p_alive_bps: int
    expected_orders_90d_milli: int
    expected_order_value_fen: int | None


def fit(customers: Sequence[Customer]) -> ModelParams | None:
    """Maximum-likelihood BG/NBD (+ Gamma-Gamma on repeaters); None with too little data."""
    import pandas as pd
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    known = [c for c in customers if c.frequency >= 0 and c.age_days > 0]
    repeaters = [c for c in known if c.frequency > 0 and c.avg_repeat_value_fen > 0]
    if len(repeaters) < MIN_REPEATERS:
        return None
    frame = pd.DataFrame(
        {
            "frequency": [c.frequency for c in known],
            "recency": [c.recency_days for c in known],
            "T": [c.age_days for c in known],
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bg = BetaGeoFitter(penalizer_coef=0.0)
        try:
            bg.fit(frame["frequency"], frame["recency"], frame["T"])
        except Exception:  # noqa: BLE001 - a fit that does not converge: no model tonight
            return None
        params = bg.params_
        try:
            gg = GammaGammaFitter(penalizer_coef=0.0)
            gg.fit(
                pd.Series([c.frequency for c in repeaters]),
                pd.Series([c.avg_repeat_value_fen for c in repeaters]),
            )
            p, q, v = (float(gg.params_[k]) for k in ("p", "q", "v"))
        except Exception:  # noqa: BLE001 - a diverging fit leaves the value model out
            p = q = v = None  # type: ignore[assignment]
    return ModelParams(
        float(params["r"]), float(params["alpha"]), float(params["a"]), float(params["b"]), p, q, v
    )


def score(
    params: ModelParams, customers: Sequence[Customer], horizon_days: int = 90
) -> list[Score]:
    """Each member's P(alive), expected orders over the horizon and expected order value."""
    import numpy as np
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    if not customers:
        return []
    bg = BetaGeoFitter()
    bg.params_ = _series({"r": params.r, "alpha": params.alpha, "a": params.a, "b": params.b})
    x = np.array([c.frequency for c in customers], dtype=float)
    t_x = np.array([c.recency_days for c in customers], dtype=float)
    age = np.array([max(c.age_days, 1e-9) for c in customers], dtype=float)
    with np.errstate(all="ignore"):
        alive = np.nan_to_num(bg.conditional_probability_alive(x, t_x, age), nan=1.0)
        expected = np.nan_to_num(
            bg.conditional_expected_number_of_purchases_up_to_time(horizon_days, x, t_x, age)
        )
    values: list[float | None] = [None] * len(customers)
    if params.p is not None:
        gg = GammaGammaFitter()
        gg.params_ = _series({"p": params.p, "q": params.q, "v": params.v})
        m = np.array([c.avg_repeat_value_fen for c in customers], dtype=float)
        values = list(gg.conditional_expected_average_profit(x, m))
    return [
        Score(
            c.member_pk,
            min(10_000, max(0, round(float(alive[i]) * 10_000))),
            max(0, round(float(expected[i]) * 1000)),
            None if values[i] is None or not math.isfinite(values[i]) else round(values[i]),  # type: ignore[arg-type]
        )
        for i, c in enumerate(customers)
    ]


def _series(values: dict[str, float | None]):  # type: ignore[no-untyped-def]
    import pandas as pd

    return pd.Series(values)
