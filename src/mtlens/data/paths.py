"""Where data files live: `--data-dir`, else the MTLENS_DATA environment variable, else none (renderers)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from mtlens.errors import MtlensError

ENV_VAR = "MTLENS_DATA"


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """Returns the data directory to read official files from, or None when none is configured."""
    raw = data_dir if data_dir is not None else os.environ.get(ENV_VAR) or None
    if raw is None:
        return None
    path = Path(raw).expanduser()
    if not path.is_dir():
        origin = "--data-dir" if data_dir is not None else f"${ENV_VAR}"
        raise MtlensError(f"data directory {str(path)!r} (from {origin}) does not exist; create it or point to another")
    return path


def find_file(data_dir: Path | None, names: Sequence[str]) -> Path | None:
    """Returns the first of `names` present in `data_dir` (or in a subfolder of the same stem), else None."""
    if data_dir is None:
        return None
    for name in names:
        for candidate in (data_dir / name, data_dir / Path(name).stem.split(".")[0] / name):
            if candidate.is_file():
                return candidate
    return None
