"""One module per seed experiment: wires data + model + method + measures into runs and a report.

    from mtlens.studies import load_study_config, run_study
    cfg = load_study_config("configs/hard_sharing/quick.yaml", ["train.epochs=1"])
    result = run_study(cfg)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from mtlens.studies import balancing, hard_sharing  # noqa: F401  (registers)
from mtlens.studies.registry import STUDIES


def load_study_config(path: str | Path, overrides: Sequence[str] = ()) -> BaseModel:
    """Returns the validated config of the study in a YAML file, with `key=value` overrides applied."""
    return STUDIES.load(path, overrides)


def run_study(config: BaseModel, **kwargs: Any) -> Any:
    """Runs the study the config belongs to; returns its result (runs and report folder)."""
    return STUDIES.get(getattr(config, "study")).run(config, **kwargs)


__all__ = ["STUDIES", "load_study_config", "run_study"]
