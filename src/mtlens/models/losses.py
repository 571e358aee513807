"""Per-task losses and test measures by task kind: MSE, binary cross-entropy on logits, cross-entropy.

They live with the models (not the training loop) because a model's `step_losses` builds its objective from them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch.nn import functional as F

from mtlens.data.tasks import TaskSpec


def task_loss(spec: TaskSpec, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Returns the mean loss of one task: MSE (regression), BCE with logits (binary), cross-entropy (multiclass)."""
    if spec.kind == "regression":
        return F.mse_loss(pred, target)
    if spec.kind == "binary":
        return F.binary_cross_entropy_with_logits(pred, target)
    return F.cross_entropy(pred, target.long())


def task_losses(
    tasks: Sequence[TaskSpec], preds: Mapping[str, torch.Tensor], targets: torch.Tensor, active: Sequence[int]
) -> torch.Tensor:
    """Returns the [len(active)] losses of the active tasks (targets [N, T], one column per task)."""
    return torch.stack([task_loss(tasks[t], preds[tasks[t].name], targets[:, t]) for t in active])


def task_scores(tasks: Sequence[TaskSpec], preds: Mapping[str, torch.Tensor], targets: torch.Tensor) -> dict[str, torch.Tensor]:
    """Returns per task the summed squared error (regression) or the number of correct predictions (classes)."""
    out = {}
    for t, spec in enumerate(tasks):
        pred, y = preds[spec.name], targets[:, t]
        if spec.kind == "regression":
            out[spec.name] = ((pred - y) ** 2).sum()
        elif spec.kind == "binary":
            out[spec.name] = ((pred > 0).float() == y).sum().float()
        else:
            out[spec.name] = (pred.argmax(1) == y.long()).sum().float()
    return out


def score_name(spec: TaskSpec) -> str:
    """Returns the name of a task's test measure: 'mse' for regression, 'acc' for classification."""
    return "mse" if spec.kind == "regression" else "acc"
