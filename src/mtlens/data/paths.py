"""Where data files live: `--data-dir`, else the MTLENS_DATA environment variable, else none (renderers).

Every loader finds its files with `find_file`: a file is looked for in the data directory itself, then in a
folder named after the file (`<data>/mpi3d_toy/mpi3d_toy.npz`), then in the loader's own folders (e.g.
`mnist/`, torchvision's `MNIST/raw/`, `uci/`); each name may also be given gzipped when the loader says so.
"""

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
        problem = "is not a folder" if path.exists() else "does not exist"
        raise MtlensError(
            f"data directory {str(path)!r} (from {origin}) {problem}; point it to the folder that holds the data files"
        )
    return path


def find_file(
    data_dir: Path | None, names: Sequence[str], folders: Sequence[str] = (), gzipped: bool = False
) -> Path | None:
    """Returns the first of `names` found in `data_dir`, its folder of the file's name, or `folders`; else None.

    folders: subfolders of `data_dir` to look in too (in that order); gzipped: also accept `<name>.gz`.
    """
    if data_dir is None:
        return None
    for name in names:
        places = [data_dir, data_dir / name.split(".")[0], *(data_dir / f for f in folders)]
        for folder in places:
            for candidate in (folder / name, folder / f"{name}.gz") if gzipped else (folder / name,):
                if candidate.is_file():
                    return candidate
    return None


def where(data_dir: Path | None) -> str:
    """Returns where files were looked for, for messages: "in <folder>", or how to set a data directory."""
    if data_dir is None:
        return f"(no data directory: pass --data-dir / data_dir or set ${ENV_VAR})"
    return f"in {data_dir}"
