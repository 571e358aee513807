"""The standard dense-prediction metrics of the MTL literature and the relative multi-task gain Δm%.

Definitions (MTAN, Liu et al. 2019; LibMTL 1.1.5's NYU-v2 / CityScapes examples), over all valid pixels of a
whole split (accumulated exactly, not averaged per batch):

- segmentation: confusion matrix C over labelled pixels (label != -1); IoU_c = C_cc / (row_c + col_c - C_cc);
  mIoU = mean IoU over the classes that occur in the labels or the predictions (union > 0); pixel accuracy =
  trace(C) / sum(C);
- depth (pixels with depth != 0): absolute error mean |d - d*|, relative error mean |d - d*| / d*;
- normals (target not the zero vector): angle in degrees between the unit-normalised prediction and the
  target; its mean and median, and the share of pixels within 11.25, 22.5 and 30 degrees;
- Δm% (Maninis et al. 2019; Vandenhende et al. 2021): 100 / K * sum_k (-1)^{l_k} (M_k - B_k) / B_k over the
  K metrics, l_k = 1 when lower is better, against single-task baselines B. LibMTL's `count_improvement`
  averages the metrics of each task first, then over tasks: `average="tasks"` gives that one.

Everything is pure: numpy arrays or tensors in, floats out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from mtlens.errors import MtlensError

IGNORE_INDEX = -1
NORMAL_THRESHOLDS = (11.25, 22.5, 30.0)
#: Whether a higher value of each metric is better (the sign of Δm).
HIGHER_IS_BETTER = {"miou": True, "pixel_acc": True, "abs_err": False, "rel_err": False, "mean_angle": False,
                    "median_angle": False, "within_11.25": True, "within_22.5": True, "within_30": True}


def _np(a: np.ndarray | torch.Tensor) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def confusion_matrix(pred_labels: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor, num_classes: int) -> np.ndarray:
    """Returns the int64 [C, C] counts of (true class, predicted class) over labelled pixels (target != -1)."""
    p, t = _np(pred_labels).reshape(-1).astype(np.int64), _np(target).reshape(-1).astype(np.int64)
    if p.shape != t.shape:
        raise MtlensError(f"predicted labels ({p.size} pixels) and targets ({t.size}) differ in size")
    keep = t != IGNORE_INDEX
    if keep.any() and (t[keep].min() < 0 or t[keep].max() >= num_classes or p[keep].min() < 0 or p[keep].max() >= num_classes):
        raise MtlensError(f"labels must be -1 (ignored) or 0..{num_classes - 1}")
    return np.bincount(t[keep] * num_classes + p[keep], minlength=num_classes**2).reshape(num_classes, num_classes)


def segmentation_metrics(confusion: np.ndarray) -> dict[str, float]:
    """Returns {"miou", "pixel_acc"} of a confusion matrix (mIoU over classes present in labels or predictions)."""
    c = np.asarray(confusion, dtype=np.float64)
    total = c.sum()
    if total == 0:
        raise MtlensError("no labelled pixel to score: every target pixel is -1")
    inter = np.diag(c)
    union = c.sum(0) + c.sum(1) - inter
    present = union > 0
    return {"miou": float((inter[present] / union[present]).mean()), "pixel_acc": float(inter.sum() / total)}


def depth_sums(pred: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor) -> tuple[float, float, int]:
    """Returns (sum of absolute errors, sum of relative errors, valid pixels) over pixels with target != 0."""
    p, t = _np(pred).astype(np.float64), _np(target).astype(np.float64)
    if p.shape != t.shape:
        raise MtlensError(f"depth prediction {p.shape} and target {t.shape} differ in shape")
    valid = t != 0
    err = np.abs(p[valid] - t[valid])
    return float(err.sum()), float((err / np.abs(t[valid])).sum()), int(valid.sum())


def normal_angles(pred: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor) -> np.ndarray:
    """Returns the angles in degrees [M] between unit-normalised predictions and targets [N, 3, H, W] (valid pixels)."""
    p, t = _np(pred).astype(np.float64), _np(target).astype(np.float64)
    if p.shape != t.shape or p.ndim != 4 or p.shape[1] != 3:
        raise MtlensError(f"normals must be [N, 3, H, W] and of equal shape, got {p.shape} and {t.shape}")
    valid = np.abs(t).sum(1) != 0
    p = p / np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1e-12)
    cos = np.clip((p * t).sum(1)[valid], -1.0, 1.0)
    return np.degrees(np.arccos(cos))


def normal_metrics(angles: np.ndarray) -> dict[str, float]:
    """Returns {"mean_angle", "median_angle", "within_11.25", "within_22.5", "within_30"} of angles in degrees."""
    a = np.asarray(angles, dtype=np.float64).reshape(-1)
    if not a.size:
        raise MtlensError("no valid normal pixel to score: every target is the zero vector")
    out = {"mean_angle": float(a.mean()), "median_angle": float(np.median(a))}
    out.update({f"within_{t:g}": float((a < t).mean()) for t in NORMAL_THRESHOLDS})
    return out


@dataclass
class DenseMetrics:
    """Accumulates the dense metrics of a split batch by batch; `result()` returns {task: {metric: value}}.

    `kinds` maps each task name to (kind, num_classes): kind is segmentation, depth or normal.
    """

    kinds: Mapping[str, tuple[str, int | None]]
    _confusion: dict[str, np.ndarray] = field(default_factory=dict)
    _depth: dict[str, list[float]] = field(default_factory=dict)
    _angles: dict[str, list[np.ndarray]] = field(default_factory=dict)

    def update(self, preds: Mapping[str, torch.Tensor | np.ndarray], targets: Mapping[str, torch.Tensor | np.ndarray]) -> None:
        """Adds one batch: predictions (logits for segmentation) and targets by task name."""
        for name, (kind, classes) in self.kinds.items():
            pred, target = preds[name], targets[name]
            if kind == "segmentation":
                labels = pred.argmax(1) if isinstance(pred, torch.Tensor) else np.argmax(pred, 1)
                cm = confusion_matrix(labels, target, int(classes or 0))
                self._confusion[name] = self._confusion.get(name, 0) + cm
            elif kind == "depth":
                s = depth_sums(pred, target)
                acc = self._depth.setdefault(name, [0.0, 0.0, 0])
                for i in range(3):
                    acc[i] += s[i]
            elif kind == "normal":
                self._angles.setdefault(name, []).append(normal_angles(pred, target))
            else:
                raise MtlensError(f"unknown dense task kind {kind!r} for {name!r}")

    def result(self) -> dict[str, dict[str, float]]:
        """Returns the metrics of everything added so far."""
        out: dict[str, dict[str, float]] = {}
        for name, (kind, _) in self.kinds.items():
            if kind == "segmentation":
                out[name] = segmentation_metrics(self._confusion[name])
            elif kind == "depth":
                abs_sum, rel_sum, n = self._depth.get(name, [0.0, 0.0, 0])
                if not n:
                    raise MtlensError(f"no valid depth pixel to score for {name!r}: every target is 0")
                out[name] = {"abs_err": abs_sum / n, "rel_err": rel_sum / n}
            else:
                out[name] = normal_metrics(np.concatenate(self._angles.get(name, [np.zeros(0)])))
        return out


def delta_m(results: Mapping[str, Mapping[str, float]], baselines: Mapping[str, Mapping[str, float]],
            higher_is_better: Mapping[str, bool] | None = None, average: str = "metrics") -> float:
    """Returns the relative multi-task gain Δm in percent of `results` over single-task `baselines`.

    Both map task -> {metric: value}; every metric of `baselines` must be in `results`. `average="metrics"`
    weighs every metric equally (Maninis et al. 2019); `"tasks"` averages per task first (LibMTL).
    """
    if average not in ("metrics", "tasks"):
        raise MtlensError(f"average must be 'metrics' or 'tasks', got {average!r}")
    signs = dict(HIGHER_IS_BETTER, **(higher_is_better or {}))
    per_task: list[list[float]] = []
    for task, base in baselines.items():
        rel = []
        for metric, b in base.items():
            if task not in results or metric not in results[task]:
                raise MtlensError(f"delta_m: results lack {task}/{metric}, which the baselines have")
            if metric not in signs:
                raise MtlensError(f"delta_m: unknown direction of metric {metric!r}; pass higher_is_better={{{metric!r}: ...}}")
            if b == 0:
                raise MtlensError(f"delta_m: baseline {task}/{metric} is 0; the relative gain is undefined")
            sign = 1.0 if signs[metric] else -1.0
            rel.append(sign * (results[task][metric] - b) / b)
        per_task.append(rel)
    if average == "tasks":
        return 100.0 * float(np.mean([np.mean(r) for r in per_task if r]))
    return 100.0 * float(np.mean([v for r in per_task for v in r]))


def dense_kinds(tasks: Sequence[object]) -> dict[str, tuple[str, int | None]]:
    """Returns {name: (kind, num_classes)} of dense tasks (objects with name, kind, num_classes)."""
    return {t.name: (t.kind, t.num_classes) for t in tasks}  # type: ignore[attr-defined]
