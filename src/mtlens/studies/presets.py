"""Presets shipped inside the package (mtlens/configs/<study>/<preset>.yaml) and their measured wall times."""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

from mtlens.errors import MtlensError

WALL_TIMES = "wall_times.yaml"


def _root() -> Any:
    return resources.files("mtlens").joinpath("configs")


def names(study: str) -> list[str]:
    """Returns the presets shipped for a study (e.g. ['paper', 'quick'])."""
    folder = _root().joinpath(study)
    if not folder.is_dir():
        return []
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def read(study: str, preset: str) -> dict[str, Any]:
    """Returns the config mapping of a shipped preset, or raises one line listing the study's presets."""
    if preset not in names(study):
        raise MtlensError(f"unknown preset {preset!r} for study {study}; choose one of: {', '.join(names(study)) or 'none'}")
    data = yaml.safe_load(_root().joinpath(study, f"{preset}.yaml").read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise MtlensError(f"preset {study}/{preset} is not a mapping; the package is damaged, reinstall mtlens")
    return data


def wall_times() -> dict[str, dict[str, dict[str, Any]]]:
    """Returns study -> preset -> machine kind -> {seconds, backend, note} as measured (package data)."""
    file = _root().joinpath(WALL_TIMES)
    return (yaml.safe_load(file.read_text(encoding="utf-8")) or {}) if file.is_file() else {}


def describe_wall(entry: dict[str, Any] | None) -> str:
    """Returns e.g. '4 min 10 s on 2-core CPU (pool)' for each machine kind measured, or 'not measured'."""
    if not entry:
        return "not measured"
    parts = []
    for machine, m in entry.items():
        seconds = float(m["seconds"])
        shown = f"{seconds:.0f} s" if seconds < 90 else f"{int(seconds // 60)} min {seconds % 60:.0f} s"
        if seconds >= 5400:
            shown = f"{seconds / 3600:.1f} h"
        prefix = "~" if m.get("estimated") else ""
        parts.append(f"{prefix}{shown} on {machine}" + (f" ({m['backend']})" if m.get("backend") else ""))
    return "; ".join(parts)
