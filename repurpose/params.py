"""Reading `params.yaml`: each stage reads only its own section."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from repurpose.errors import UserError

DEFAULT_PARAMS = "params.yaml"


class ParamsError(UserError, ValueError):
    """A params file is missing, malformed, or lacks a key a stage needs."""


def load_params(path: str | os.PathLike[str] = DEFAULT_PARAMS) -> dict[str, Any]:
    """Load the whole params file as a dict."""
    p = Path(path)
    if not p.is_file():
        raise ParamsError(f"{p}: params file not found")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ParamsError(f"{p}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ParamsError(f"{p}: top level must be a mapping of sections")
    return data


def load_section(path: str | os.PathLike[str], section: str) -> dict[str, Any]:
    """Load one stage's section of the params file."""
    data = load_params(path)
    if section not in data or not isinstance(data[section], dict):
        raise ParamsError(f"{path}: missing section '{section}'")
    return data[section]


def require(section: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    """Return `section[key]`, checking presence and type; `where` names the section in errors."""
    if key not in section:
        raise ParamsError(f"params {where}.{key}: missing")
    value = section[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds and (int in kinds or float in kinds):
        raise ParamsError(f"params {where}.{key}: expected a number, got {value!r}")
    if not isinstance(value, kind):
        raise ParamsError(f"params {where}.{key}: expected {kind}, got {value!r}")
    return value


_KINDS: dict[str, type | tuple[type, ...]] = {
    "int": int, "float": (int, float), "bool": bool, "str": str,
    "int | float": (int, float),  # a number kept as given (whole seconds stay ints)
    "str | None": (str, type(None)), "float | None": (int, float, type(None)),
}


def _as_float(value: Any) -> Any:
    """A number as float; anything else unchanged (the dataclass's own check names it)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return value


def config_from_section(cls: type, section: Any, where: str, **given: Any) -> Any:
    """The frozen dataclass `cls` from a params section: every field required, no unknown key,
    types checked (`int`, `float`, `bool`, `str`, `int | float`, `str | None`, `float | None`,
    `tuple[...]` from a list); fields in `given` come from the caller, not the section (e.g. a
    CLI folder); `where` names the section in errors (e.g. `model.tal`)."""
    import dataclasses

    if not isinstance(section, dict):
        raise ParamsError(f"params {where}: expected a mapping, got {section!r}")
    fields = [f for f in dataclasses.fields(cls) if f.name not in given]
    unknown = sorted(set(section) - {f.name for f in fields})
    if unknown:
        raise ParamsError(f"params {where}: unknown key(s) {', '.join(map(str, unknown))}")
    values = dict(given)
    for f in fields:
        kind = str(f.type)
        if kind.startswith("tuple"):
            value = require(section, f.name, list, where)
            values[f.name] = tuple(_as_float(v) if kind == "tuple[float, ...]" else v
                                   for v in value)
            continue
        value = require(section, f.name, _KINDS.get(kind, object), where)
        values[f.name] = _as_float(value) if kind in ("float", "float | None") else value
    return cls(**values)
