"""The config base every study shares, a cell's run identity, and the checks made before anything is written."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import Field, model_validator

from mtlens.config import Section
from mtlens.errors import MtlensError
from mtlens.runs.ids import config_hash
from mtlens.training import TrainConfig

# Fields that say where things go or how they are shown, never what a cell computes.
_NOT_IDENTITY = frozenset({"preset", "seeds", "store", "report_dir"})


class StudyConfig(Section):
    """The shared base: which study and preset, the seeds, where runs and reports go, data folder, training."""

    study: str
    preset: str = "custom"
    seeds: list[Annotated[int, Field(ge=0)]] = Field(default_factory=lambda: [0], min_length=1)
    store: str = "runs/mtlens.sqlite"
    report_dir: str | None = None
    data_dir: str | None = None
    train: TrainConfig = Field(default_factory=TrainConfig)

    # Fields that only choose cells (variants, methods): left out of a run's identity.
    cell_fields: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _seed_comes_from_seeds(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("train"), dict) and "seed" in data["train"]:
            raise MtlensError("config key 'train.seed' is set per cell from `seeds`; remove it and list the seeds, "
                              "e.g. seeds: [0, 1, 2]")
        return data

    def report_path(self) -> Path:
        """Returns the report folder: `report_dir`, else `reports/<study>_<preset>` next to the store."""
        if self.report_dir:
            return Path(self.report_dir)
        return Path(self.store).parent / "reports" / f"{self.study}_{self.preset}"


def base_config(cfg: StudyConfig) -> dict[str, Any]:
    """Returns what identifies a study's cells besides their own params: settings that change the numbers."""
    body = cfg.model_dump(mode="json", exclude=set(_NOT_IDENTITY | cfg.cell_fields))
    body["train"].pop("progress", None)  # display only; the engine shows its own progress
    body["train"].pop("seed", None)  # each cell's seed is its own (the run's seed column)
    return body


def run_config(base: dict[str, Any], params: Any) -> dict[str, Any]:
    """Returns the config stored with a cell's run: the study's base plus the cell's params under "cell"."""
    return {**base, "cell": dict(params)}


def base_hash(run_cfg: dict[str, Any]) -> str:
    """Returns the hash of a stored run config without its cell: equal for every cell of one study config."""
    return config_hash({k: v for k, v in run_cfg.items() if k != "cell"})


def check_writable(path: Path, what: str) -> None:
    """Raises one line when `path` (a file or folder to create) cannot be written; creates nothing."""
    path = Path(path).expanduser()
    if path.exists():
        if not os.access(path, os.W_OK):
            raise MtlensError(f"{what} {path} is not writable; fix its permissions or choose another path")
        return
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise MtlensError(f"{what} {path}: {parent} is a file, not a folder; choose another path")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise MtlensError(f"{what} {path}: cannot create it in {parent} (not writable); choose another path")
