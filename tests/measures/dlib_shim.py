"""Imports disentanglement_lib 1.5 (the reference, test-only) without tensorflow.

disentanglement_lib's metric modules do `import gin.tf` and decorate their functions with
`gin.configurable(name, blacklist=...)`; gin-config >= 0.5 no longer accepts `blacklist`, and `gin.tf` imports
tensorflow. This shim puts a minimal `gin` / `gin.tf` into sys.modules: `configurable` wraps a function so that
keyword arguments bound with `bind(...)` fill in the ones the caller left out (which is what the reference's
gin configs do, e.g. `discretizer.num_bins = 20`), and `REQUIRED` is a sentinel.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import sys
import types
from typing import Any, Callable

import numpy as np

_BINDINGS: dict[str, dict[str, Any]] = {}


class _Required:
    def __repr__(self) -> str:
        return "gin.REQUIRED"


REQUIRED = _Required()


def _configurable(name: str | Callable | None = None, **_: Any) -> Callable:
    def decorate(fn: Callable, scope: str) -> Callable:
        params = list(inspect.signature(fn).parameters)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            positional = set(params[: len(args)])
            for key, value in _BINDINGS.get(scope, {}).items():
                if key not in positional:
                    kwargs.setdefault(key, value)
            return fn(*args, **kwargs)

        return wrapper

    if callable(name):
        return decorate(name, name.__name__)
    return lambda fn: decorate(fn, name or fn.__name__)


def bind(selector: str, value: Any) -> None:
    """Binds `scope.param = value` like a line of a gin config."""
    scope, param = selector.rsplit(".", 1)
    _BINDINGS.setdefault(scope, {})[param] = value


def _install() -> None:
    if "gin" in sys.modules and getattr(sys.modules["gin"], "_mtlens_shim", False):
        return
    gin = types.ModuleType("gin")
    gin._mtlens_shim = True  # type: ignore[attr-defined]
    gin.configurable = _configurable  # type: ignore[attr-defined]
    gin.REQUIRED = REQUIRED  # type: ignore[attr-defined]
    gin_tf = types.ModuleType("gin.tf")
    gin.tf = gin_tf  # type: ignore[attr-defined]
    sys.modules["gin"] = gin
    sys.modules["gin.tf"] = gin_tf


def load(name: str) -> types.ModuleType:
    """Returns `disentanglement_lib.evaluation.metrics.<name>` imported under the shim."""
    _install()
    module = importlib.import_module(f"disentanglement_lib.evaluation.metrics.{name}")
    utils = importlib.import_module("disentanglement_lib.evaluation.metrics.utils")
    # The unsupervised_study_v1 metric configs: histogram discretiser with 20 bins, FactorVAE pruning at 0.05.
    bind("discretizer.num_bins", 20)
    bind("discretizer.discretizer_fn", utils._histogram_discretize)
    bind("histogram_discretizer.num_bins", 20)
    if name == "factor_vae":
        bind("prune_dims.threshold", 0.05)
    return module


def load_state_space() -> tuple[type, type]:
    """Returns (GroundTruthData, SplitDiscreteStateSpace) of disentanglement_lib.data.ground_truth.

    `util` imports tensorflow.compat.v1 at the top but the state space is pure numpy: a placeholder module
    stands in for tensorflow during that one import and is removed from sys.modules right after.
    """
    ground_truth_data = importlib.import_module("disentanglement_lib.data.ground_truth.ground_truth_data")
    name = "disentanglement_lib.data.ground_truth.util"
    if name not in sys.modules:
        placeholders = {}
        for mod in ("tensorflow", "tensorflow.compat", "tensorflow.compat.v1"):
            if mod not in sys.modules:
                placeholders[mod] = sys.modules[mod] = types.ModuleType(mod)
        sys.modules["tensorflow"].compat = sys.modules["tensorflow.compat"]  # type: ignore[attr-defined]
        sys.modules["tensorflow.compat"].v1 = sys.modules["tensorflow.compat.v1"]  # type: ignore[attr-defined]
        try:
            importlib.import_module(name)
        finally:
            for mod in placeholders:
                del sys.modules[mod]
    return ground_truth_data.GroundTruthData, sys.modules[name].SplitDiscreteStateSpace


def ground_truth_data(dataset: Any) -> Any:
    """Returns a disentanglement_lib GroundTruthData over `dataset`, sampling with its SplitDiscreteStateSpace."""
    base, state_space_cls = load_state_space()
    latent = [k for k, s in enumerate(dataset.factor_sizes) if s > 1]

    class Wrapped(base):
        def __init__(self):
            self.state_space = state_space_cls(np.array(dataset.factor_sizes, dtype=np.int64), latent)

        @property
        def num_factors(self):
            return self.state_space.num_latent_factors

        @property
        def factors_num_values(self):
            return [dataset.factor_sizes[i] for i in latent]

        @property
        def observation_shape(self):
            return list(dataset.image_shape)

        def sample_factors(self, num, random_state):
            return self.state_space.sample_latent_factors(num, random_state)

        def sample_observations_from_factors(self, factors, random_state):
            all_factors = self.state_space.sample_all_factors(factors, random_state)
            return dataset.images(dataset.index_of(all_factors)).numpy()

    return Wrapped()
