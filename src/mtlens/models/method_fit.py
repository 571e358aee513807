"""Whether a method's assumptions hold for an architecture: one check, made before training starts.

A model declares the assumptions it breaks in `broken_assumptions` ({assumption: why}); a method makes
assumptions by its level and kind. `check_method_fits(model, method)` refuses the pair with one line naming
both. The Trainer calls it; a user's own loop can too. Methods are read by their attributes (name, level,
uses_gradients), so models import nothing of mtlens.methods.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mtlens.errors import MtlensError

#: assumption -> (what it asks of the architecture, what to do instead)
ASSUMPTIONS: Mapping[str, tuple[str, str]] = {
    "shared_representation": (
        "one shared representation that every path from the shared parameters to the losses crosses",
        "use level='param'",
    ),
    "last_shared_layer": (
        "one last shared layer (GradNorm's W)",
        "use level='feature', or a weighting that needs no layer",
    ),
}

#: Assumptions that particular methods make at a level, beyond the model contract (by method name).
METHOD_ASSUMPTIONS: Mapping[str, Mapping[str, tuple[str, ...]]] = {
    "gradnorm": {"param": ("last_shared_layer",)},
}


def method_assumptions(method: Any) -> tuple[str, ...]:
    """Returns the assumptions `method` makes: a gradient method at level 'feature' needs the shared
    representation; the others are listed in METHOD_ASSUMPTIONS."""
    name, level = getattr(method, "name", ""), getattr(method, "level", "param")
    needs: list[str] = []
    if level == "feature" and getattr(method, "uses_gradients", False):
        needs.append("shared_representation")
    needs += METHOD_ASSUMPTIONS.get(name, {}).get(level, ())
    return tuple(needs)


def check_method_fits(model: Any, method: Any) -> None:
    """Raises a one-line MtlensError naming the method and the architecture when the model breaks an
    assumption the method makes; returns None when they fit."""
    broken: Mapping[str, str] = getattr(model, "broken_assumptions", {}) or {}
    for assumption in method_assumptions(method):
        if assumption in broken:
            need, fix = ASSUMPTIONS[assumption]
            arch = getattr(model, "architecture", "") or type(model).__name__
            raise MtlensError(
                f"method {getattr(method, 'name', type(method).__name__)} at level {getattr(method, 'level', 'param')!r} "
                f"needs {need}, and architecture {arch} has none ({broken[assumption]}); {fix}"
            )
