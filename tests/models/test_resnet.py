"""ResNet-18 / ResNet-50: the textbook layer list and parameter counts, torchvision-keyed weights, bad weight files."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from mtlens.errors import MtlensError
from mtlens.models.resnet import BasicBlock, Bottleneck, ResNet, available_backbones, create_backbone, load_weights, resnet18

sys.path.insert(0, str(Path(__file__).parents[1] / "methods"))
from _refs import stub_torchvision  # noqa: E402


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def classifiers() -> dict[int, ResNet]:
    """The two ImageNet-shaped classifiers, built once (the counts and layer lists need no forward pass)."""
    return {18: ResNet(18, num_classes=1000), 50: ResNet(50, num_classes=1000)}


def test_parameter_counts_match_torchvision(classifiers: dict[int, ResNet]) -> None:
    assert n_params(classifiers[18]) == 11_689_512
    assert n_params(classifiers[50]) == 25_557_032
    # Backbones drop the 1000-way fc: 512 * 1000 + 1000 and 2048 * 1000 + 1000 fewer; dilation adds nothing.
    assert n_params(ResNet(18, num_classes=None)) == 11_689_512 - 513_000
    assert n_params(ResNet(18, num_classes=None, output_stride=8)) == 11_689_512 - 513_000


@pytest.mark.parametrize("depth,blocks,kind,widths", [
    (18, (2, 2, 2, 2), BasicBlock, (64, 128, 256, 512)),
    (50, (3, 4, 6, 3), Bottleneck, (256, 512, 1024, 2048)),
])
def test_textbook_layer_list(classifiers: dict[int, ResNet], depth: int, blocks: tuple[int, ...], kind: type,
                             widths: tuple[int, ...]) -> None:
    net = classifiers[depth]
    assert (net.conv1.kernel_size, net.conv1.stride, net.conv1.out_channels) == ((7, 7), (2, 2), 64)
    assert (net.maxpool.kernel_size, net.maxpool.stride) == (3, 2)
    for i, (n, width) in enumerate(zip(blocks, widths)):
        layer = getattr(net, f"layer{i + 1}")
        assert len(layer) == n and all(isinstance(b, kind) for b in layer)
        last_conv = [m for m in layer[-1].modules() if isinstance(m, nn.Conv2d)][-1]
        assert last_conv.out_channels == width
        spatial = [m for m in layer[0].modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)][0]
        assert spatial.stride == ((1, 1) if i == 0 else (2, 2))  # stride on the (first) 3x3: v1.5 bottlenecks
        has_projection = [b.downsample is not None for b in layer]
        assert has_projection == [i > 0 or kind is Bottleneck] + [False] * (n - 1)
    assert net.fc.in_features == widths[-1] and net.fc.out_features == 1000


def test_output_strides_and_dilations() -> None:
    x = torch.rand(1, 3, 64, 64)
    shapes = {s: tuple(resnet18(output_stride=s).eval()(x).shape) for s in (32, 16, 8)}
    assert shapes == {32: (1, 512, 2, 2), 16: (1, 512, 4, 4), 8: (1, 512, 8, 8)}
    net = resnet18(output_stride=8)
    dil = [(name, m.dilation[0]) for name, m in net.named_modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    # First 3x3 of a dilated stage keeps the previous dilation (torchvision's replace_stride_with_dilation).
    assert dict(dil)["layer3.0.conv1"] == 1 and dict(dil)["layer3.0.conv2"] == 2 and dict(dil)["layer3.1.conv1"] == 2
    assert dict(dil)["layer4.0.conv1"] == 2 and dict(dil)["layer4.1.conv2"] == 4
    assert resnet18(pool=True)(x).shape == (1, 512)
    assert resnet18(num_classes=10)(x).shape == (1, 10)
    assert available_backbones() == ["resnet18", "resnet50"]


TORCHVISION_KEYS = {  # a few entries of torchvision's resnet18 state dict, with their shapes
    "conv1.weight": (64, 3, 7, 7), "bn1.running_var": (64,), "layer1.0.conv1.weight": (64, 64, 3, 3),
    "layer2.0.downsample.0.weight": (128, 64, 1, 1), "layer2.0.downsample.1.num_batches_tracked": (),
    "layer4.1.bn2.running_var": (512,), "fc.weight": (1000, 512), "fc.bias": (1000,),
}


def test_torchvision_key_names(classifiers: dict[int, ResNet]) -> None:
    state = classifiers[18].state_dict()
    assert len(state) == 122  # torchvision's resnet18 has 122 entries (62 params, 60 BN buffers)
    assert {k: tuple(state[k].shape) for k in TORCHVISION_KEYS} == TORCHVISION_KEYS


@pytest.mark.parametrize("depth,output_stride", [(18, 8), (18, 32), (50, 16)])
def test_torchvision_keyed_state_dict_loads(tmp_path: Path, depth: int, output_stride: int) -> None:
    """A state dict saved from torchvision's code (LibMTL vendors it) loads and gives the same outputs."""
    stub_torchvision()
    ref_models = pytest.importorskip("LibMTL.model")
    torch.manual_seed(1)
    ref = getattr(ref_models, f"resnet{depth}")(pretrained=False)
    with torch.no_grad():  # non-trivial BatchNorm statistics, so a key mix-up would show
        for m in ref.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
    state = dict(ref.state_dict())
    width = 512 if depth == 18 else 2048
    state["fc.weight"], state["fc.bias"] = torch.randn(1000, width), torch.randn(1000)  # a full torchvision file
    path = tmp_path / f"resnet{depth}.pth"
    torch.save(state, path)
    ours = create_backbone(f"resnet{depth}", output_stride=output_stride, weights=path).eval()
    if output_stride != 32:
        ref = sys.modules["LibMTL.model.resnet_dilated"].ResnetDilated(ref, dilate_scale=output_stride)
    x = torch.rand(2, 3, 40, 48)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref.eval()(x), rtol=1e-5, atol=1e-5)
    if depth == 18:
        classifier = load_weights(ResNet(depth, num_classes=1000), path)
        torch.testing.assert_close(classifier.fc.bias.detach(), state["fc.bias"])


def test_old_files_without_batch_counters_load(tmp_path: Path) -> None:
    state = {k: v for k, v in resnet18().state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, tmp_path / "old.pth")
    load_weights(resnet18(), tmp_path / "old.pth")


def test_wrong_keys_are_listed_in_one_line(tmp_path: Path) -> None:
    state = resnet18().state_dict()
    state["layer1.0.convA.weight"] = state.pop("layer1.0.conv1.weight")
    state["head.weight"] = torch.zeros(3)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(MtlensError) as err:
        resnet18(weights=tmp_path / "bad.pth")
    msg = str(err.value)
    assert "\n" not in msg
    assert "missing layer1.0.conv1.weight" in msg and "unexpected layer1.0.convA.weight, head.weight" in msg


def test_bad_weight_files(tmp_path: Path) -> None:
    state = resnet18().state_dict()
    state["conv1.weight"] = torch.zeros(64, 3, 3, 3)
    torch.save(state, tmp_path / "shape.pth")
    with pytest.raises(MtlensError, match=r"'conv1.weight' has shape \(64, 3, 3, 3\), resnet18 expects \(64, 3, 7, 7\)"):
        resnet18(weights=tmp_path / "shape.pth")
    with pytest.raises(MtlensError, match="does not exist"):
        resnet18(weights=tmp_path / "none.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(MtlensError, match="cannot be read as a PyTorch state dict"):
        resnet18(weights=tmp_path / "junk.pth")
    torch.save([torch.zeros(1)], tmp_path / "list.pth")
    with pytest.raises(MtlensError, match="expected a state dict"):
        resnet18(weights=tmp_path / "list.pth")
    with pytest.raises(MtlensError, match="output_stride must be one of 8, 16, 32"):
        ResNet(18, output_stride=4)
