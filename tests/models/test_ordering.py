"""Layer-ordering models (seed 003 §3): orderings, scales, identity layer, heterogeneous tasks, bad input."""

import pytest
import torch
from torch import nn

from mtlens import MtlensError
from mtlens.data.tasks import TaskSpec
from mtlens.methods import create_method
from mtlens.models import create_model
from mtlens.models.ordering import LayerOrderingModel, draw_permutations
from mtlens.models.ordering_layers import CoreLayers
from mtlens.training.ordering import check_method

MIXED = [TaskSpec("bin", "binary"), TaskSpec("multi", "multiclass", 4), TaskSpec("reg", "regression")]
WIDTHS = [(3,), (7,), (12,)]


def _harden(soft: LayerOrderingModel, layer_of: torch.Tensor) -> None:
    """Sets the soft model's scales one-hot on layer_of[t, k] (softmax of 0 and -1e4 is exactly 1 and 0)."""
    T, L, D = soft.scale_logits.shape
    logits = torch.full((T, L, D), -1e4)
    for t in range(T):
        for k in range(D):
            logits[t, layer_of[t, k], k] = 0.0
    with torch.no_grad():
        soft.scale_logits.copy_(logits)


@pytest.mark.parametrize("ordering", ["parallel", "permuted"])
def test_one_hot_soft_ordering_equals_fixed_ordering_exactly(ordering: str) -> None:
    perms = [[0, 1, 2, 3], [2, 0, 3, 1], [3, 2, 1, 0]] if ordering == "permuted" else None
    soft = LayerOrderingModel(MIXED, WIDTHS, ordering="soft", depth=4, width=16, dropout=0.5, seed=3).eval()
    fixed = LayerOrderingModel(MIXED, WIDTHS, ordering=ordering, depth=4, width=16, dropout=0.5, seed=3,
                               permutations=perms).eval()
    # every ordering built with one seed starts from the same weights: nothing to copy
    assert all(torch.equal(a, b) for a, b in zip(soft.core.parameters(), fixed.core.parameters()))
    _harden(soft, fixed.layer_of)
    assert torch.equal(soft.scales(), fixed.scales())
    xs = [torch.rand(9, 3), torch.rand(5, 7), torch.rand(9, 12)]
    a, b = soft(xs), fixed(xs)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_one_hot_soft_ordering_equals_permuted_conv() -> None:
    # float64: the grouped convolution of a fixed order and the D-layer convolution of the soft order may sum in
    # different orders, so float32 results can differ in the last bit; in float64 they agree to rounding
    tasks = [TaskSpec("a", "multiclass", 3), TaskSpec("b", "multiclass", 5)]
    soft = LayerOrderingModel(tasks, [(1, 12, 12), (2, 12, 12)], ordering="soft", core="conv", width=4, depth=3,
                              encoder="identity").double().eval()
    fixed = LayerOrderingModel(tasks, [(1, 12, 12), (2, 12, 12)], ordering="permuted", core="conv", width=4, depth=3,
                               encoder="identity", permutations=[[1, 2, 0], [2, 0, 1]]).double().eval()
    _harden(soft, fixed.layer_of)
    xs = [torch.rand(3, 1, 12, 12, dtype=torch.float64), torch.rand(2, 2, 12, 12, dtype=torch.float64)]
    a, b = soft(xs), fixed(xs)
    assert all(torch.allclose(a[k], b[k], rtol=0, atol=1e-12) for k in a)


def test_scales_start_equal_and_sum_to_one_at_every_depth() -> None:
    model = LayerOrderingModel(MIXED, WIDTHS, ordering="soft", depth=4, width=8, identity_layer=True)
    s = model.scales()
    assert s.shape == (3, 5, 4)
    assert torch.allclose(s, torch.full_like(s, 0.2))
    with torch.no_grad():
        model.scale_logits.normal_(0, 3)
    assert torch.allclose(model.scales().sum(1), torch.ones(3, 4), atol=1e-6)
    fixed = LayerOrderingModel(MIXED, WIDTHS, ordering="permuted", depth=4, width=8)
    assert torch.equal(fixed.scales().sum(1), torch.ones(3, 4))


def test_identity_layer_passes_activations_unchanged() -> None:
    tasks = [TaskSpec("a", "regression"), TaskSpec("b", "regression")]
    model = LayerOrderingModel(tasks, [(6,), (6,)], ordering="soft", depth=3, width=6, encoder="identity",
                               identity_layer=True, dropout=0.5).eval()
    _harden(model, torch.full((2, 3), 3))  # layer index D = 3 is the identity
    seen = []
    model.decoder.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    xs = [torch.randn(4, 6), torch.randn(4, 6)]
    model(xs)
    assert torch.equal(seen[0], torch.stack(xs))  # after three depths of identity, the decoder sees the inputs


def test_tasks_with_different_widths_and_kinds_train_together() -> None:
    g = torch.Generator().manual_seed(0)
    xs = [torch.rand(128, 3, generator=g), torch.rand(128, 7, generator=g), torch.rand(128, 12, generator=g)]
    ys = [(xs[0][:, 0] > 0.5).float(), (xs[1][:, :2] > 0.5).float() @ torch.tensor([1.0, 2.0]), xs[2].sum(1) - 6.0]
    batch = {"x": xs, "targets": ys}
    model = LayerOrderingModel(MIXED, WIDTHS, ordering="soft", depth=3, width=16, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=2e-2)
    first = None
    for _ in range(100):
        opt.zero_grad()
        losses, rep = model.step_losses(batch)
        assert rep is None
        first = losses.detach() if first is None else first
        losses.sum().backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        scores = model.score_batch(batch)
    assert scores["bin"][1] == scores["multi"][1] == scores["reg"][1] == 128
    assert scores["bin"][0] / 128 > 0.9 and scores["multi"][0] / 128 > 0.8
    assert scores["reg"][0] / 128 < 0.2 * ys[2].var()  # the regression explains most of its variance
    assert bool((losses.detach() < 0.5 * first).all())


def test_padding_keeps_tasks_apart() -> None:
    model = LayerOrderingModel(MIXED, WIDTHS, ordering="permuted", depth=2, width=8).eval()
    xs = [torch.rand(4, 3), torch.rand(6, 7), torch.rand(2, 12)]
    before = model(xs)
    after = model([xs[0], torch.rand(6, 7), xs[2] * 5])  # other tasks' inputs change
    assert torch.equal(before["bin"], after["bin"])
    resized = model([xs[0], torch.rand(3, 7), xs[2]])  # and their batch sizes (BLAS may block differently)
    assert torch.allclose(before["bin"], resized["bin"], rtol=0, atol=1e-6)
    model.train()
    losses, _ = model.step_losses({"x": xs, "targets": [torch.ones(4), torch.zeros(6), torch.zeros(2)]})
    losses[0].backward()
    enc = model.encoder.weight.grad
    assert enc[0, 3:].abs().sum() == 0 and enc[1:].abs().sum() == 0  # only task 0's real block gets its gradient


def test_registry_names_and_per_task_shapes() -> None:
    for name in ("parallel_ordering", "permuted_ordering", "soft_ordering", "single_task_ordering"):
        model = create_model(name, MIXED, WIDTHS, depth=2, width=8)
        assert model.architecture == name
    same = create_model("layer_ordering", MIXED[:2], (1, 4, 4), ordering="soft", depth=2, width=8)
    assert same.in_widths == [16, 16]


def test_parameter_groups() -> None:
    soft = LayerOrderingModel(MIXED, WIDTHS, ordering="soft", depth=2, width=8, encoder="frozen")
    shared = {id(p) for p in soft.shared_parameters()}
    task = {id(p) for p in soft.task_parameters()}
    assert shared == {id(soft.core.weight), id(soft.core.bias)}
    assert id(soft.scale_logits) in task and id(soft.encoder.weight) not in task  # frozen encoders are not trained
    single = LayerOrderingModel(MIXED, WIDTHS, ordering="single_task", depth=2, width=8)
    assert list(single.shared_parameters()) == [] and single.core.n_layers == 6
    assert single.layer_of.tolist() == [[0, 1], [2, 3], [4, 5]]


def test_permutations_come_from_the_seed() -> None:
    assert draw_permutations(5, 4, seed=1) == draw_permutations(5, 4, seed=1)
    assert draw_permutations(5, 4, seed=1) != draw_permutations(5, 4, seed=2)
    model = LayerOrderingModel(MIXED, WIDTHS, ordering="permuted", depth=4, width=8, seed=1)
    assert model.layer_of.tolist() == draw_permutations(3, 4, seed=1)


def test_methods_on_layer_ordering() -> None:
    model = LayerOrderingModel(MIXED, WIDTHS, ordering="soft", depth=2, width=8)
    with pytest.raises(MtlensError, match="level='param'"):
        check_method(create_method("pcgrad", 3, level="feature"), model)
    method = create_method("pcgrad", 3)
    check_method(method, model)
    xs = [torch.rand(4, 3), torch.rand(4, 7), torch.rand(4, 12)]
    losses, rep = model.step_losses({"x": xs, "targets": [torch.ones(4), torch.zeros(4), torch.zeros(4)]})
    method.backward(losses, list(model.shared_parameters()), rep, list(model.task_parameters()))
    assert model.core.weight.grad is not None and model.scale_logits.grad is not None
    single = LayerOrderingModel(MIXED, WIDTHS, ordering="single_task", depth=2, width=8)
    with pytest.raises(MtlensError, match="shares none"):
        check_method(create_method("pcgrad", 3), single)


def test_bad_input_one_line_errors() -> None:
    with pytest.raises(MtlensError, match=r"one shape.*\(4, 4\), \(3, 4\)"):
        CoreLayers.from_modules([nn.Linear(4, 4), nn.Linear(4, 3)])
    with pytest.raises(MtlensError, match=r"permutation \[0, 0, 1\] of task 'multi' is not a permutation of 0..2"):
        LayerOrderingModel(MIXED, WIDTHS, ordering="permuted", depth=3, permutations=[[0, 1, 2], [0, 0, 1], [2, 1, 0]])
    with pytest.raises(MtlensError, match="depth D .* >= 1, got 0"):
        LayerOrderingModel(MIXED, WIDTHS, depth=0)
    with pytest.raises(MtlensError, match="unknown encoder kind 'conv3'"):
        LayerOrderingModel(MIXED, WIDTHS, encoder="conv3")
    with pytest.raises(MtlensError, match="unknown ordering 'sideways'"):
        LayerOrderingModel(MIXED, WIDTHS, ordering="sideways")
    with pytest.raises(MtlensError, match="identity_layer needs ordering='soft'"):
        LayerOrderingModel(MIXED, WIDTHS, ordering="parallel", identity_layer=True)
    with pytest.raises(MtlensError, match="shared encoder needs one input shape"):
        LayerOrderingModel(MIXED, WIDTHS, encoder="shared")
    with pytest.raises(MtlensError, match="task 'multi' expects inputs of shape \\[7\\]"):
        LayerOrderingModel(MIXED, WIDTHS, width=8)([torch.rand(2, 3), torch.rand(2, 8), torch.rand(2, 12)])
    errors = []
    for bad in ({"permutations": [[0, 1]]}, {"depth": -2}, {"encoder": "x"}):
        with pytest.raises(MtlensError) as info:
            LayerOrderingModel(MIXED, WIDTHS, ordering="permuted", **{"depth": 2, **bad})
        errors.append(str(info.value))
    assert all("\n" not in e for e in errors)
    own = CoreLayers.from_modules([nn.Linear(8, 8), nn.Linear(8, 8)])
    model = LayerOrderingModel(MIXED, WIDTHS, ordering="soft", depth=2, core=own)
    assert model.core is own and model.core.width == 8
    with pytest.raises(MtlensError, match="the given core has 2 layers; .* needs 3"):
        LayerOrderingModel(MIXED, WIDTHS, depth=3, core=own)
