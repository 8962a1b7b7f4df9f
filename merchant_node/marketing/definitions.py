"""A merchant's segments, tags and churn causes as data (YAML or JSON), validated whole. Pure.

    rfm: {method: thresholds, recency_days: [30, 60, 90, 180], ...}   # or method: quantiles
    segments:   # in order, the first whose conditions all hold; `default` otherwise
      - {id: new, name: 新会员, when: ["orders_total <= 1", "tenure_days <= 30"]}
    tags:       # every tag whose conditions all hold
      - {id: price_sensitive, name: 价格敏感型, when: ["campaign_share_bps >= 5000"]}
    churn:      # members of these segments are at risk; the first cause that holds is theirs
      at_risk_segments: [at_risk, dormant]
      causes: [{id: price_sensitive, when: ["campaign_share_bps >= 5000"]}, ...]
      default_cause: long_silence
      warn_jump_bps: 500   # the merchant is warned when the at-risk share rises this much

`default_definitions()` is the seeds' program (docs/marketing.md explains each rule).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from coalition_kernel.errors import InvalidArgument
from merchant_node.marketing.conditions import Condition, ConditionError, parse_condition
from merchant_node.rules.program import ProgramInvalid, load_document

Ident = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]


class DefinitionsInvalid(InvalidArgument):
    """Definitions refused, with every error found."""

    def __init__(self, reason: str, errors: list[str]) -> None:
        super().__init__(reason, "; ".join(errors))
        self.errors = errors


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _conditions(value: list[str]) -> tuple[Condition, ...]:
    try:
        return tuple(parse_condition(text) for text in value)
    except ConditionError as exc:
        raise ValueError(str(exc)) from None


class Rule(_Model):
    """A named set of conditions, all of which must hold (an empty `when` always holds)."""

    id: Ident
    name: str = Field(default="", max_length=64)
    when: tuple[Condition, ...] = ()

    @field_validator("when", mode="before")
    @classmethod
    def _parse(cls, value: Any) -> tuple[Condition, ...]:
        if not isinstance(value, list | tuple):
            raise ValueError("when is a list of conditions")
        if all(isinstance(v, Condition) for v in value):
            return tuple(value)
        return _conditions(list(value))

    @field_serializer("when")
    def _texts(self, when: tuple[Condition, ...]) -> list[str]:
        return [c.text for c in when]

    def holds(self, facts: dict[str, Any]) -> bool:
        return all(c.holds(facts) for c in self.when)

    def reason(self, facts: dict[str, Any]) -> str:
        if not self.when:
            return "no other segment matched"
        return " and ".join(c.explain(facts) for c in self.when)


def _ascending(values: list[int]) -> list[int]:
    if len(values) != 4 or any(b <= a for a, b in zip(values, values[1:], strict=False)):
        raise ValueError("give 4 thresholds in ascending order (they cut scores 1-5)")
    return values


class Rfm(_Model):
    """Scores 1-5. quantiles: fifths of the members (NTILE); thresholds: the merchant's cuts.
    Recency scores 5 at or under the first threshold; frequency and monetary score 1 + the
    number of thresholds reached."""

    method: Literal["quantiles", "thresholds"] = "thresholds"
    recency_days: list[int] = [30, 60, 90, 180]
    frequency_365d: list[int] = [2, 4, 8, 12]
    monetary_365d_fen: list[int] = [20_000, 50_000, 100_000, 300_000]

    _r = field_validator("recency_days")(classmethod(lambda cls, v: _ascending(v)))
    _f = field_validator("frequency_365d")(classmethod(lambda cls, v: _ascending(v)))
    _m = field_validator("monetary_365d_fen")(classmethod(lambda cls, v: _ascending(v)))


class Churn(_Model):
    at_risk_segments: list[Ident] = []
    causes: list[Rule] = []
    default_cause: Ident = "long_silence"
    # The merchant is warned when the night's at-risk share rises this much (basis points of
    # all placed members) over the previous night's: 500 = 5 percentage points.
    warn_jump_bps: int = Field(default=500, ge=1, le=10_000)


class Definitions(_Model):
    rfm: Rfm = Rfm()
    segments: list[Rule] = Field(min_length=1, max_length=32)
    default_segment: Ident = "regular"
    tags: list[Rule] = Field(default=[], max_length=64)
    churn: Churn = Churn()

    @model_validator(mode="after")
    def _references(self) -> Definitions:
        for section, rules in (
            ("segments", self.segments),
            ("tags", self.tags),
            ("churn.causes", self.churn.causes),
        ):
            ids = [r.id for r in rules]
            dupes = sorted({i for i in ids if ids.count(i) > 1})
            if dupes:
                raise ValueError(f"{section}: duplicate id {dupes[0]!r}")
        known = {r.id for r in self.segments} | {self.default_segment}
        for segment in self.churn.at_risk_segments:
            if segment not in known:
                raise ValueError(f"churn.at_risk_segments: no segment {segment!r}")
        return self

    def rule_names(self) -> dict[str, str]:
        return {r.id: r.name or r.id for r in (*self.segments, *self.tags)}


def parse_definitions(text: str) -> Definitions:
    """Validates a document; DefinitionsInvalid (SEGMENTS_INVALID) lists every error."""
    try:
        document = load_document(text)
    except ProgramInvalid as exc:
        raise DefinitionsInvalid("SEGMENTS_INVALID", exc.errors) from None
    try:
        return Definitions.model_validate(document)
    except ValidationError as exc:
        errors = [
            f"{'.'.join(str(p) for p in e['loc']) or 'document'}: {e['msg']}" for e in exc.errors()
        ]
        raise DefinitionsInvalid("SEGMENTS_INVALID", errors) from None


def canonical(definitions: Definitions) -> str:
    """The stored form: canonical JSON of what the merchant wrote (conditions as text)."""
    return json.dumps(
        definitions.model_dump(mode="json"), sort_keys=True, ensure_ascii=False, default=str
    )


DEFAULT_DOCUMENT = """
rfm:
  method: thresholds
  recency_days: [30, 60, 90, 180]
  frequency_365d: [2, 4, 8, 12]
  monetary_365d_fen: [20000, 50000, 100000, 300000]
segments:
  - {id: new, name: 新会员, when: ["orders_total <= 1", "tenure_days <= 30"]}
  - {id: lost, name: 流失, when: ["orders_total >= 1", "recency_days >= 365"]}
  # The seeds' dormant rule: 90 days without a purchase.
  - {id: dormant, name: 沉睡, when: ["orders_total >= 1", "recency_days >= 90"]}
  # The seeds' other rule: spending below half their average (orders of the last 90 days
  # average under half of the year's average order).
  - id: at_risk
    name: 流失风险
    when: ["orders_90d >= 1", "avg_order_90d_fen < 0.5 * avg_order_365d_fen"]
  - {id: loyal, name: 忠诚, when: ["r_score >= 4", "f_score >= 4", "m_score >= 3"]}
  - {id: active, name: 活跃, when: ["recency_days <= 30"]}
default_segment: regular
tags:
  - id: points_sensitive
    name: 积分敏感型
    when: ["orders_365d >= 2", "points_paid_share_bps >= 3000"]
  - id: price_sensitive
    name: 价格敏感型
    when: ["orders_365d >= 2", "campaign_share_bps >= 5000"]
  - {id: category_shift, name: 品类转移, when: ["category_shift"]}
  - {id: night_owl, name: 夜间消费, when: ["orders_365d >= 3", "evening_share_bps >= 6000"]}
churn:
  at_risk_segments: [at_risk, dormant]
  causes:
    - id: price_sensitive
      name: 价格敏感
      when: ["orders_365d >= 2", "campaign_share_bps >= 5000"]
    - {id: category_shift, name: 品类转移, when: ["category_shift"]}
  default_cause: long_silence
  # Warn the merchant when the at-risk share rises 5 points (500 bps) over the previous night.
  warn_jump_bps: 500
"""


def default_definitions() -> Definitions:
    return parse_definitions(DEFAULT_DOCUMENT)
