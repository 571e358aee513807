"""`mtlens.measures` is a documented public API: a module docstring, `__all__`, and `available_metrics()`."""

from __future__ import annotations

import inspect

import mtlens.measures as measures
from mtlens.measures import challenge
from mtlens.measures.disentanglement import METRICS


def test_measures_exports_its_public_functions_with_docstrings() -> None:
    assert measures.__doc__ and "available_metrics" in measures.__doc__
    assert len(measures.__all__) == len(set(measures.__all__))
    for name in measures.__all__:
        obj = getattr(measures, name)
        if callable(obj):
            assert inspect.getdoc(obj), f"{name} has no docstring"
    metric_functions = {"mig", "sap", "dci", "modularity_explicitness", "irs", "unsupervised", "factor_vae_score",
                        "beta_vae_score", "evaluate", "available_metrics"}
    challenge_functions = {name for name, obj in vars(challenge).items()
                           if inspect.isfunction(obj) and obj.__module__ == challenge.__name__ and not name.startswith("_")}
    assert metric_functions | challenge_functions | {"ChallengeRecorder"} <= set(measures.__all__)


def test_available_metrics_are_the_names_evaluate_accepts() -> None:
    names = measures.available_metrics()
    assert names == sorted(names) and {"mig", "sap", "dci", "factor_vae", "beta_vae", "irs"} <= set(names)
    assert all(METRICS.canonical(name) == name for name in names)
