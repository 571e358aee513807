"""The soft-sharing architectures against LibMTL 1.1.5's modules on the same weights (features to 1e-6).

Each test builds our model, builds LibMTL's module with identity decoders (so it returns the features the
decoders would read), copies our weights into it and compares the per-task features, in float64 (so that
the order of a sum, e.g. a matmul against LibMTL's loop, cannot show as a difference). Where the definitions
differ (cross-stitch's units, PLE's shared branch, DSelect-k's regulariser), the module docstrings say how;
the cross-stitch test sets our units to LibMTL's special case.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from mtlens.data.tasks import TaskSpec
from mtlens.models import available_models, create_model
from mtlens.models.resnet import ResNet
from mtlens.models.stages import create_stages

sys.path.insert(0, str(Path(__file__).parents[1] / "methods"))
from _refs import stub_torchvision  # noqa: E402

TASKS = [TaskSpec("r0", "regression"), TaskSpec("r1", "regression"), TaskSpec("r2", "regression")]
NAMES = [t.name for t in TASKS]


@pytest.fixture(scope="module")
def arch():  # type: ignore[no-untyped-def]
    stub_torchvision()
    return pytest.importorskip("LibMTL.architecture")


def _copy(src: nn.Module, dst: nn.Module) -> None:
    """Copies src's parameters and buffers into dst's, entry by entry in registration order (same layout)."""
    a, b = list(src.state_dict().values()), list(dst.state_dict().values())
    assert len(a) == len(b) and all(x.shape == y.shape for x, y in zip(a, b))
    with torch.no_grad():
        for x, y in zip(a, b):
            y.copy_(x)


def _ref(cls, encoder_class, **kwargs):  # type: ignore[no-untyped-def]
    decoders = nn.ModuleDict({n: nn.Identity() for n in NAMES})
    return cls(NAMES, encoder_class, decoders, False, False, torch.device("cpu"), **kwargs)


def _compare(trunk: nn.Module, ref: nn.Module, x: torch.Tensor) -> float:
    """Returns the largest difference between our and LibMTL's features on x, both in float64."""
    trunk.double()
    ref.double()
    with torch.no_grad():
        return _max_diff(trunk(x.double()).features, ref(x.double()))


def _max_diff(ours: list[torch.Tensor], ref: dict[str, torch.Tensor]) -> float:
    """Returns the largest difference between our and LibMTL's features (which must differ between tasks)."""
    assert all(not torch.allclose(ours[0], o) for o in ours[1:])
    return max(float((o - ref[n]).abs().max()) for o, n in zip(ours, NAMES))


def test_every_libmtl_architecture_is_registered(arch) -> None:  # type: ignore[no-untyped-def]
    # HPS is hard parameter sharing, our multi_head; LibMTL 1.1.5 has no LTB (ours follows Guo et al. 2020)
    ours = {"HPS": "multi_head", "Cross_stitch": "cross_stitch", "MMoE": "mmoe", "MTAN": "mtan", "CGC": "cgc",
            "PLE": "ple", "DSelect_k": "dselect_k"}
    assert sorted(n for n in arch.__all__ if n != "AbsArchitecture") == sorted(ours)
    assert set(ours.values()) | {"ltb"} <= set(available_models())


def _conv_expert() -> nn.Module:
    return nn.Sequential(*create_stages("conv", (1, 64, 64), latent_dim=4).make())


@pytest.mark.parametrize("name", ["mmoe", "cgc", "dselect_k"])
def test_mixtures_of_experts_equal_libmtl(arch, name: str) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    options = {"mmoe": {"num_experts": 3}, "cgc": {"shared_experts": 2, "task_experts": 1}, "dselect_k": {"num_experts": 3}}[name]
    model = create_model(name, TASKS, (1, 64, 64), latent_dim=4, **options).eval()
    trunk = model.encoder
    if name == "cgc":
        ref = _ref(arch.CGC, _conv_expert, img_size=[1, 64, 64], num_experts=[2, 1, 1, 1])
        for t, n in enumerate(NAMES):
            _copy(trunk.own[t], ref.experts_specific[n])
    elif name == "mmoe":
        ref = _ref(arch.MMoE, _conv_expert, img_size=[1, 64, 64], num_experts=[3])
    else:
        ref = _ref(arch.DSelect_k, _conv_expert, img_size=[1, 64, 64], num_experts=[3], num_nonzeros=2, kgamma=1.0)
        # LibMTL casts the binary digit strings with astype(bool), which under NumPy 2 (this venv: 2.4) makes
        # every digit True, so every expert would get the same code; give it the binary codes it means.
        assert bool(ref._binary_codes.all())
        ref._binary_codes = trunk.gates[0].codes.unsqueeze(0)
    _copy(trunk.shared, ref.experts_shared)
    for t, n in enumerate(NAMES):
        if name == "dselect_k":
            _copy(trunk.gates[t].z_logits, ref._z_logits[n])
            _copy(trunk.gates[t].w_logits, ref._w_logits[n])
        else:
            _copy(trunk.gates[t].linear, ref.gate_specific[n][0])
    ref.eval()  # LibMTL's DSelect-k runs a backward of its regulariser inside forward when training
    x = torch.rand(5, 1, 64, 64)
    assert _compare(trunk, ref, x) <= 1e-6


def test_ple_with_one_level_equals_libmtl_cgc(arch) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    model = create_model("ple", TASKS, (13,), backbone="mlp", mlp_hidden=(), latent_dim=4, shared_experts=2)
    trunk = model.encoder
    assert trunk.levels == 1
    ref = _ref(arch.CGC, lambda: nn.Sequential(*create_stages("mlp", (13,), latent_dim=4, mlp_hidden=()).make()),
               img_size=[13], num_experts=[2, 1, 1, 1])
    _copy(nn.ModuleList([nn.Sequential(e) for e in trunk.shared[0]]), ref.experts_shared)
    for t, n in enumerate(NAMES):
        _copy(nn.ModuleList([nn.Sequential(e) for e in trunk.own[0][t]]), ref.experts_specific[n])
        _copy(trunk.task_gates[0][t].linear, ref.gate_specific[n][0])
    x = torch.rand(5, 13)
    assert _compare(trunk, ref, x) <= 1e-6


def _resnet_like(stages: nn.ModuleList) -> ResNet:
    """Returns a ResNet-18 (output stride 8) holding the weights of our four ResNet stages."""
    net = ResNet(18, None, 8)
    _copy(stages, net)
    return net


def test_cross_stitch_equals_libmtl_with_libmtl_units(arch) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    model = create_model("cross_stitch", TASKS, (3, 64, 64), backbone="resnet18")
    trunk = model.encoder
    nets = [_resnet_like(col) for col in trunk.columns]
    ref = _ref(arch.Cross_stitch, lambda: nets.pop(0))
    with torch.no_grad():
        ref.encoder.cross_unit.copy_(torch.rand(4, 3))
        for l, unit in enumerate(trunk.units):  # LibMTL: one weight per source column, the same for every target
            for row in unit:
                row.copy_(ref.encoder.cross_unit[l])
    x = torch.rand(2, 3, 64, 64)
    assert _compare(trunk, ref, x) <= 1e-6


def test_mtan_equals_libmtl(arch) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    model = create_model("mtan", TASKS, (3, 64, 64), backbone="resnet18")
    trunk = model.encoder
    ref = _ref(arch.MTAN, lambda: _resnet_like(trunk.backbone))
    for t in range(3):
        for j in range(4):
            _copy(trunk.attention[t][j], ref.encoder.encoder_att[str(j)][t])
    _copy(trunk.blocks, ref.encoder.encoder_block_att)
    x = torch.rand(2, 3, 64, 64)
    assert _compare(trunk, ref, x) <= 1e-6  # training mode: BatchNorm on batch statistics, in both
