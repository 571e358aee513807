"""Dense losses and per-batch scores, each over the valid pixels only (the MTAN / LibMTL NYU-v2 definitions).

- segmentation: cross-entropy over the labelled pixels (label != -1);
- depth: L1 over the pixels with a measurement (depth != 0);
- normal: 1 - mean cosine between the unit-normalised prediction and the target, over pixels whose target is
  not the zero vector.
A batch without a single valid pixel for a task gives a loss of 0 that still depends on the prediction (so
the graph and every method's Jacobian keep their shape), never NaN.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from mtlens.data.dense import IGNORE_INDEX, DenseTask


def valid_mask(task: DenseTask, target: torch.Tensor) -> torch.Tensor:
    """Returns the bool mask [N, H, W] of pixels that carry a target for `task`."""
    if task.kind == "segmentation":
        return target != IGNORE_INDEX
    return target.abs().sum(1) != 0


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    # No host sync: with no valid pixel the masked sum is 0 and so is the loss (and its gradient).
    return (values * mask).sum() / mask.sum().clamp_min(1)


def dense_loss(task: DenseTask, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Returns the scalar training loss of one dense task on a batch (prediction at the target's resolution)."""
    mask = valid_mask(task, target)
    if task.kind == "segmentation":
        ce = F.cross_entropy(pred, target.clamp_min(0), reduction="none")  # ignored pixels are masked below
        return _masked_mean(ce, mask)
    if task.kind == "depth":
        return _masked_mean((pred - target).abs().sum(1), mask)
    return _masked_mean(1.0 - (F.normalize(pred, dim=1) * target).sum(1), mask)


def dense_score(task: DenseTask, pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Returns (summed measure, valid pixels) for the Trainer's per-task evaluation.

    The measure matches the name the Trainer gives it: correct pixels for segmentation ("acc", pixel
    accuracy), squared error for depth and for the unit normal vectors ("mse"). The standard dense metrics
    (mIoU, absolute / relative depth error, normal angles) are `mtlens.measures.dense`.
    """
    with torch.no_grad():
        mask = valid_mask(task, target)
        n = int(mask.sum())
        if task.kind == "segmentation":
            return ((pred.argmax(1) == target) & mask).sum().float(), n
        if task.kind == "depth":
            return (((pred - target) ** 2).sum(1) * mask).sum(), n
        return (((F.normalize(pred, dim=1) - target) ** 2).sum(1) * mask).sum(), n
