"""Typed, validated configs: YAML in, one-line errors out (unknown keys are named with the valid ones).

`load_config(path, overrides, model)` reads a YAML file, applies `key.sub=value` overrides (values parsed as
YAML), and validates against a pydantic model whose sections forbid unknown keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from mtlens.errors import MtlensError

M = TypeVar("M", bound=BaseModel)


class Section(BaseModel):
    """A config section: unknown keys are errors, values are validated strictly enough to catch typos."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _valid_keys(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    current: Any = model
    for part in loc[:-1]:
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        ann = field.annotation
        current = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
        if current is None:
            return []
    return sorted(getattr(current, "model_fields", {}))


def _format_error(model: type[BaseModel], err: ValidationError, origin: str) -> str:
    first = err.errors()[0]
    loc = [p for p in first["loc"]]
    key = ".".join(str(p) for p in loc) or "(top level)"
    if first["type"] == "extra_forbidden":
        valid = _valid_keys(model, loc)
        return f"{origin}: unknown config key {key!r}; valid keys here: {', '.join(valid)}"
    if first["type"] == "missing":
        return f"{origin}: config key {key!r} is required"
    return f"{origin}: config key {key!r}: {first['msg']} (got {first.get('input')!r})"


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Returns `data` with each `dotted.key=value` override applied (the value is parsed as YAML)."""
    for item in overrides:
        if "=" not in item:
            raise MtlensError(f"override {item!r} is not key=value; write e.g. --set train.epochs=5")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        node = data
        for part in parts[:-1]:
            nxt = node.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise MtlensError(f"override {key!r}: {part!r} is a value, not a section")
            node = nxt
        node[parts[-1]] = yaml.safe_load(raw)
    return data


def validate(model: type[M], data: Mapping[str, Any], origin: str = "config") -> M:
    """Returns `data` validated as `model`, or raises a one-line MtlensError naming the key."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as err:
        raise MtlensError(_format_error(model, err, origin)) from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Returns the mapping in a YAML file, or raises naming the file and the problem."""
    p = Path(path)
    if not p.is_file():
        raise MtlensError(f"config file {str(p)!r} does not exist; see configs/ for the presets")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise MtlensError(f"{p}: not valid YAML{where}; fix the syntax") from None
    if not isinstance(data, dict):
        raise MtlensError(f"{p}: a config must be a mapping of keys to values, got {type(data).__name__}")
    return data


def load_config(path: str | Path, overrides: Sequence[str] = (), model: type[M] | None = None) -> M | dict[str, Any]:
    """Returns the config in `path` with overrides applied, validated as `model` when given."""
    data = apply_overrides(read_yaml(path), overrides)
    return data if model is None else validate(model, data, origin=str(path))


def to_yaml(config: BaseModel) -> str:
    """Returns the config as YAML text (the form stored with each run)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
