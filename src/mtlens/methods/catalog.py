"""What `mtlens methods` shows: one row per registered method (kind, levels, whether the task count is fixed,
options with their defaults, the peer libraries' methods it implements, and its one-line summary)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass

from mtlens.methods.base import GradientAggregator, LossWeighting
from mtlens.methods.options import rules_of
from mtlens.methods.peers import peer_names
from mtlens.methods.registry import METHODS


@dataclass(frozen=True)
class MethodRow:
    """One method's description."""

    name: str
    kind: str
    levels: tuple[str, ...]
    n_tasks: str
    options: tuple[str, ...]
    peers: tuple[str, ...]
    summary: str


def _kind(cls: type) -> str:
    if issubclass(cls, GradientAggregator):
        return "gradient aggregation"
    if issubclass(cls, LossWeighting):
        return "loss weighting" + (" (needs a validation batch)" if cls.needs_validation_batch else "")
    return "regularisation"


def method_rows() -> list[MethodRow]:
    """Returns the description of every registered method, sorted by name."""
    rows = []
    for name in METHODS.available():
        cls = METHODS.get(name)
        defaults = {k: p.default for k, p in inspect.signature(cls.__init__).parameters.items()}
        options = tuple(f"{k}={defaults.get(k)!r}" for k in rules_of(cls))
        summary = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        rows.append(MethodRow(name, _kind(cls), tuple(cls.levels), "fixed" if cls.per_task_state else "any",
                              options, tuple(peer_names(name)), summary))
    return rows
