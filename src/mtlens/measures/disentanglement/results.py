"""Result objects of the disentanglement metrics: frozen dataclasses with a `score` and its parts."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from mtlens.errors import MtlensError


@dataclass(frozen=True, eq=False)
class MetricResult:
    """Base of every metric result: `name` (the metric's key), `score`, and `as_dict()` for storing."""

    name: str
    score: float

    def __post_init__(self) -> None:
        # The last guard against a silent NaN / inf: a metric that cannot give a finite number says so.
        for key, value in self.as_dict().items():
            if not np.isfinite(value):
                raise MtlensError(
                    f"{key} is {value} for these codes: the metric is undefined on them (constant, duplicated or "
                    "extreme code dimensions); check the codes"
                )

    def scalars(self) -> dict[str, float]:
        """Returns the named scalar parts besides the score (subclasses add theirs)."""
        return {}

    def as_dict(self) -> dict[str, float]:
        """Returns a flat dict of named floats: {name: score, "name/part": value, ...}."""
        out = {self.name: float(self.score)}
        for key, value in self.scalars().items():
            out[f"{self.name}/{key}"] = float(value)
        return out

    def __repr__(self) -> str:
        arrays = [f.name for f in fields(self) if isinstance(getattr(self, f.name), np.ndarray)]
        extra = f", parts: {', '.join(arrays)}" if arrays else ""
        return f"{type(self).__name__}(score={float(self.score):.6g}{extra})"


def per_key(prefix: str, keys: tuple[str, ...], values: np.ndarray) -> dict[str, float]:
    """Returns {"prefix/key": value} for parallel keys and values (prefix may be empty)."""
    sep = "/" if prefix else ""
    return {f"{prefix}{sep}{k}": float(v) for k, v in zip(keys, np.asarray(values).reshape(-1))}
