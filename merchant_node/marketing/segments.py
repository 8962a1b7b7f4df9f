"""A member's RFM scores, segment, tags and churn cause from their facts, with the reasons. Pure.

The nightly run decides the same in SQL for every member (segments_sql.py compiles these
definitions); this module decides for one member and explains the decision.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from merchant_node.marketing.definitions import Definitions, Rfm


@dataclass(frozen=True)
class Scores:
    r: int
    f: int
    m: int


@dataclass(frozen=True)
class Labelled:
    id: str
    name: str
    reason: str


@dataclass(frozen=True)
class Placement:
    """Where a member stands: segment, tags and (when at risk) the likely cause, each with why."""

    scores: Scores
    segment: Labelled
    tags: tuple[Labelled, ...]
    cause: Labelled | None  # only for members of an at-risk segment


def threshold_scores(rfm: Rfm, facts: Mapping[str, Any]) -> Scores:
    """Recency: 5 at or under the first cut, 1 past the last; frequency and monetary: 1 + the
    number of cuts reached."""
    recency = 5 - sum(1 for cut in rfm.recency_days if facts["recency_days"] > cut)
    frequency = 1 + bisect_right(rfm.frequency_365d, facts["orders_365d"])
    monetary = 1 + bisect_right(rfm.monetary_365d_fen, facts["spend_365d_fen"])
    return Scores(recency, frequency, monetary)


def place(
    definitions: Definitions, facts: Mapping[str, Any], scores: Scores | None = None
) -> Placement:
    """The member's placement; `scores` from the nightly quantiles, else by the thresholds."""
    if scores is None:
        scores = threshold_scores(definitions.rfm, facts)
    full = {**facts, "r_score": scores.r, "f_score": scores.f, "m_score": scores.m}
    segment = Labelled(
        definitions.default_segment, definitions.default_segment, "no segment's rules held"
    )
    for rule in definitions.segments:
        if rule.holds(full):
            segment = Labelled(rule.id, rule.name or rule.id, rule.reason(full))
            break
    tags = tuple(
        Labelled(rule.id, rule.name or rule.id, rule.reason(full))
        for rule in definitions.tags
        if rule.holds(full)
    )
    cause = None
    churn = definitions.churn
    if segment.id in churn.at_risk_segments:
        cause = Labelled(churn.default_cause, churn.default_cause, "no other cause's rules held")
        for rule in churn.causes:
            if rule.holds(full):
                cause = Labelled(rule.id, rule.name or rule.id, rule.reason(full))
                break
    return Placement(scores, segment, tags, cause)
