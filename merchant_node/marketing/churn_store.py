"""The nightly churn step (adapter): every buyer's history from member_facts in the models'
terms (days; frequency = orders after the first), the model fitted, each buyer's scores written
back, the parameters kept with the night's run."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, bindparam, select, update

from merchant_node.marketing.churn import Customer, fit, score
from merchant_node.marketing.schema import marketing_runs, member_facts

_DAY = timedelta(days=1)


def score_all(conn: Connection, as_of: datetime, zone: str = "Asia/Shanghai") -> bool:
    f = member_facts.c
    rows = conn.execute(
        select(f.member_pk, f.first_order_at, f.last_order_at, f.orders_total, f.spend_total_fen)
        .where(f.orders_total > 0)
        .order_by(f.member_pk)
    ).all()
    customers = [
        Customer(
            row.member_pk,
            row.orders_total - 1,
            (row.last_order_at - row.first_order_at) / _DAY,
            (as_of - row.first_order_at) / _DAY,
            row.spend_total_fen / row.orders_total,
        )
        for row in rows
    ]
    conn.execute(
        update(member_facts).values(
            p_alive_bps=None, expected_orders_90d_milli=None, expected_order_value_fen=None
        )
    )
    params = fit(customers)
    day = as_of.astimezone(ZoneInfo(zone)).date().isoformat()
    existing = conn.execute(select(marketing_runs).where(marketing_runs.c.run_day == day)).first()
    model = params.to_json() if params else None
    if existing is None:
        conn.execute(
            marketing_runs.insert().values(
                run_day=day,
                as_of=as_of,
                members=0,
                at_risk=0,
                at_risk_share_bps=0,
                warned=False,
                model_params=model,
            )
        )
    else:
        conn.execute(
            update(marketing_runs).where(marketing_runs.c.run_day == day).values(model_params=model)
        )
    if params is None:
        return False
    scores = score(params, customers)
    if scores:
        conn.execute(
            update(member_facts)
            .where(member_facts.c.member_pk == bindparam("pk"))
            .values(
                p_alive_bps=bindparam("alive"),
                expected_orders_90d_milli=bindparam("expected"),
                expected_order_value_fen=bindparam("value"),
            ),
            [
                dict(
                    pk=s.member_pk,
                    alive=s.p_alive_bps,
                    expected=s.expected_orders_90d_milli,
                    value=s.expected_order_value_fen,
                )
                for s in scores
            ],
        )
    return True
