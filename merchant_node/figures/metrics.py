"""The node's business figures on /metrics, read from the rollups at scrape time."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from merchant_node.figures import queries

log = logging.getLogger(__name__)


class NodeFigures(Collector):
    """Points issued, redeemed, expired and outstanding, members, open holds, outbox backlog.

    Counters come from the database, so they are exact and survive restarts; every process of
    a node reports the same figures (Prometheus de-duplicates by the `merchant` label)."""

    def __init__(self, engine: Engine, merchant_id: str) -> None:
        self.engine = engine
        self.merchant_id = merchant_id

    def collect(self) -> Iterator[Metric]:
        try:
            with self.engine.connect() as conn:
                f = queries.flows(conn)
                holds, held = queries.open_holds(conn)
                backlog = queries.outbox_backlog(conn)
        except Exception:  # a scrape must not fail because the database is briefly away
            log.warning("node figures unavailable for /metrics", exc_info=True)
            return
        labels = ["merchant"]
        value = [self.merchant_id]
        for name, doc, number in (
            ("coalition_points_issued", "Points issued (earned and rewarded)", f.issued),
            ("coalition_points_redeemed", "Points redeemed here and at other shops", f.redeemed),
            ("coalition_points_expired", "Points expired to breakage", f.expired),
            ("coalition_points_clawed_back", "Points taken back by refunds", f.clawed_back),
            ("coalition_earns", "Purchases that earned points", f.earns),
            ("coalition_redemptions", "Redemptions at this shop", f.redemptions),
            ("coalition_members_enrolled", "Members enrolled", f.enrolled),
        ):
            counter = CounterMetricFamily(name, doc, labels=labels)
            counter.add_metric(value, number)
            yield counter
        for name, doc, number in (
            ("coalition_points_outstanding", "Points members hold (the liability)", f.outstanding),
            ("coalition_open_holds", "Holds pending for other shops' redemptions", holds),
            ("coalition_open_hold_points", "Points in pending holds", held),
            ("coalition_outbox_backlog", "Notifications waiting for delivery", backlog),
        ):
            gauge = GaugeMetricFamily(name, doc, labels=labels)
            gauge.add_metric(value, number)
            yield gauge
