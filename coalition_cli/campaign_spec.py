"""A campaign spec file checked whole before anything is started: the document's shape (every
unknown, missing or mistyped field at once), the spec as the workflow checks it, its rules as
the nodes will check them, its dates against now, and its merchants against the exchange's
registry when the operator's connection is configured."""

from __future__ import annotations

import difflib
import pathlib
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from workflows.campaigns.shared import CampaignSpec

_REQUIRED = ("id", "owner", "merchants", "starts_at", "ends_at", "rules")
_TEXT = ("id", "owner", "title")
_WHOLE = ("budget_points", "control_group_percent", "poll_minutes")
_TIMES = ("starts_at", "ends_at")


class SpecRefused(ValueError):
    """Every problem of a spec, one a line."""

    def __init__(self, path: pathlib.Path, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  {problem}" for problem in problems)
        super().__init__(f"{path}: refused, {len(problems)} problem(s):\n{lines}")


def check_spec_file(path: pathlib.Path, now: datetime) -> tuple[CampaignSpec | None, list[str]]:
    """The spec of a file (None when the document is not even shaped like one) and every
    problem found in it."""
    from coalition_kernel.errors import CoalitionError
    from merchant_node.rules.program import load_document, parse_program
    from workflows.campaigns.documents import campaign_pools, campaign_rules
    from workflows.campaigns.shared import check_spec, spec_from_document

    try:
        document = load_document(path.read_text())
    except CoalitionError as err:
        return None, list(getattr(err, "errors", [err.message]))
    problems = document_problems(document)
    if problems:
        return None, problems
    spec = spec_from_document(document)
    problems = check_spec(spec)
    if not problems and spec.ends_at <= now:
        problems.append(f"ends_at: {spec.ends_at.isoformat()} is already past")
    try:  # the rules as the nodes will check them, whatever else is wrong
        rules = campaign_rules(spec, spec.ends_at)
        parse_program({"rules": rules, "budget_pools": campaign_pools(spec)})
    except CoalitionError as err:
        problems += getattr(err, "errors", [err.message])
    return spec, problems


def document_problems(document: dict[str, Any]) -> list[str]:
    """Every field unknown, missing or of the wrong form, before a spec is built."""
    from workflows.campaigns.shared import _RULE_KEYS, _SPEC_KEYS

    problems = [_unknown(key, _SPEC_KEYS) for key in document if key not in _SPEC_KEYS]
    problems += [f"{key}: missing (required)" for key in _REQUIRED if key not in document]
    for key in _TEXT:
        if key in document and not isinstance(document[key], str | int):
            problems.append(f"{key}: {document[key]!r} is not text")
    for key in _WHOLE:
        if key in document and (
            not isinstance(document[key], int) or isinstance(document[key], bool)
        ):
            problems.append(f"{key}: {document[key]!r} is not a whole number")
    merchants = document.get("merchants", [])
    if not isinstance(merchants, list):
        problems.append(f"merchants: {merchants!r} is not a list of merchant ids")
    else:
        seen = set()
        for merchant in merchants:
            if merchant in seen:
                problems.append(f"merchants: {merchant!r} is given twice")
            seen.add(merchant)
    for key in _TIMES:
        if key in document:
            problems += _time_problems(key, document[key])
    baseline = document.get("baseline")
    if baseline is not None:
        if not isinstance(baseline, dict):
            problems.append("baseline: a mapping with starts_at and ends_at")
        else:
            problems += [_unknown(f"baseline.{k}", _TIMES) for k in baseline if k not in _TIMES]
            for key in _TIMES:
                if key in baseline:
                    problems += _time_problems(f"baseline.{key}", baseline[key])
    rules = document.get("rules", [])
    if not isinstance(rules, list):
        problems.append("rules: a list of rules")
        rules = []
    for i, rule in enumerate(rules):
        if not isinstance(rule, dict):
            problems.append(f"rules[{i}]: a mapping (multiplier, bonus_points, days_of_week…)")
            continue
        problems += [_unknown(f"rules[{i}].{k}", _RULE_KEYS) for k in rule if k not in _RULE_KEYS]
        for day in rule.get("dates", []) or []:
            if not _is_date(day):
                problems.append(f"rules[{i}].dates: {str(day)!r} is not a date YYYY-MM-DD")
        if "bonus_points" in rule and not isinstance(rule["bonus_points"], int):
            problems.append(f"rules[{i}].bonus_points: {rule['bonus_points']!r} is not whole")
    return problems


def unknown_merchants(spec: CampaignSpec, registered: dict[str, bool]) -> list[str]:
    """The spec's merchants the registry does not know, or knows as suspended."""
    problems = []
    for merchant in spec.merchants:
        if merchant not in registered:
            close = difflib.get_close_matches(merchant, list(registered), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(f"merchants: {merchant!r} is not registered at the exchange{hint}")
        elif not registered[merchant]:
            problems.append(f"merchants: {merchant!r} is suspended at the exchange")
    return problems


def _unknown(key: str, known: Any) -> str:
    name = key.rsplit(".", 1)[-1]
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f"{key}: unknown field" + (f" (did you mean {close[0]}?)" if close else "")


def _time_problems(key: str, value: object) -> list[str]:
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            return [f"{key}: {str(value)!r} is not an ISO time (e.g. 2026-03-14T10:00:00+08:00)"]
    if moment.tzinfo is None:
        return [f"{key}: {str(value)!r} has no UTC offset (e.g. 2026-03-14T10:00:00+08:00)"]
    return []


def _is_date(value: object) -> bool:
    if isinstance(value, date) and not isinstance(value, datetime):
        return True
    try:
        date.fromisoformat(str(value))
    except ValueError:
        return False
    return len(str(value)) == 10
