"""The study registry (`STUDIES`), and loading a study config from a YAML file or a shipped preset."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mtlens.config import apply_overrides, read_yaml, validate
from mtlens.errors import MtlensError
from mtlens.studies import presets
from mtlens.studies.engine import Study


class _Studies:
    """Name -> Study; names are written with `_` (hard_sharing) and accepted with `-` (hard-sharing)."""

    def __init__(self) -> None:
        self._entries: dict[str, Study] = {}

    def add(self, study: Study) -> None:
        """Registers a study; a name used twice is a bug."""
        if study.name in self._entries:
            raise KeyError(f"study {study.name!r} is registered twice")
        self._entries[study.name] = study

    def available(self) -> list[str]:
        """Returns the registered study names, sorted."""
        return sorted(self._entries)

    def get(self, name: str) -> Study:
        """Returns the study registered as `name` (hyphens or underscores)."""
        key = str(name).strip().replace("-", "_")
        if key not in self._entries:
            raise MtlensError(f"unknown study {name!r}; choose one of: {', '.join(self.available())}")
        return self._entries[key]

    def validate(self, data: dict[str, Any], origin: str) -> Any:
        """Returns `data` validated as the config of the study its `study:` key names."""
        if "study" not in data:
            raise MtlensError(f"{origin}: the config names no study; add e.g. `study: hard_sharing`")
        study = self.get(str(data["study"]))
        return validate(study.config, {**data, "study": study.name}, origin=origin)

    def load(self, source: str | Path, overrides: Sequence[str] = ()) -> Any:
        """Returns the validated config in a YAML file or a shipped preset (`hard_sharing/quick`), overridden."""
        data, origin = read_source(source)
        return self.validate(apply_overrides(data, overrides), origin)


def read_source(source: str | Path) -> tuple[dict[str, Any], str]:
    """Returns (the config mapping, where it came from) for a YAML file path or a `STUDY/PRESET` name."""
    path = Path(source)
    if path.is_file() or path.suffix in (".yaml", ".yml"):
        return read_yaml(path), str(path)
    parts = str(source).replace("\\", "/").split("/")
    if len(parts) == 2:
        study = STUDIES.get(parts[0]).name
        return presets.read(study, parts[1]), f"{study}/{parts[1]}"
    raise MtlensError(f"config {str(source)!r} is neither a YAML file nor a preset STUDY/PRESET; "
                      f"`mtlens reproduce --list` shows the presets")


STUDIES = _Studies()


def available_studies() -> list[str]:
    """Returns the names of the registered studies."""
    return STUDIES.available()
