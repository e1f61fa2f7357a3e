"""Validating user-written options against a plugin's pydantic config, with errors people can act on."""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Iterable, Mapping
from typing import Any

import pydantic


class ConfigError(ValueError):
    """An option is unknown or has a wrong value; the message names plugin, field and valid options."""


def validate_config(
    config_cls: type[pydantic.BaseModel], values: Mapping[str, Any], where: str
) -> pydantic.BaseModel:
    """`config_cls` filled from `values`, or a ConfigError naming `where` and the field.

    Unknown keys are rejected even when the config class itself would ignore them, so a
    typo never silently falls back to a default.
    """
    fields = config_cls.model_fields
    unknown = [k for k in values if k not in fields]
    if unknown:
        lines = []
        for key in unknown:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            lines.append(f"unknown option {key!r}{hint}")
        raise ConfigError(f"{where}: {'; '.join(lines)}. Valid options: {', '.join(fields) or '(none)'}")
    try:
        return config_cls.model_validate(dict(values))
    except pydantic.ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "(config)"
            got = err.get("input")
            problems.append(f"option {field!r}: {err['msg']} (got {got!r})")
        raise ConfigError(f"{where}: " + "; ".join(problems) + f". Valid options: {', '.join(fields)}") from None


def parse_value(text: str) -> Any:
    """A command-line value read as TOML (numbers, booleans, lists, quoted strings), else the raw string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_assignments(assignments: Iterable[str]) -> dict[str, Any]:
    """["a=1", "model.filters=32"] -> {"a": 1, "model": {"filters": 32}}."""
    out: dict[str, Any] = {}
    for item in assignments:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: {part!r} is already set to a value, not a table")
            node = child
        node[parts[-1]] = parse_value(raw.strip())
    return out


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """`base` updated by `override`, merging nested tables instead of replacing them."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def describe_fields(config_cls: type[pydantic.BaseModel], defaults: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Name, type, default and doc of each option, defaults as the plugin sets them."""
    rows = []
    for name, field in config_cls.model_fields.items():
        if name in defaults:
            default = defaults[name]
        elif field.is_required():
            default = "(required)"
        else:
            default = field.get_default(call_default_factory=True)
        annotation = field.annotation
        type_name = getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")
        rows.append({"name": name, "type": type_name, "default": default, "doc": field.description or ""})
    return rows
