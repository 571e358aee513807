"""How a model is scored on a split: an evaluator accumulates batches and returns {task: {measure: value}}.

`MultiTaskModel.evaluator()` returns one; the Trainer (and `mtlens.training.dense_eval`) call only this
protocol, so every model names its own measures: the default sums `score_batch` over the split (MSE for
regression, accuracy for classes), a dense model keeps a confusion matrix, depth sums and normal angles and
returns mIoU, pixel accuracy, depth and angle errors (`mtlens.measures.dense`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import torch

from mtlens.models.losses import score_name


class Evaluator(Protocol):
    """Accumulates a split batch by batch (`update`), then returns {task: {measure: value}} (`result`)."""

    def update(self, batch: Mapping[str, Any]) -> None: ...

    def result(self) -> dict[str, dict[str, float]]: ...


class ScoreSums:
    """The default evaluator: per task, the sum of `score_batch`'s measure over the split divided by its count."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self._sums: dict[str, torch.Tensor] = {}
        self._counts: dict[str, int] = {}

    def update(self, batch: Mapping[str, Any]) -> None:
        """Adds one batch's summed measures; returns None."""
        for name, (value, n) in self.model.score_batch(batch).items():
            self._sums[name] = self._sums.get(name, 0) + value  # summed in the measure's dtype, as per-task totals
            self._counts[name] = self._counts.get(name, 0) + n

    def result(self) -> dict[str, dict[str, float]]:
        """Returns {task: {"mse" or "acc": mean over the split}} in the model's task order."""
        return {spec.name: {score_name(spec): float(self._sums[spec.name]) / max(self._counts[spec.name], 1)}
                for spec in self.model.tasks}


def evaluator_of(model: Any) -> Evaluator:
    """Returns the model's own evaluator, or sums of its `score_batch` for a model that only has that (the
    Trainer's contract: a model with `step_losses` and `score_batch` trains and is scored)."""
    own = getattr(model, "evaluator", None)
    return own() if callable(own) else ScoreSums(model)
