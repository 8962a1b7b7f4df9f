"""Triggers as data: who (segment, churn cause, tags, conditions over facts, birthday month),
how often (once per episode of silence, per month, per year, ever; a frequency cap across all
triggers), who is held out (a control group by hash of trigger id and member id, like a
campaign's) and what is done (a message, bonus points, a coupon). Pure.

    frequency_cap: {max_actions: 1, per_days: 30}
    triggers:
      - id: wake_price_sensitive
        who: {segments: [dormant], cause: price_sensitive}
        once_per: episode            # a new episode begins with each purchase
        control_percent: 20
        action: {kind: coupon, value_fen: 5000, min_spend_fen: 20000, valid_days: 14,
                 subject: ..., text: ...}
        conversion_days: 30          # an order within 30 days counts as woken up / converted
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
)

from merchant_node.marketing.conditions import Condition, ConditionError, parse_condition
from merchant_node.marketing.definitions import DefinitionsInvalid
from merchant_node.rules.program import ProgramInvalid, load_document

Ident = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NearNextTier(_Model):
    """Close to the next tier of the rules engine's program: the member's tier measure (the
    facts' 365-day spend in fen for `spend_12m`, earned points for `points_12m`) is short of the
    next level's threshold by at most `within` (same unit); nobody at the top or without tiers."""

    within: int = Field(ge=1, le=100_000_000)


class PointsExpiring(_Model):
    """At least `min_points` of the member's spendable lots expire within `within_days`. The
    expiry reminder (notify/reminders.py) already tells them: such a trigger makes an offer."""

    within_days: int = Field(ge=1, le=365)
    min_points: int = Field(default=1, ge=1, le=100_000_000)


class Who(_Model):
    segments: list[Ident] = []  # empty: any segment
    cause: Ident | None = None
    tags: list[Ident] = []  # all of them
    when: tuple[Condition, ...] = ()
    birthday_month: bool = False  # members whose birth month is this (local) month
    near_next_tier: NearNextTier | None = None
    points_expiring: PointsExpiring | None = None

    @field_validator("when", mode="before")
    @classmethod
    def _parse(cls, value: Any) -> tuple[Condition, ...]:
        if all(isinstance(v, Condition) for v in value):
            return tuple(value)
        try:
            return tuple(parse_condition(text) for text in value)
        except ConditionError as exc:
            raise ValueError(str(exc)) from None

    @field_serializer("when")
    def _texts(self, when: tuple[Condition, ...]) -> list[str]:
        return [c.text for c in when]


class Action(_Model):
    kind: Literal["message", "bonus", "coupon"]
    subject: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1, max_length=2000)
    bonus_points: int = Field(default=0, ge=0, le=1_000_000)
    bonus_valid_days: int = Field(default=90, ge=1, le=3650)
    value_fen: int = Field(default=0, ge=0, le=10_000_000)  # a coupon's value
    min_spend_fen: int = Field(default=0, ge=0, le=100_000_000)  # 满200减50: 20000 / 5000
    valid_days: int = Field(default=14, ge=1, le=365)


class Trigger(_Model):
    id: Ident
    who: Who
    once_per: Literal["episode", "month", "year", "ever"] = "episode"
    control_percent: int = Field(default=10, ge=0, le=90)
    action: Action
    conversion_days: int = Field(default=30, ge=1, le=365)
    enabled: bool = True


class FrequencyCap(_Model):
    max_actions: int = Field(default=1, ge=1, le=100)
    per_days: int = Field(default=30, ge=1, le=365)


class TriggerSet(_Model):
    frequency_cap: FrequencyCap = FrequencyCap()
    triggers: list[Trigger] = Field(default=[], max_length=64)


def parse_triggers(text: str) -> TriggerSet:
    """Validates a document; DefinitionsInvalid (TRIGGERS_INVALID) lists every error."""
    try:
        document = load_document(text)
    except ProgramInvalid as exc:
        raise DefinitionsInvalid("TRIGGERS_INVALID", exc.errors) from None
    errors: list[str] = []
    parsed = None
    try:
        parsed = TriggerSet.model_validate(document)
    except ValidationError as exc:
        errors = [
            f"{'.'.join(str(p) for p in e['loc']) or 'document'}: {e['msg']}" for e in exc.errors()
        ]
    if parsed is not None:
        ids = [t.id for t in parsed.triggers]
        errors += [
            f"triggers: duplicate id {i!r}" for i in sorted({i for i in ids if ids.count(i) > 1})
        ]
        for t in parsed.triggers:
            if t.action.kind == "bonus" and not t.action.bonus_points:
                errors.append(f"triggers.{t.id}.action: a bonus needs bonus_points")
            if t.action.kind == "coupon" and not t.action.value_fen:
                errors.append(f"triggers.{t.id}.action: a coupon needs value_fen")
            if t.who.points_expiring and t.action.kind == "message":
                errors.append(
                    f"triggers.{t.id}.action: points_expiring makes an offer (bonus or coupon);"
                    " the expiry reminder already sends the message"
                )
    if errors or parsed is None:
        raise DefinitionsInvalid("TRIGGERS_INVALID", errors)
    return parsed


def canonical(triggers: TriggerSet) -> str:
    return json.dumps(triggers.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)


def in_control(trigger_id: str, member_id: str, percent: int) -> bool:
    """Held out: SHA-256 of "trigger:<id>:<member id>", first 8 bytes, modulo 100, below
    `percent` (the rules engine's control groups, salted with the trigger's id)."""
    digest = hashlib.sha256(f"trigger:{trigger_id}:{member_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100 < percent


def occasion(trigger: Trigger, last_order_at: datetime | None, local_now: datetime) -> str:
    """What makes a repeat of the trigger a new occasion; (trigger, member, occasion) acts once.
    An episode of silence is named by the last order that began it."""
    if trigger.once_per == "episode":
        return "e:" + (last_order_at.strftime("%Y%m%dT%H%M%S") if last_order_at else "never")
    if trigger.once_per == "month":
        return local_now.strftime("m:%Y-%m")
    if trigger.once_per == "year":
        return local_now.strftime("y:%Y")
    return "ever"


# The seeds' offers (003): price-sensitive → 满200减50 coupon; category shift → related new
# products; long silence → a welcome-back gift and double points. And the behaviour triggers of
# 000: points to redeem, birthday month, close to the next tier, points expiring (an offer: the
# expiry reminder is the message), first purchase follow-up.
DEFAULT_DOCUMENT = """
frequency_cap: {max_actions: 1, per_days: 30}
triggers:
  - id: wake_price_sensitive
    who: {segments: [dormant], cause: price_sensitive}
    control_percent: 20
    action:
      kind: coupon
      value_fen: 5000
      min_spend_fen: 20000
      valid_days: 14
      subject: 满200减50 限时券 / 50 yuan off 200, this fortnight
      text: 好久不见！送您一张满200减50的限时券，14天内有效。
  - id: wake_category_shift
    who: {segments: [dormant], cause: category_shift}
    control_percent: 20
    action:
      kind: message
      subject: 新品到店，附赠体验装 / New in, with a free sample
      text: 您常买的品类有新品到店，凭此消息到店领取体验装。
  - id: wake_long_silence
    who: {segments: [dormant], cause: long_silence}
    control_percent: 20
    action:
      kind: bonus
      bonus_points: 100
      subject: 欢迎回来礼 + 双倍积分 / A welcome-back gift and double points
      text: 送您100积分作为回归礼，下次消费享双倍积分。
  - id: redeemable_balance
    who: {when: ["redeemed_points_365d == 0", "earned_points_365d >= 500"]}
    once_per: month
    control_percent: 10
    action:
      kind: message
      subject: 您的积分可以兑换啦 / Your points can buy a free tea
      text: 您的积分已够兑换一杯免费茶饮，欢迎到店使用。
  - id: birthday_month
    who: {birthday_month: true}
    once_per: year
    control_percent: 0
    action:
      kind: message
      subject: "生日快乐，本月双倍积分 / Happy birthday: double points this month"
      text: 生日月消费享双倍积分。
  - id: near_next_tier
    who: {near_next_tier: {within: 5000}}
    once_per: month
    control_percent: 10
    action:
      kind: message
      subject: 离升级只差一点 / Nearly at the next tier
      text: 再消费50元即可升级会员等级，享更多积分。
  - id: points_expiring_offer
    who: {points_expiring: {within_days: 30, min_points: 100}}
    once_per: month
    control_percent: 10
    action:
      kind: coupon
      value_fen: 1000
      min_spend_fen: 5000
      valid_days: 30
      subject: 积分快到期，再送一张券 / Points expiring soon, a coupon to use them
      text: 您有积分即将到期，送您一张满50减10的券，到店消费时可一并使用积分。
  - id: first_purchase_follow_up
    who: {when: ["orders_total == 1", "recency_days >= 7", "recency_days <= 14"]}
    once_per: ever
    control_percent: 10
    action:
      kind: message
      subject: 感谢首次光临 / Thanks for your first visit
      text: 感谢您的首次光临，期待再次见到您。
"""


def default_triggers() -> TriggerSet:
    return parse_triggers(DEFAULT_DOCUMENT)
