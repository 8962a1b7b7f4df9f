"""A merchant's earning program as data: its schema, its validation and its digest.

A merchant edits the program as YAML or JSON; the node runs the validated `Program` and records
its digest, so a disputed award can be replayed against the exact rules that made it. Validation
names every error at once, by rule id and field: a merchant should not have to resubmit a program
once per mistake. Rates are exact fractions and points and fen are whole numbers; the loader reads
`1.5` as the text "1.5", never as a binary float. docs/rules.md documents every field.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date, datetime, time, timedelta
from fractions import Fraction
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from coalition_kernel.errors import InvalidArgument
from coalition_kernel.points import MAX_AMOUNT, format_ratio, parse_ratio

MAX_RATIO = 10_000  # no real rate or multiplier comes near; keeps a typo from minting billions


class ProgramInvalid(InvalidArgument):
    """A program refused, with every error found, each naming its rule (or section) and field."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("PROGRAM_INVALID", "; ".join(errors))
        self.errors = errors


def _refuse(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message)


def _exact(value: object) -> Fraction:
    if isinstance(value, str | int) and not isinstance(value, bool) and len(str(value)) <= 24:
        try:
            ratio = parse_ratio(value)
        except (ValueError, ZeroDivisionError):
            pass
        else:
            if ratio > MAX_RATIO or ratio.denominator > MAX_RATIO:
                raise _refuse(
                    "exact_number", f"must be at most {MAX_RATIO}, in steps of 1/{MAX_RATIO}"
                )
            return ratio
    raise _refuse("exact_number", 'must be a positive exact number like "2" or "1.5"')


def _multiplier(value: object) -> Fraction:
    ratio = _exact(value)
    if ratio < 1:
        raise _refuse(
            "multiplier", "must be at least 1: a multiplier adds points, never removes them"
        )
    return ratio


def _clock(value: object) -> time:
    if isinstance(value, str) and re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
        return time(int(value[:2]), int(value[3:]))
    raise _refuse("clock_time", 'must be a time of day like "18:00"')


def _time_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ValueError, KeyError):  # ZoneInfoNotFoundError is a KeyError
        raise _refuse("time_zone", 'must be an IANA time zone like "Asia/Shanghai"') from None
    return name


def _month_day(text: str) -> str:
    try:
        date.fromisoformat(f"2001-{text}")  # a common year: "02-29" would skip three years in four
    except ValueError:
        raise _refuse("month_day", 'must be a month and day like "01-01"') from None
    return text


Ratio = Annotated[Fraction, PlainValidator(_exact), PlainSerializer(format_ratio, return_type=str)]
Multiplier = Annotated[
    Fraction, PlainValidator(_multiplier), PlainSerializer(format_ratio, return_type=str)
]
ClockTime = Annotated[
    time, PlainValidator(_clock), PlainSerializer(lambda t: t.strftime("%H:%M"), return_type=str)
]
Points = Annotated[StrictInt, Field(ge=0, le=MAX_AMOUNT)]
PositiveInt = Annotated[StrictInt, Field(ge=1, le=MAX_AMOUNT)]
Id = Annotated[StrictStr, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Name = Annotated[StrictStr, Field(min_length=1, max_length=128)]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Base(_Model):
    points_per_yuan: Ratio | None = None  # None: the node's configured Rate
    rounding: Literal["floor", "half_up", "ceil"] = "floor"


class Exclusions(_Model):
    categories: tuple[Name, ...] = ()
    skus: tuple[Name, ...] = ()
    exclude_points_paid: StrictBool = True


class _Rule(_Model):
    id: Id
    enabled: StrictBool = True


class _PooledRule(_Rule):
    budget_pool: Id | None = None


class Bracket(_Model):
    up_to_yuan: PositiveInt | None = None  # inclusive; None on the last, open-ended bracket
    points_per_yuan: Ratio


class SpendBrackets(_Rule):
    type: Literal["spend_brackets"]
    mode: Literal["whole", "marginal"]
    brackets: tuple[Bracket, ...] = Field(min_length=1)

    @field_validator("brackets")
    @classmethod
    def _bounds_increase(cls, brackets: tuple[Bracket, ...]) -> tuple[Bracket, ...]:
        bounds = [b.up_to_yuan for b in brackets]
        if bounds[-1] is not None:
            raise _refuse("brackets", "the last bracket must be open-ended (no up_to_yuan)")
        for i in range(1, len(bounds) - 1):
            previous, bound = bounds[i - 1], bounds[i]
            if previous is None or bound is None or bound <= previous:
                raise _refuse("brackets", f"brackets[{i}].up_to_yuan must exceed the one before")
        if len(bounds) > 1 and bounds[0] is None:
            raise _refuse("brackets", "only the last bracket may be open-ended")
        return brackets


class CategoryMultiplier(_PooledRule):
    type: Literal["category_multiplier"]
    categories: tuple[Name, ...] = Field(min_length=1)
    multiplier: Multiplier


class SkuMultiplier(_PooledRule):
    type: Literal["sku_multiplier"]
    skus: tuple[Name, ...] = Field(min_length=1)
    multiplier: Multiplier


class TierMultiplier(_PooledRule):
    type: Literal["tier_multiplier"]
    tiers: dict[Id, Multiplier] = Field(min_length=1)


class FirstPurchaseBonus(_PooledRule):
    type: Literal["first_purchase_bonus"]
    points: PositiveInt


class BirthdayMultiplier(_PooledRule):
    type: Literal["birthday_multiplier"]
    multiplier: Multiplier


class Hours(_Model):
    from_: ClockTime = Field(alias="from")
    to: ClockTime  # exclusive; earlier than `from` means the window runs past midnight

    @model_validator(mode="after")
    def _not_empty(self) -> Hours:
        if self.from_ == self.to:
            raise _refuse("hours", "hours.from and hours.to must differ")
        return self


class ControlGroup(_Model):
    """Members held out of a campaign to measure it: `percent` of members, picked by a hash of
    `salt` and the member id, so the same members stay out for the whole campaign."""

    percent: Annotated[StrictInt, Field(ge=1, le=99)]
    salt: Name


class TimeWindow(_PooledRule):
    type: Literal["time_window"]
    campaign: Id | None = None  # the campaign these rules belong to (docs/campaigns.md)
    control_group: ControlGroup | None = None
    multiplier: Multiplier | None = None
    bonus_points: PositiveInt | None = None
    days_of_week: tuple[Weekday, ...] = ()  # with `dates`: either matches; neither: every day
    dates: tuple[date, ...] = ()
    hours: Hours | None = None
    starts_at: datetime | None = None  # without an offset: wall-clock time in the program's zone
    ends_at: datetime | None = None  # exclusive

    @model_validator(mode="after")
    def _gives_something(self) -> TimeWindow:
        if self.multiplier is None and self.bonus_points is None:
            raise _refuse("time_window", "needs a multiplier, bonus_points or both")
        if self.starts_at and self.ends_at:
            if (self.starts_at.tzinfo is None) != (self.ends_at.tzinfo is None):
                raise _refuse(
                    "time_window", "starts_at and ends_at must both have an offset or neither"
                )
            if self.starts_at >= self.ends_at:
                raise _refuse("time_window", "starts_at must be before ends_at")
        return self


Rule = Annotated[
    SpendBrackets
    | CategoryMultiplier
    | SkuMultiplier
    | TierMultiplier
    | FirstPurchaseBonus
    | BirthdayMultiplier
    | TimeWindow,
    Field(discriminator="type"),
]
RULE_TYPES = (
    "spend_brackets",
    "category_multiplier",
    "sku_multiplier",
    "tier_multiplier",
    "first_purchase_bonus",
    "birthday_multiplier",
    "time_window",
)


class Caps(_Model):
    per_order: PositiveInt | None = None
    per_member_per_day: PositiveInt | None = None


class BudgetPool(_Model):
    id: Id
    points: PositiveInt


class CheckIn(_Model):
    points: PositiveInt
    streak_bonuses: dict[Annotated[int, Field(ge=1, le=366)], PositiveInt] = {}
    cycle_days: Annotated[StrictInt, Field(ge=1, le=366)] | None = None  # streak restarts after
    budget_pool: Id | None = None

    @model_validator(mode="after")
    def _bonuses_reachable(self) -> CheckIn:
        if self.cycle_days and any(day > self.cycle_days for day in self.streak_bonuses):
            raise _refuse("check_in", "a streak bonus falls after cycle_days and is never reached")
        return self


class LimitedAction(_Model):
    points: PositiveInt
    daily_limit: Annotated[StrictInt, Field(ge=1, le=1000)]
    budget_pool: Id | None = None


class Referral(_Model):
    referrer_points: Points = 0
    referee_points: Points = 0
    budget_pool: Id | None = None


class Engagement(_Model):
    check_in: CheckIn | None = None
    review: LimitedAction | None = None
    share: LimitedAction | None = None
    referral: Referral | None = None


class Level(_Model):
    id: Id
    threshold: Points  # fen of spend or points, per `measure`
    upgrade_cost_points: PositiveInt | None = None  # None: this level cannot be bought


class Tiers(_Model):
    measure: Literal["spend_12m", "points_12m"]
    levels: tuple[Level, ...] = Field(min_length=1)
    grace_days: Annotated[StrictInt, Field(ge=0, le=366)] = 30
    evaluation_day: Annotated[StrictStr, AfterValidator(_month_day)] = "01-01"

    @field_validator("levels")
    @classmethod
    def _ordered(cls, levels: tuple[Level, ...]) -> tuple[Level, ...]:
        if levels[0].threshold != 0:
            raise _refuse(
                "levels", "the first level's threshold must be 0: every member has a level"
            )
        if levels[0].upgrade_cost_points is not None:
            raise _refuse("levels", "the first level cannot be bought: everyone starts there")
        for i in range(1, len(levels)):
            if levels[i].threshold <= levels[i - 1].threshold:
                raise _refuse("levels", f"levels[{i}].threshold must exceed the one before")
        if len({level.id for level in levels}) != len(levels):
            raise _refuse("levels", "level ids must be unique")
        return levels


class Program(_Model):
    base: Base = Base()
    timezone: Annotated[StrictStr, AfterValidator(_time_zone)] = "Asia/Shanghai"
    exclusions: Exclusions = Exclusions()
    pending_days: Annotated[StrictInt, Field(ge=0, le=365)] = 0
    rules: tuple[Rule, ...] = ()
    caps: Caps = Caps()
    budget_pools: tuple[BudgetPool, ...] = ()
    engagement: Engagement = Engagement()
    tiers: Tiers | None = None

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local(self, when: datetime) -> datetime:
        """`when` on the program's wall clock; a naive time is taken as UTC, like the ledger's."""
        aware = when if when.tzinfo else when.replace(tzinfo=ZoneInfo("UTC"))
        return aware.astimezone(self.zone)

    def day_bounds(self, day: date) -> tuple[datetime, datetime]:
        """The instants a local day starts and ends: what the ledger sums for `earned_today`."""
        start = datetime.combine(day, time(0), tzinfo=self.zone)
        return start, datetime.combine(day + timedelta(days=1), time(0), tzinfo=self.zone)

    def to_document(self) -> dict[str, Any]:
        """The canonical document: rates as "3/2", times as "18:00", defaults spelled out."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def digest(self) -> str:
        canonical = json.dumps(
            self.to_document(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


RESERVED_IDS = frozenset({"base_rate", "cap_per_order", "cap_per_member_per_day"})
_MESSAGES = {
    "missing": "required",
    "extra_forbidden": "unknown field",
    "bool_type": "must be true or false",
    "string_pattern_mismatch": "must be lower-case letters, digits and _, starting with a letter",
}


def describe_error(error: Any, document: dict[str, Any]) -> str:
    """One pydantic error as `rules[2] (weekend_double).multiplier: must be ...`."""
    loc, kind, message = list(error["loc"]), error["type"], error["msg"]
    if kind == "union_tag_invalid":
        loc.append("type")
        message = f"unknown rule type {error['ctx']['tag']!r}; expected one of: " + ", ".join(
            RULE_TYPES
        )
    elif kind == "union_tag_not_found":
        loc.append("type")
        message = "required"
    elif kind == "too_short":
        message = f"must have at least {error['ctx']['min_length']} entry"
    elif kind == "int_type":
        message = f"must be a whole number, not {error['input']!r}"
    elif kind in _MESSAGES:
        message = _MESSAGES[kind]
    elif message.startswith("Input should be"):
        message = "must be" + message.removeprefix("Input should be")
    return f"{_where(loc, document)}: {message.removeprefix('Value error, ')}"


def _where(loc: list[Any], document: dict[str, Any]) -> str:
    text, rest = "", list(loc)
    node: Any = document
    while rest:
        key = rest.pop(0)
        if isinstance(node, list) and isinstance(key, int):
            text += f"[{key}]"
            node = node[key] if 0 <= key < len(node) else None
            if isinstance(node, dict):
                if isinstance(node.get("id"), str):
                    text += f" ({node['id']})"
                if rest and rest[0] == node.get("type"):
                    rest.pop(0)  # pydantic names the union member; the rule's id says more
        else:
            text += f".{key}" if text else str(key)
            node = node.get(key) if isinstance(node, dict) else None
    return text or "document"


def cross_reference_errors(document: dict[str, Any]) -> list[str]:
    """What no single field can check: unique ids, references to pools and tiers that exist."""
    rules, pools = _entries(document, "rules"), _entries(document, "budget_pools")
    errors = _duplicates("rules", rules) + _duplicates("budget_pools", pools)
    pool_ids = {pool.get("id") for _, pool in pools}
    tiers = document.get("tiers")
    levels = tiers.get("levels") if isinstance(tiers, dict) else None
    level_ids = (
        {lv.get("id") for lv in levels if isinstance(lv, dict)}
        if isinstance(levels, list)
        else set()
    )
    brackets_label = None
    for i, rule in rules:
        label = _label("rules", i, rule)
        if rule.get("id") in RESERVED_IDS:
            errors.append(f"{label}.id: is reserved for the engine's own lines")
        pool = rule.get("budget_pool")
        if isinstance(pool, str) and pool not in pool_ids:
            errors.append(f"{label}.budget_pool: no budget pool {pool!r} is declared")
        if rule.get("type") == "tier_multiplier" and isinstance(rule.get("tiers"), dict):
            for tier in rule["tiers"]:
                if tier not in level_ids:
                    errors.append(f"{label}.tiers.{tier}: no tier level {tier!r} is declared")
        if rule.get("type") == "spend_brackets" and rule.get("enabled", True) is True:
            if brackets_label:
                errors.append(f"{label}: {brackets_label} is already the enabled spend_brackets")
            brackets_label = brackets_label or label
    engagement = document.get("engagement")
    for kind, action in engagement.items() if isinstance(engagement, dict) else ():
        pool = action.get("budget_pool") if isinstance(action, dict) else None
        if isinstance(pool, str) and pool not in pool_ids:
            errors.append(f"engagement.{kind}.budget_pool: no budget pool {pool!r} is declared")
    return errors


def _entries(document: dict[str, Any], section: str) -> list[tuple[int, dict[str, Any]]]:
    items = document.get(section)
    if not isinstance(items, list):
        return []
    return [(i, item) for i, item in enumerate(items) if isinstance(item, dict)]


def _label(section: str, i: int, item: dict[str, Any]) -> str:
    return f"{section}[{i}]" + (f" ({item['id']})" if isinstance(item.get("id"), str) else "")


def _duplicates(section: str, entries: list[tuple[int, dict[str, Any]]]) -> list[str]:
    first: dict[str, int] = {}
    errors = []
    for i, item in entries:
        ident = item.get("id")
        if isinstance(ident, str) and ident in first:
            errors.append(f"{_label(section, i, item)}.id: duplicates {section}[{first[ident]}]")
        elif isinstance(ident, str):
            first[ident] = i
    return errors


class _ExactLoader(yaml.SafeLoader):
    """YAML without floats or sexagesimals: `1.5` stays "1.5" and `18:00` stays "18:00"."""


def _int_or_text(loader: _ExactLoader, node: yaml.ScalarNode) -> int | str:
    text = loader.construct_scalar(node)
    return text if ":" in text else loader.construct_yaml_int(node)


def _unique_mapping(loader: _ExactLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    keys = [key.value for key, _ in node.value if isinstance(key, yaml.ScalarNode)]
    for key in keys:
        if keys.count(key) > 1:
            raise yaml.YAMLError(f"duplicate key {key!r} {node.start_mark}")
    return loader.construct_mapping(node, deep=True)


def _text(loader: _ExactLoader, node: yaml.ScalarNode) -> str:
    return loader.construct_scalar(node)


_ExactLoader.add_constructor("tag:yaml.org,2002:float", _text)
_ExactLoader.add_constructor("tag:yaml.org,2002:int", _int_or_text)
_ExactLoader.add_constructor("tag:yaml.org,2002:map", _unique_mapping)


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    duplicated = sorted({key for key in keys if keys.count(key) > 1})
    if duplicated:
        raise ValueError(f"duplicate key {duplicated[0]!r}")
    return dict(pairs)


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number")


def load_document(text: str) -> dict[str, Any]:
    """Reads a YAML or JSON program without floats; refuses duplicate keys and non-mappings."""
    try:
        if text.lstrip().startswith("{"):
            document = json.loads(
                text, parse_float=str, parse_constant=_no_constant, object_pairs_hook=_unique_pairs
            )
        else:
            document = yaml.load(text, Loader=_ExactLoader)  # a SafeLoader
    except (ValueError, yaml.YAMLError) as exc:
        raise ProgramInvalid([f"document: not valid YAML or JSON: {exc}"]) from None
    if not isinstance(document, dict):
        raise ProgramInvalid(["document: must be a mapping of sections (base, rules, caps...)"])
    return document


def parse_program(document: dict[str, Any]) -> Program:
    """Validates a document; ProgramInvalid lists every error, shape and cross-reference alike."""
    errors: list[str] = []
    program = None
    try:
        program = Program.model_validate(document)
    except ValidationError as exc:
        errors += [describe_error(error, document) for error in exc.errors()]
    errors += cross_reference_errors(document)
    if errors or program is None:
        raise ProgramInvalid(errors)
    return program


def load_program(text: str) -> Program:
    return parse_program(load_document(text))


def with_campaign(
    program: Program | None,
    campaign_id: str,
    rules: list[dict[str, Any]],
    pools: list[dict[str, Any]],
) -> Program:
    """The program with a campaign in the given state: its rules (each tagged `campaign:
    <campaign_id>`) and pools replace whatever of it the program had, after the program's own
    rules. The same state always gives the same program, hence the same digest: applying a
    campaign's state twice is noticed and skipped."""
    document = without_campaign(program, campaign_id).to_document()
    pool_ids = {pool["id"] for pool in pools}
    document["rules"] = [*document.get("rules", []), *rules]
    document["budget_pools"] = [
        *(p for p in document.get("budget_pools", []) if p["id"] not in pool_ids),
        *pools,
    ]
    return parse_program(document)


def without_campaign(program: Program | None, campaign_id: str) -> Program:
    """The program without a campaign's rules, nor the pools only they drew on. The pools'
    rows in the ledger stay, with what they granted: the campaign's report reads them."""
    program = program or Program()
    ours = [r for r in program.rules if isinstance(r, TimeWindow) and r.campaign == campaign_id]
    if not ours:
        return program
    rules = tuple(rule for rule in program.rules if rule.id not in {r.id for r in ours})
    still_used = {getattr(rule, "budget_pool", None) for rule in rules} | {
        getattr(program.engagement, kind).budget_pool
        for kind in ("check_in", "review", "share", "referral")
        if getattr(program.engagement, kind) is not None
    }
    dropped = {rule.budget_pool for rule in ours} - still_used
    pools = tuple(pool for pool in program.budget_pools if pool.id not in dropped)
    return program.model_copy(update={"rules": rules, "budget_pools": pools})
