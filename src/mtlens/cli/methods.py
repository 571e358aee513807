"""`mtlens methods`: the MTL methods, what each needs, and the levels it runs at."""

from __future__ import annotations


def methods() -> None:
    """List the MTL optimisation methods (registry names), their kind and levels."""
    from rich.console import Console
    from rich.table import Table

    from mtlens.methods import METHODS, GradientAggregator, LossWeighting

    table = Table("name", "kind", "levels", "summary")
    for name in METHODS.available():
        cls = METHODS.get(name)
        kind = ("gradient aggregation" if issubclass(cls, GradientAggregator)
                else "loss weighting" if issubclass(cls, LossWeighting) else "regularisation")
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        table.add_row(name, kind, ", ".join(getattr(cls, "levels", ())), doc)
    Console().print(table)
