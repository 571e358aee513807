"""The study registry: a study is a config model plus a function that runs it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from mtlens.config import load_config, read_yaml, apply_overrides, validate
from mtlens.errors import MtlensError


@dataclass(frozen=True)
class StudyEntry:
    name: str
    run: Callable[..., Any]
    config: type[BaseModel]


class _Studies:
    """Name -> (runner, config model); `load(path, overrides)` picks the study named in the YAML."""

    def __init__(self) -> None:
        self._entries: dict[str, StudyEntry] = {}

    def add(self, name: str, run: Callable[..., Any], *, config: type[BaseModel]) -> None:
        if name in self._entries:
            raise KeyError(f"study {name!r} is registered twice")
        self._entries[name] = StudyEntry(name, run, config)

    def available(self) -> list[str]:
        return sorted(self._entries)

    def get(self, name: str) -> StudyEntry:
        if name not in self._entries:
            raise MtlensError(f"unknown study {name!r}; choose one of: {', '.join(self.available())}")
        return self._entries[name]

    def load(self, path: str | Path, overrides: Sequence[str] = ()) -> BaseModel:
        """Returns the validated config of the study named by the file's `study:` key."""
        data = apply_overrides(read_yaml(path), overrides)
        if "study" not in data:
            raise MtlensError(f"{path}: the config names no study; add e.g. `study: hard_sharing`")
        return validate(self.get(str(data["study"])).config, data, origin=str(path))


STUDIES = _Studies()
__all__ = ["STUDIES", "StudyEntry", "load_config"]
