"""Dense metrics against a direct numpy formula per metric on hand-made arrays; Δm against its formula and LibMTL."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mtlens.errors import MtlensError
from mtlens.measures.dense import (DenseMetrics, confusion_matrix, delta_m, depth_sums, normal_angles, normal_metrics,
                                   segmentation_metrics)

sys.path.insert(0, str(Path(__file__).parents[1] / "methods"))
from _refs import stub_torchvision  # noqa: E402

# 2 images of 2 x 3 pixels, 4 classes; -1 = unlabelled; class 3 never occurs (neither label nor prediction).
LABELS = np.array([[[0, 0, 1], [1, 2, -1]], [[2, 2, 0], [-1, 1, 1]]])
PRED = np.array([[[0, 1, 1], [1, 2, 0]], [[2, 0, 0], [3, 1, 2]]])


def test_miou_and_pixel_accuracy() -> None:
    cm = confusion_matrix(torch.from_numpy(PRED), torch.from_numpy(LABELS), 4)
    keep = LABELS != -1
    t, p = LABELS[keep], PRED[keep]
    assert cm.sum() == keep.sum() == 10
    ious = []
    for c in range(4):
        inter, union = np.sum((t == c) & (p == c)), np.sum((t == c) | (p == c))
        if union:
            ious.append(inter / union)
    # by hand: class 0: 2 / 4, class 1: 3 / 5, class 2: 2 / 4; class 3 predicted only on an ignored pixel
    assert ious == [0.5, 0.6, 0.5]
    m = segmentation_metrics(cm)
    assert m["miou"] == pytest.approx(np.mean(ious)) and m["pixel_acc"] == pytest.approx(np.mean(t == p)) == 0.7


def test_depth_errors_over_valid_pixels() -> None:
    target = np.array([[[[2.0, 0.0], [4.0, 1.0]]]])
    pred = np.array([[[[1.0, 9.0], [5.0, 1.5]]]])
    abs_sum, rel_sum, n = depth_sums(pred, target)
    valid = target != 0
    assert n == 3
    assert abs_sum / n == pytest.approx(np.mean(np.abs(pred - target)[valid])) == pytest.approx((1 + 1 + 0.5) / 3)
    assert rel_sum / n == pytest.approx(np.mean((np.abs(pred - target) / np.where(valid, target, 1))[valid]))


def test_normal_angles_and_shares() -> None:
    rng = np.random.default_rng(0)
    target = rng.normal(size=(2, 3, 4, 5))
    target /= np.linalg.norm(target, axis=1, keepdims=True)
    target[0, :, 0, :] = 0.0  # no normal on this row
    pred = target * 3.0 + rng.normal(scale=0.8, size=target.shape)  # unnormalised predictions
    angles = normal_angles(torch.from_numpy(pred), torch.from_numpy(target))
    valid = np.abs(target).sum(1) != 0
    cos = (pred * target).sum(1) / np.linalg.norm(pred, axis=1)
    expected = np.degrees(np.arccos(np.clip(cos[valid], -1, 1)))
    np.testing.assert_allclose(angles, expected, rtol=1e-12)
    m = normal_metrics(angles)
    assert m["mean_angle"] == pytest.approx(expected.mean()) and m["median_angle"] == pytest.approx(np.median(expected))
    for t in (11.25, 22.5, 30.0):
        assert m[f"within_{t:g}"] == pytest.approx(np.mean(expected < t))
    assert 0 < m["within_11.25"] < m["within_30"] < 1


def test_accumulated_metrics_equal_the_whole_split() -> None:
    rng = np.random.default_rng(1)
    seg_logits = rng.normal(size=(4, 5, 3, 3))
    seg = rng.integers(-1, 5, size=(4, 3, 3))
    depth_t = rng.random((4, 1, 3, 3)) * (rng.random((4, 1, 3, 3)) > 0.3)
    depth_p = rng.random((4, 1, 3, 3))
    kinds = {"s": ("segmentation", 5), "d": ("depth", None)}
    acc = DenseMetrics(kinds)
    for part in (slice(0, 1), slice(1, 4)):
        acc.update({"s": torch.from_numpy(seg_logits[part]), "d": depth_p[part]}, {"s": seg[part], "d": depth_t[part]})
    whole = DenseMetrics(kinds)
    whole.update({"s": seg_logits, "d": depth_p}, {"s": seg, "d": depth_t})
    got, want = acc.result(), whole.result()
    assert got.keys() == want.keys() and all(got[k] == pytest.approx(want[k]) for k in want)
    valid = depth_t != 0  # per pixel over the split, not a mean of per-batch means
    assert acc.result()["d"]["abs_err"] == pytest.approx(np.abs(depth_p - depth_t)[valid].mean())


def test_delta_m_formula_and_libmtl() -> None:
    base = {"seg": {"miou": 0.40, "pixel_acc": 0.60}, "depth": {"abs_err": 0.50, "rel_err": 0.20}, "normal": {"mean_angle": 30.0}}
    new = {"seg": {"miou": 0.44, "pixel_acc": 0.57}, "depth": {"abs_err": 0.45, "rel_err": 0.22}, "normal": {"mean_angle": 27.0}}
    rel = [0.04 / 0.40, -0.03 / 0.60, 0.05 / 0.50, -0.02 / 0.20, 3.0 / 30.0]
    assert delta_m(new, base) == pytest.approx(100 * np.mean(rel))
    per_task = [np.mean(rel[:2]), np.mean(rel[2:4]), rel[4]]
    assert delta_m(new, base, average="tasks") == pytest.approx(100 * np.mean(per_task))
    stub_torchvision()
    utils = pytest.importorskip("LibMTL.utils")
    weight = {"seg": [1, 1], "depth": [0, 0], "normal": [0]}  # LibMTL: 1 = higher is better
    ref = utils.count_improvement({k: list(v.values()) for k, v in base.items()}, {k: list(v.values()) for k, v in new.items()}, weight)
    assert delta_m(new, base, average="tasks") == pytest.approx(100 * ref)
    with pytest.raises(MtlensError, match="unknown direction of metric 'iou'"):
        delta_m({"s": {"iou": 1.0}}, {"s": {"iou": 2.0}})
    with pytest.raises(MtlensError, match="results lack seg/miou"):
        delta_m({}, {"seg": {"miou": 0.4}})


def test_metric_input_errors() -> None:
    with pytest.raises(MtlensError, match="every target pixel is -1"):
        segmentation_metrics(confusion_matrix(np.zeros((1, 2, 2), int), -np.ones((1, 2, 2), int), 3))
    with pytest.raises(MtlensError, match=r"labels must be -1 \(ignored\) or 0..2"):
        confusion_matrix(np.zeros((1, 2, 2), int), np.full((1, 2, 2), 3), 3)
    with pytest.raises(MtlensError, match="every target is the zero vector"):
        normal_metrics(normal_angles(np.ones((1, 3, 2, 2)), np.zeros((1, 3, 2, 2))))
