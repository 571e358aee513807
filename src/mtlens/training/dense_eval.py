"""Evaluates a dense multi-task model on a split with the standard dense metrics (`mtlens.measures.dense`)."""

from __future__ import annotations

import torch

from mtlens.data.dense import DenseDataset
from mtlens.data.multitask import make_loader
from mtlens.device import resolve_device
from mtlens.models.dense import DenseMultiTaskModel
from mtlens.training.trainer import to_device


@torch.no_grad()
def evaluate_dense(model: DenseMultiTaskModel, dataset: DenseDataset, batch_size: int = 16,
                   device: str | torch.device = "auto") -> dict[str, dict[str, float]]:
    """Returns {task: {metric: value}} of `model` over the whole `dataset` (the model's evaluator, as the Trainer)."""
    dev = resolve_device(device)
    was_training = model.training
    model.to(dev).eval()
    evaluator = model.evaluator()
    for batch in make_loader(dataset, batch_size):  # type: ignore[arg-type]
        evaluator.update(to_device(batch, dev))
    model.train(was_training)
    return evaluator.result()
