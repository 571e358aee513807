"""Checks for arrays read from official data files: a wrong key, shape or dtype is named, never half-read."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

import numpy as np

from mtlens.errors import MtlensError


def require_keys(path: Path, found: Collection[str], expected: Sequence[str]) -> None:
    """Raises unless every expected key is among `found`."""
    missing = [k for k in expected if k not in found]
    if missing:
        raise MtlensError(
            f"{path}: missing key(s) {', '.join(missing)}; expected {', '.join(expected)}, found "
            f"{', '.join(sorted(found)) or 'nothing'} (is this the official file?)"
        )


def require_array(
    path: Path,
    key: str,
    shape: tuple[int, ...] | None,
    dtype_kind: str | None,
    found_shape: tuple[int, ...],
    found_dtype: np.dtype,
) -> None:
    """Raises unless an array has the expected shape (None = any length on that axis) and dtype kind."""
    if shape is not None:
        ok = len(shape) == len(found_shape) and all(e is None or e == f for e, f in zip(shape, found_shape))
        if not ok:
            want = "(" + ", ".join("N" if e is None else str(e) for e in shape) + ")"
            raise MtlensError(f"{path}: {key!r} has shape {tuple(found_shape)}, expected {want}")
    if dtype_kind is not None and np.dtype(found_dtype).kind not in dtype_kind:
        kinds = {"u": "unsigned integer", "i": "integer", "f": "float", "b": "bool"}
        want = " or ".join(kinds.get(k, k) for k in dtype_kind)
        raise MtlensError(f"{path}: {key!r} has dtype {np.dtype(found_dtype)}, expected {want}")
