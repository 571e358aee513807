"""Evaluates a dense multi-task model on a split with the standard dense metrics (`mtlens.measures.dense`)."""

from __future__ import annotations

import torch

from mtlens.data.dense import DenseDataset
from mtlens.data.multitask import make_loader
from mtlens.device import resolve_device
from mtlens.measures.dense import DenseMetrics, dense_kinds
from mtlens.models.dense import DenseMultiTaskModel
from mtlens.training.trainer import to_device


@torch.no_grad()
def evaluate_dense(model: DenseMultiTaskModel, dataset: DenseDataset, batch_size: int = 16,
                   device: str | torch.device = "auto") -> dict[str, dict[str, float]]:
    """Returns {task: {metric: value}} of `model` over the whole `dataset` (mIoU, pixel accuracy, depth and normal errors)."""
    dev = resolve_device(device)
    was_training = model.training
    model.to(dev).eval()
    metrics = DenseMetrics(dense_kinds(model.dense_tasks))
    for batch in make_loader(dataset, batch_size):  # type: ignore[arg-type]
        batch = to_device(batch, dev)
        metrics.update(model(batch["x"]), batch["targets"])
    model.train(was_training)
    return metrics.result()
