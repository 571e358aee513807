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


def _fields(model: Any) -> dict[str, Any]:
    """Returns name -> annotation of a pydantic model's or pydantic dataclass's fields ({} for anything else)."""
    fields = getattr(model, "__pydantic_fields__", None) if isinstance(model, type) else None
    return {name: f.annotation for name, f in fields.items()} if isinstance(fields, dict) else {}


def _valid_keys(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    current: Any = model
    for part in loc[:-1]:
        ann = _fields(current).get(str(part))
        if ann is None or not _fields(ann):
            return []
        current = ann
    return sorted(_fields(current))


def _format_error(model: type[BaseModel], err: ValidationError, origin: str) -> str:
    first = err.errors()[0]
    loc = [p for p in first["loc"]]
    key = ".".join(str(p) for p in loc) or "(top level)"
    if first["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
        valid = _valid_keys(model, loc)
        return f"{origin}: unknown config key {key!r}; valid keys here: {', '.join(valid)}"
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, MtlensError):  # a validator's own one-line message
        return f"{origin}: {cause}"
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
        node[parts[-1]] = parse_value(raw, key.strip())
    return data


def parse_value(raw: str, key: str) -> Any:
    """Returns an override's value parsed as YAML (`5`, `1e-3`, `[a, b]`), or raises one line naming the key."""
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as err:
        problem = getattr(err, "problem", None) or "not valid YAML"
        raise MtlensError(f"override {key}={raw!r}: {problem}; quote the value or close its brackets") from None


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
        raise MtlensError(f"config file {str(p)!r} does not exist; name a shipped preset as STUDY/PRESET instead "
                          "(`mtlens reproduce --list` shows them)")
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
