"""Dense losses over valid pixels only; the dense ResNet model with the Trainer and every method at both levels."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from mtlens.data.dense import DenseTask
from mtlens.data.shapes3d_dense import Shapes3DDense
from mtlens.errors import MtlensError
from mtlens.methods import METHODS, available_methods, create_method
from mtlens.models import create_model
from mtlens.models import dense as _dense  # noqa: F401  (registers dense_resnet)
from mtlens.models.dense_heads import ASPPHead, build_head
from mtlens.models.dense_losses import dense_loss
from mtlens.training import Trainer, TrainConfig
from mtlens.training.dense_eval import evaluate_dense

SEG, DEPTH, NORMAL = DenseTask("s", "segmentation", 4), DenseTask("d", "depth"), DenseTask("n", "normal")


def test_segmentation_loss_ignores_unlabelled_pixels() -> None:
    logits = torch.randn(2, 4, 3, 3, requires_grad=True)
    labels = torch.randint(0, 4, (2, 3, 3))
    labels[0, 0] = -1
    loss = dense_loss(SEG, logits, labels)
    logp = F.log_softmax(logits, 1).detach().numpy()
    lab = labels.numpy()
    valid = lab != -1
    picked = np.take_along_axis(logp, np.where(valid, lab, 0)[:, None], 1)[:, 0]
    assert loss.item() == pytest.approx(-picked[valid].mean(), rel=1e-6)
    loss.backward()
    assert torch.all(logits.grad[0, :, 0] == 0) and torch.any(logits.grad[1] != 0)


def test_depth_and_normal_losses_use_valid_pixels_only() -> None:
    target = torch.rand(2, 1, 3, 3) + 0.5
    target[0, 0, 1] = 0.0  # no measurement
    pred = torch.rand(2, 1, 3, 3)
    moved = pred.clone()
    moved[0, 0, 1] += 100.0  # changing the prediction where there is no target changes nothing
    valid = target != 0
    expected = (pred - target).abs()[valid].mean()
    assert float(dense_loss(DEPTH, pred, target)) == pytest.approx(float(expected))
    assert float(dense_loss(DEPTH, moved, target)) == pytest.approx(float(expected))
    normals = F.normalize(torch.randn(2, 3, 3, 3), dim=1)
    normals[1, :, 2] = 0.0
    npred = torch.randn(2, 3, 3, 3)
    ok = normals.abs().sum(1) != 0
    cos = (F.normalize(npred, dim=1) * normals).sum(1)
    assert float(dense_loss(NORMAL, npred, normals)) == pytest.approx(1 - float(cos[ok].mean()), rel=1e-6)
    # a batch without any valid pixel: 0, not NaN, and no gradient
    for task, t in ((SEG, -torch.ones(2, 3, 3, dtype=torch.long)), (DEPTH, torch.zeros(2, 1, 3, 3)), (NORMAL, torch.zeros(2, 3, 3, 3))):
        p = torch.randn(2, task.channels, 3, 3, requires_grad=True)
        value = dense_loss(task, p, t)
        value.backward()
        assert value.item() == 0.0 and torch.all(p.grad == 0)


def test_heads() -> None:
    z = torch.randn(2, 32, 5, 6)
    aspp = ASPPHead(32, 7, width=16).eval()
    assert aspp(z).shape == (2, 7, 5, 6) and len(aspp.branches) == 5  # 1x1, three atrous 3x3, image pooling
    assert [b[0].dilation for b in list(aspp.branches)[1:4]] == [(12, 12), (24, 24), (36, 36)]
    assert build_head("light", 32, 3)(z).shape == (2, 3, 5, 6)
    with pytest.raises(MtlensError, match="unknown dense head 'fpn'"):
        build_head("fpn", 32, 3)


@pytest.fixture(scope="module")
def scene() -> dict[str, Shapes3DDense]:
    return {s: Shapes3DDense(s, image_size=16, sizes=(4, 2, 2), seed=0) for s in ("train", "val", "test")}


def test_model_outputs_and_representation(scene: dict[str, Shapes3DDense]) -> None:
    model = create_model("dense_resnet", scene["train"].tasks, (3, 16, 16), head="light")
    batch = scene["train"].__getitems__([0, 1])
    out = model(batch["x"])
    assert {k: tuple(v.shape) for k, v in out.items()} == {"segmentation": (2, 7, 16, 16), "depth": (2, 1, 16, 16), "normal": (2, 3, 16, 16)}
    losses, z = model.step_losses(batch)
    assert losses.shape == (3,) and z.shape == (2, 512, 2, 2)  # the dilated layer4 map (output stride 8)
    assert {id(p) for p in model.shared_parameters()} == {id(p) for p in model.encoder.parameters()}
    single = create_model("dense_resnet", scene["train"].tasks, (3, 16, 16), head="light", active_tasks=(1,))
    assert single.step_losses(batch)[0].shape == (1,)
    with pytest.raises(MtlensError, match="needs DenseTask tasks"):
        create_model("dense_resnet", [t.spec for t in scene["train"].tasks], (3, 16, 16))


def every_method_and_level() -> list[tuple[str, str]]:
    out = []
    for name in available_methods():
        cls = METHODS.get(name)
        levels = cls.levels if getattr(cls, "uses_gradients", False) else ("param",)
        out += [(name, lv) for lv in levels]
    return out


def step_with(model: torch.nn.Module, batch: dict, name: str, level: str) -> None:
    shared = list(model.shared_parameters())
    method = create_method(name, 3, level=level)
    model.zero_grad(set_to_none=True)
    losses, z = model.step_losses(batch)
    method.backward(losses, shared, z, list(model.task_parameters()))
    grads = [p.grad for p in shared]
    assert all(g is not None and bool(torch.isfinite(g).all()) for g in grads), (name, level)
    assert any(bool(g.abs().sum() > 0) for g in grads), (name, level)
    assert all(p.grad is not None for p in model.task_parameters()), (name, level)


# One of each kind: loss weighting, learnable weights, a parameter-level aggregator (the Jacobian w.r.t. the
# backbone's 11M parameters), feature-level aggregators (w.r.t. the feature map), a regulariser; the full
# sweep over every method and level is the slow test below (the parameter-level rows cost seconds each on CPU).
KINDS = [("ew", "param"), ("uncertainty", "param"), ("mgda", "param"), ("mgda", "feature"), ("pcgrad", "feature"),
         ("nash_mtl", "feature")]


@pytest.fixture(scope="module")
def model(scene: dict[str, Shapes3DDense]) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("dense_resnet", scene["train"].tasks, (3, 16, 16), head="light")


@pytest.mark.parametrize("name,level", KINDS)
def test_methods_of_each_kind_step_the_model(scene: dict[str, Shapes3DDense], model: torch.nn.Module, name: str,
                                             level: str) -> None:
    step_with(model, scene["train"].__getitems__([0, 1]), name, level)


@pytest.mark.slow
def test_every_method_at_both_levels_steps_the_model(scene: dict[str, Shapes3DDense], model: torch.nn.Module) -> None:
    batch = scene["train"].__getitems__([0, 1])
    for name, level in every_method_and_level():
        step_with(model, batch, name, level)


def test_trainer_and_dense_metrics(scene: dict[str, Shapes3DDense]) -> None:
    torch.manual_seed(0)
    model = create_model("dense_resnet", scene["train"].tasks, (3, 16, 16), head="light")
    method = create_method("mgda", 3, level="feature")
    cfg = TrainConfig(epochs=1, batch_size=2, eval_batch_size=2, device="cpu", progress=False, checkpoint=False)
    final = Trainer(model, method, scene, cfg).fit()
    assert set(final) >= {"test/segmentation/acc", "test/depth/mse", "test/normal/mse"}
    assert all(math.isfinite(v) for v in final.values()) and 0 <= final["test/segmentation/acc"] <= 1
    metrics = evaluate_dense(model, scene["test"], batch_size=2, device="cpu")
    assert set(metrics["segmentation"]) == {"miou", "pixel_acc"} and set(metrics["depth"]) == {"abs_err", "rel_err"}
    assert set(metrics["normal"]) == {"mean_angle", "median_angle", "within_11.25", "within_22.5", "within_30"}
    assert metrics["segmentation"]["pixel_acc"] == pytest.approx(final["test/segmentation/acc"])
