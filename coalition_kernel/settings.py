"""Configuration files (TOML) validated whole, with environment variables over any key.

A config is a frozen pydantic dataclass (so code builds one with keywords, `dataclasses.replace`
and `asdict` as before); its scalar fields live in the file's main table (`[node]`,
`[exchange]`) and each field whose type is itself a config dataclass is a table of its own
(`[notifications]`). `load_config` reads the file and the environment through pydantic-settings
and reports every problem at once, each named by file, key and the expected form:

    node.toml: notifications.lease_secs: unknown key (did you mean lease_seconds?)
    node.toml: notifications.quiet_hours: "25:00-08:00" is not HH:MM-HH:MM

Environment variables override the file, key by key: `<PREFIX>__<KEY>` for a key of the main
table and `<PREFIX>__<TABLE>__<KEY>` for a key of another table, upper case, e.g.
COALITION_NODE__ADMIN_TOKEN, COALITION_NODE__NOTIFICATIONS__SMTP_PASSWORD,
COALITION_EXCHANGE__HOLD_TTL_SECONDS. So secrets can stay out of the file (deploy/ passes them
from Secrets). Arrays are given as JSON (`[7, 3]`); an empty variable counts as unset.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import pathlib
import re
import tomllib
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import ConfigDict, TypeAdapter, ValidationError, create_model
from pydantic.dataclasses import is_pydantic_dataclass
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict, SettingsError

T = TypeVar("T")

# Every config dataclass: unknown keys are errors, not silently ignored.
STRICT_KEYS = ConfigDict(extra="forbid")


class ConfigError(ValueError):
    """A configuration that cannot be used; `problems` are one line each, file named."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        super().__init__("\n".join(f"{source}: {problem}" for problem in self.problems))


def sections(cls: type) -> dict[str, type]:
    """The fields of a config dataclass that are tables of their own, with their types."""
    hints = typing.get_type_hints(cls)
    return {
        f.name: hints[f.name]
        for f in dataclasses.fields(cls)
        if isinstance(hints[f.name], type) and is_pydantic_dataclass(hints[f.name])
    }


def load_config(cls: type[T], path: pathlib.Path, *, table: str, env_prefix: str) -> T:
    """The config of a TOML file (main table `table`) with the environment over it."""
    source = str(path)
    data = read_toml(path)
    tables = sections(cls)
    problems = []
    if not isinstance(data.get(table), dict):
        problems.append(f"[{table}] table missing")
    for name in data:
        if name != table and name not in tables:
            known = ", ".join(f"[{t}]" for t in [table, *tables])
            problems.append(
                f"[{name}]: unknown table{_did_you_mean(name, [table, *tables])} (known: {known})"
            )
    if problems:
        raise ConfigError(source, problems)
    values = dict(data[table])
    for name in tables:
        if name in values:  # a key of the main table named like a table: not allowed
            problems.append(f"{table}.{name}: is a table of its own ([{name}])")
        elif name in data:
            values[name] = data[name]
    if problems:
        raise ConfigError(source, problems)
    return validate_config(cls, values, source=source, table=table, env_prefix=env_prefix)


def read_toml(path: pathlib.Path) -> dict[str, Any]:
    """A TOML file's tables; ConfigError when it is missing, unreadable or not TOML."""
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(str(path), ["no such file"]) from None
    except OSError as err:
        raise ConfigError(str(path), [f"cannot be read ({err.strerror})"]) from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(str(path), [f"not valid TOML: {err}"]) from None


def validate_config(
    cls: type[T], values: Mapping[str, Any], *, source: str, table: str, env_prefix: str
) -> T:
    """`values` (main-table keys, tables as nested dicts) with the environment over them,
    validated by the config dataclass itself (all its validators, every error at once)."""
    try:
        environment = EnvSettingsSource(_env_spec(cls, env_prefix))()
    except SettingsError as err:  # e.g. an array that is not JSON
        raise ConfigError(f"environment {env_prefix}__*", [f"{err} ({err.__cause__})"]) from None
    try:
        return TypeAdapter(cls).validate_python(_merged(values, environment))
    except ValidationError as err:
        tables = sections(cls)

        def place(loc: tuple[Any, ...]) -> tuple[Any, ...]:
            return loc if loc and loc[0] in tables else (table, *loc)

        def from_env(loc: tuple[Any, ...], _: Any) -> str:
            env = f"{env_prefix}__{'__'.join(str(part) for part in loc)}".upper()
            return f" (from the environment: {env})" if _env_is_set(env) else ""

        raise ConfigError(source, describe_errors(err, cls, from_env, place)) from None


def _merged(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


def toml_text(config: Any, table: str, header: str) -> str:
    """A config as the TOML `load_config` reads: the main table, then each table of its own."""
    values = dataclasses.asdict(config)
    tables = {name: values.pop(name) for name in sections(type(config))}
    # A table marked `omit_when_default` is written only once it differs from its defaults, so
    # files written before it existed are written again byte for byte.
    tables = {
        name: body
        for name, body in tables.items()
        if not (
            getattr(type(getattr(config, name)), "omit_when_default", False)
            and getattr(config, name) == type(getattr(config, name))()
        )
    }
    lines = [f"# {header}", f"[{table}]", *_toml_lines(values)]
    for name, body in tables.items():
        lines += ["", f"[{name}]", *_toml_lines(body)]
    return "\n".join(lines) + "\n"


def _toml_lines(values: dict[str, Any]) -> list[str]:
    # JSON strings, integers, floats, booleans and arrays of them are valid TOML values, but
    # for characters beyond the BMP: JSON writes a surrogate pair, TOML wants \UXXXXXXXX.
    return [
        f"{key} = {_SURROGATES.sub(_scalar, json.dumps(value))}" for key, value in values.items()
    ]


_SURROGATES = re.compile(r"\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})")


def _scalar(pair: re.Match[str]) -> str:
    high, low = int(pair.group(1), 16), int(pair.group(2), 16)
    return f"\\U{0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00):08x}"


_ENV_SPECS: dict[tuple[type, str], type[BaseSettings]] = {}


def _env_spec(cls: type, env_prefix: str) -> type[BaseSettings]:
    """A BaseSettings with the dataclass's field names and types: what pydantic-settings' env
    source needs to find `<PREFIX>__<KEY>` and `<PREFIX>__<TABLE>__<KEY>` and decode them."""
    key = (cls, env_prefix)
    if key not in _ENV_SPECS:
        hints = typing.get_type_hints(cls)
        base = type(
            f"{cls.__name__}Environment",
            (BaseSettings,),
            {
                "__module__": __name__,
                "model_config": SettingsConfigDict(
                    env_prefix=f"{env_prefix}__",
                    env_nested_delimiter="__",
                    case_sensitive=False,
                    env_ignore_empty=True,  # `X=${X:-}` in a manifest leaves the file's value
                ),
            },
        )
        fields: dict[str, Any] = {f.name: (hints[f.name], None) for f in dataclasses.fields(cls)}
        _ENV_SPECS[key] = create_model(f"{cls.__name__}Env", __base__=base, **fields)
    return _ENV_SPECS[key]


_EXPECTED = {
    "int_parsing": "an integer",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_parsing": "a number",
    "float_type": "a number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "a string (in quotes)",
    "tuple_type": "an array",
    "list_type": "an array",
    "dataclass_type": "a table",
    "dict_type": "a table",
}


def describe_errors(
    err: ValidationError,
    cls: type,
    note: Callable[[tuple[Any, ...], Any], str] | None = None,
    place: Callable[[tuple[Any, ...]], tuple[Any, ...]] = lambda loc: loc,
) -> list[str]:
    """One line per error of validating `cls`: `key.path: what is wrong, the expected form`.
    `note(loc, input)` may add where else the value could come from; `place(loc)` is the
    key's path as the file spells it (e.g. the main table's name in front)."""
    problems = []
    for e in err.errors():
        loc = tuple(e["loc"])
        kind = e["type"]
        if kind in ("extra_forbidden", "unexpected_keyword_argument"):
            text = f"unknown key{_did_you_mean(str(loc[-1]), _known_keys(cls, loc[:-1]))}"
        elif kind == "missing":
            text = "missing (required)"
        elif kind == "literal_error":
            text = f"{_show(e['input'])} is not {e.get('ctx', {}).get('expected', 'allowed')}"
        elif kind in _EXPECTED:
            text = f"{_show(e['input'])} is not {_EXPECTED[kind]}"
        elif kind == "value_error":
            text = str(e["ctx"]["error"]) if "ctx" in e else e["msg"]
        else:
            text = f"{_show(e['input'])}: {e['msg']}"
        if note is not None:
            text += note(loc, e["input"])
        where = _key_path(place(loc))
        problems.append(f"{where}: {text}" if where else text)
    return problems


def _key_path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _known_keys(cls: Any, loc: tuple[Any, ...]) -> list[str]:
    """The keys a table at `loc` may have, following field types (and arrays) from `cls`."""
    for part in loc:
        if isinstance(part, int):
            args = typing.get_args(cls)
            cls = args[0] if args else None
            continue
        if not dataclasses.is_dataclass(cls):
            return []
        cls = typing.get_type_hints(cls).get(str(part))
    return [f.name for f in dataclasses.fields(cls)] if dataclasses.is_dataclass(cls) else []


def _env_is_set(name: str) -> bool:
    return any(key.upper() == name and value for key, value in os.environ.items())


def _show(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str | int | float | bool) else repr(value)


def _did_you_mean(name: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if not close:  # e.g. lease_secs → lease_seconds, hold_ttl → hold_ttl_seconds
        close = [k for k in known if k.startswith(name.rstrip("s")) or name.startswith(k)][:1]
    return f" (did you mean {close[0]}?)" if close else ""
