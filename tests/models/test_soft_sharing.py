"""The soft-sharing architectures: shapes, the shared / task split, the cut, codes, gates, LTB's sampling."""

from __future__ import annotations

import pytest
import torch

from mtlens import MtlensError
from mtlens.data.dense import DenseTask
from mtlens.data.tasks import TaskSpec
from mtlens.methods import shared_jacobian, task_jacobian
from mtlens.models import SoftSharingModel, available_models, create_model
from mtlens.models.cross_stitch import stitch_rows
from mtlens.models.experts import DSelectGate, smooth_step
from mtlens.models.soft_registry import ARCHITECTURES

ARCHS = list(ARCHITECTURES)
TASKS = [TaskSpec("r0", "regression"), TaskSpec("b", "binary"), TaskSpec("m", "multiclass", 5)]
SMALL = {"mmoe": {"num_experts": 3}, "dselect_k": {"num_experts": 3}}  # 3: DSelect-k's non-power-of-2 branch


def _batch(n: int, shape: tuple[int, ...], seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    targets = torch.stack([torch.randn(n, generator=g), torch.randint(0, 2, (n,), generator=g).float(),
                           torch.randint(0, 5, (n,), generator=g).float()], dim=1)
    return {"x": torch.rand(n, *shape, generator=g), "targets": targets}


def _model(arch: str, shape: tuple[int, ...] = (13,), **kw) -> SoftSharingModel:
    torch.manual_seed(0)
    return create_model(arch, TASKS, shape, latent_dim=4, mlp_hidden=(16, 16), head_hidden=(8,), **{**SMALL.get(arch, {}), **kw})


def test_every_architecture_is_registered_under_libmtl_names() -> None:
    assert set(ARCHS) <= set(available_models())
    for libmtl_name, ours in [("Cross_stitch", "cross_stitch"), ("MMoE", "mmoe"), ("MTAN", "mtan"), ("CGC", "cgc"),
                              ("PLE", "ple"), ("DSelect_k", "dselect_k"), ("LTB", "ltb")]:
        assert create_model(libmtl_name, TASKS, (13,)).architecture == ours


# codes per sample on the conv encoder (latent 4, 3 tasks): what encode() returns, per the module docstrings
CONV_CODES = {"cross_stitch": 12, "mmoe": 12, "mtan": 4, "cgc": 16, "ple": 16, "dselect_k": 12, "ltb": 12}


@pytest.mark.parametrize("arch", ARCHS)
def test_conv_encoder_shapes_and_codes(arch: str) -> None:
    model = create_model(arch, TASKS, (1, 64, 64), latent_dim=4, head_hidden=(8,), **SMALL.get(arch, {}))
    x = torch.rand(3, 1, 64, 64)
    out = model(x)
    assert [tuple(v.shape) for v in out.values()] == [(3,), (3,), (3, 5)]
    assert tuple(model.encode(x).shape) == (3, CONV_CODES[arch])
    losses, cut = model.step_losses(_batch(3, (1, 64, 64)))
    assert losses.shape == (3,) and bool(torch.isfinite(losses).all())
    assert (cut is None) == (arch == "mtan")
    with pytest.raises(MtlensError, match=r"expects inputs \[N, 1, 64, 64\]"):
        model(torch.rand(3, 1, 32, 32))


def test_resnet_backbone_with_dense_tasks_every_architecture() -> None:
    tasks = [DenseTask("s", "segmentation", 3), DenseTask("d", "depth")]
    x = torch.rand(2, 3, 32, 32)
    batch = {"x": x, "targets": {"s": torch.randint(0, 3, (2, 32, 32)), "d": torch.rand(2, 1, 32, 32) + 0.1}}
    for arch in ARCHS:
        torch.manual_seed(0)
        opts = {"num_experts": 2} if arch in ("mmoe", "dselect_k") else {}
        model = create_model(arch, tasks, (3, 32, 32), head="light", head_options={"width": 8}, **opts)
        out = model(x)
        assert tuple(out["s"].shape) == (2, 3, 32, 32) and tuple(out["d"].shape) == (2, 1, 32, 32), arch
        losses, cut = model.step_losses(batch)
        assert losses.shape == (2,) and bool(torch.isfinite(losses).all()), arch
        assert model.encode(x).shape[0] == 2 and model.encode(x).shape[-2:] == (4, 4), arch
        scores = model.score_batch(batch)
        assert set(scores) == {"s", "d"}, arch


@pytest.mark.parametrize("arch", ARCHS)
def test_shared_and_task_parameters_partition_the_model(arch: str) -> None:
    model = _model(arch)
    shared = [id(p) for p in model.shared_parameters()]
    own = [id(p) for p in model.task_parameters()]
    assert shared and not set(shared) & set(own)
    assert len(shared) + len(own) == len(list(model.parameters())) == len(set(shared) | set(own))
    per_task = [id(p) for t in range(3) for p in model.own_parameters(t)]
    assert sorted(per_task) == sorted(own)


@pytest.mark.parametrize("arch", ARCHS)
def test_own_parameters_reach_only_their_task_and_shared_ones_reach_several(arch: str) -> None:
    # LTB in its warm-up mixes every parent, so every shared node is reached (a sampled tree leaves some out);
    # its logits are not used then (test_ltb_samples_a_tree_per_step_and_evaluates_the_argmax covers them)
    model = _model(arch, **({"warmup_steps": 10} if arch == "ltb" else {}))
    losses, _ = model.step_losses(_batch(6, (13,)))
    unused = {id(p) for p in model.encoder.logits} if arch == "ltb" else set()
    shared = [p for p in model.shared_parameters() if id(p) not in unused]
    reached = torch.zeros(len(shared))
    for s in range(3):
        for t in range(3):
            grads = torch.autograd.grad(losses[s], model.own_parameters(t), retain_graph=True, allow_unused=True)
            touched = any(g is not None and bool(g.abs().sum() > 0) for g in grads)
            assert touched == (s == t), (arch, s, t)
        grads = torch.autograd.grad(losses[s], shared, retain_graph=True, allow_unused=True)
        reached += torch.tensor([float(g is not None and bool(g.abs().sum() > 0)) for g in grads])
    assert bool((reached >= 2).all()), [p.shape for p, r in zip(shared, reached) if r < 2]


@pytest.mark.parametrize("arch", [a for a in ARCHS if a != "mtan"])
def test_the_cut_carries_every_path_from_the_shared_parameters(arch: str) -> None:
    # Chaining the per-task gradients through the cut gives the parameter Jacobian itself.
    model = _model(arch, **({"warmup_steps": 10} if arch == "ltb" else {}))
    losses, cut = model.step_losses(_batch(5, (13,)))
    shared = list(model.shared_parameters())
    direct = task_jacobian(losses, shared)
    chained = shared_jacobian(losses, shared, cut)
    assert direct.abs().sum() > 0
    torch.testing.assert_close(chained, direct, rtol=1e-5, atol=1e-7)
    assert cut.shape[0] == 5  # batch first


def test_mtan_has_no_cut_and_its_last_shared_layer_is_the_backbones() -> None:
    model = _model("mtan")
    assert model.step_losses(_batch(4, (13,)))[1] is None
    assert list(model.broken_assumptions) == ["shared_representation"]
    last = list(model.shared_parameters())[-1]
    assert last is model.encoder.backbone[-1].body[-1].bias  # the latent layer, after the shared blocks


def test_cross_stitch_units_start_as_convex_rows() -> None:
    rows = stitch_rows(3, 0.9)
    torch.testing.assert_close(torch.stack(rows), torch.tensor([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.05, 0.05, 0.9]]))
    assert stitch_rows(1, 0.9)[0].tolist() == [1.0]
    model = _model("cross_stitch")
    assert len(model.encoder.units) == 2  # after every stage but the last of the 3-stage MLP


def test_dselect_k_gate_selects_with_binary_codes() -> None:
    assert smooth_step(torch.tensor([-1.0, -0.5, 0.0, 0.25, 0.5, 2.0]), 1.0).tolist() == pytest.approx(
        [0.0, 0.0, 0.5, 0.5 + 0.375 - 0.03125, 1.0, 1.0])
    torch.manual_seed(0)
    gate = DSelectGate(5, 4, k=2)
    assert gate.codes.tolist() == [[False, False], [False, True], [True, False], [True, True]]
    with torch.no_grad():
        weights, penalty = gate(torch.randn(7, 5))
    torch.testing.assert_close(weights.sum(1), torch.ones(7))  # 4 = 2^2 experts: every code is a real expert
    assert 0 < float(penalty) < 1e-5  # only the entropy term, weight 1e-6
    with torch.no_grad():  # a selector sure of expert 2 (binary 10): weights one-hot, no entropy
        gate.z_logits.weight.zero_()
        gate.z_logits.bias.copy_(torch.tensor([1.0, -1.0, 1.0, -1.0]))
        weights, penalty = gate(torch.randn(3, 5))
    assert weights.tolist() == [[0.0, 0.0, 1.0, 0.0]] * 3 and float(penalty) < 1e-10


def test_dselect_k_keeps_selectors_on_real_experts_when_e_is_not_a_power_of_two() -> None:
    torch.manual_seed(0)
    gate = DSelectGate(5, 3, k=2, entropy_reg=0.0)  # codes 00, 01, 10 real; 11 is no expert
    with torch.no_grad():
        gate.z_logits.weight.zero_()
        gate.z_logits.bias.copy_(torch.tensor([1.0, 1.0, 0.0, 0.0]))  # selector 0 on code 11, selector 1 uniform
        gate.w_logits.weight.zero_()
        gate.w_logits.bias.zero_()  # the two selectors weigh 1/2 each
        weights, penalty = gate(torch.randn(2, 5))
    # selector 0 puts nothing on a real expert: its term 1/0 is infinite; selector 1 has 3/4 on real ones
    assert weights.sum(1).tolist() == pytest.approx([0.375, 0.375]) and float(penalty) == float("inf")
    with torch.no_grad():
        gate.z_logits.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 0.0]))
        _, penalty = gate(torch.randn(2, 5))
    assert float(penalty) == pytest.approx(2 * (1 / 0.75 - 1))
    losses, _ = _model("dselect_k").step_losses(_batch(4, (13,)))  # the regulariser joins each task's loss
    assert bool(torch.isfinite(losses).all())


def test_ltb_samples_a_tree_per_step_and_evaluates_the_argmax() -> None:
    model = _model("ltb")
    trunk = model.encoder
    x = torch.rand(4, 13)
    with torch.no_grad():
        trunk.task_logits[1].copy_(torch.tensor([0.0, 0.0, 5.0]))
    model.eval()
    choices = trunk._choices()
    assert choices[-1][1].tolist() == [0.0, 0.0, 1.0] and int(trunk.step) == 0
    torch.testing.assert_close(model.encode(x), model.encode(x))
    model.train()
    first = [c.detach().clone() for c in trunk._choices()]
    assert int(trunk.step) == 1 and all(bool(((c == 0) | (c == 1)).all()) and bool((c.sum(1) == 1).all()) for c in first)
    with torch.no_grad():  # a no-grad pass (FAMO's losses after the step) reuses the step's tree
        again = trunk._choices()
    assert int(trunk.step) == 1 and all(torch.equal(a, b) for a, b in zip(first, again))
    draws = [[c.detach().clone() for c in trunk._choices()] for _ in range(6)]
    assert any(not torch.equal(d[0], first[0]) for d in draws)  # uniform logits: the trees vary
    losses, _ = model.step_losses(_batch(4, (13,)))
    grads = torch.autograd.grad(losses.sum(), [*trunk.logits, *trunk.task_logits])
    assert all(bool(g.abs().sum() > 0) for g in grads)  # the straight-through gradient reaches the logits
    fresh = _model("ltb")
    fresh.load_state_dict(model.state_dict())  # the step is saved: the next tree is the same
    assert all(torch.equal(a, b) for a, b in zip(fresh.encoder._choices(), trunk._choices()))
    assert trunk.tau(0) == 5.0 and trunk.tau(300) == pytest.approx(2.5)


def test_ltb_warm_up_mixes_every_parent() -> None:
    model = _model("ltb", warmup_steps=2)
    first = model.encoder._choices()
    assert all(torch.allclose(c, torch.full_like(c, 1 / c.shape[1])) for c in first)


@pytest.mark.parametrize(("arch", "options", "message"), [
    ("mmoe", {"num_expert": 2}, "mmoe has no option num_expert; its options are num_experts"),
    ("cross_stitch", {"alpha_self": 1.5}, "alpha_self"),
    ("ltb", {"branches": [2]}, "branches: give 2 node counts"),
    ("dselect_k", {"num_experts": 1}, "at least 2 experts"),
    ("cgc", {"shared_experts": 0}, ">= 1 shared expert"),
    ("mtan", {"backbone": "vgg"}, "unknown backbone 'vgg'"),
    ("mmoe", {"weights": "w.pt"}, "weights= loads a ResNet state dict"),
])
def test_bad_options_are_one_line(arch: str, options: dict, message: str) -> None:
    with pytest.raises(MtlensError, match=message) as err:
        create_model(arch, TASKS, (13,), **options)
    assert "\n" not in str(err.value)


def test_mixed_task_kinds_are_refused() -> None:
    with pytest.raises(MtlensError, match="tasks of one kind"):
        create_model("mmoe", [TASKS[0], DenseTask("d", "depth")], (3, 32, 32))
    with pytest.raises(MtlensError, match="need a backbone that gives feature maps"):
        create_model("mmoe", [DenseTask("d", "depth")], (3, 32, 32), backbone="mlp")
