"""ResNet-18 and ResNet-50 (He et al. 2016), written here because torchvision's wheels do not load with this torch.

The modules carry torchvision's attribute names (conv1, bn1, layer1..layer4 of blocks with conv/bn 1-3 and
`downsample.0/1`, fc), so a state dict saved from torchvision's `resnet18()` / `resnet50()` loads as is
(`weights=PATH`). Bottlenecks put the stride on the 3x3 convolution (torchvision's "v1.5"). Initialisation
follows torchvision: Kaiming-normal (fan_out, relu) convolutions, BatchNorm weight 1 and bias 0, PyTorch's
default Linear. Nothing is downloaded: weights are random unless a local file is given.

Dense prediction uses dilated variants (DeepLab's "atrous" ResNet, as in MTAN / LibMTL's `resnet_dilated`):
`output_stride=8` replaces the strides of layer3 and layer4 by dilations 2 and 4 (16: layer4 only, dilation
2); the first block of a dilated layer keeps the previous dilation on its first 3x3, exactly as torchvision's
`replace_stride_with_dilation`. Parameter counts do not change.

The shared-parameter / representation split of the methods: a `ResNet` built with `num_classes=None` is a
backbone whose `forward` returns the layer4 feature map [N, C, h, w] (or, with `pool=True`, the globally
average-pooled vector [N, C], seed 003 §4.4's "ResNet-50 truncated at the final average pooling layer"); its
parameters are the shared parameters and its output is the representation the feature-level surrogate
differentiates.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from mtlens.errors import MtlensError
from mtlens.registry import Registry

#: (block type, blocks per stage) of each depth, He et al. 2016 Table 1.
LAYOUTS: dict[int, tuple[str, tuple[int, int, int, int]]] = {18: ("basic", (2, 2, 2, 2)), 50: ("bottleneck", (3, 4, 6, 3))}
OUTPUT_STRIDES = (8, 16, 32)
STAGE_WIDTHS = (64, 128, 256, 512)


def _conv3x3(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False)


def _conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (ResNet-18/34)."""

    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 first_dilation: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv3x3(cin, planes, stride, first_dilation)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes, 1, dilation)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Returns relu(x + F(x)), x projected when the shape changes."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided / dilated), 1x1 expand by 4, with a residual connection (ResNet-50)."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 first_dilation: int = 1, dilation: int = 1) -> None:
        super().__init__()
        # The 3x3 is the block's only spatial convolution, so it carries the first block's previous dilation.
        self.conv1 = _conv1x1(cin, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride, first_dilation)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Returns relu(x + F(x)), x projected when the shape changes."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


BLOCKS: dict[str, type[BasicBlock] | type[Bottleneck]] = {"basic": BasicBlock, "bottleneck": Bottleneck}


class ResNet(nn.Module):
    """A ResNet of depth 18 or 50; a classifier with `num_classes`, else a backbone returning features.

    `forward(x)` returns logits [N, num_classes] (classifier), the pooled features [N, C] (`pool=True`) or the
    layer4 feature map [N, C, H/s, W/s] with s = `output_stride` (8, 16 or 32).
    """

    def __init__(self, depth: int = 18, num_classes: int | None = 1000, output_stride: int = 32, pool: bool = False,
                 in_channels: int = 3) -> None:
        super().__init__()
        if depth not in LAYOUTS:
            raise MtlensError(f"unknown ResNet depth {depth}; choose one of {', '.join(map(str, LAYOUTS))}")
        if output_stride not in OUTPUT_STRIDES:
            raise MtlensError(f"output_stride must be one of {', '.join(map(str, OUTPUT_STRIDES))}, got {output_stride}")
        if num_classes is not None and num_classes < 1:
            raise MtlensError(f"num_classes must be >= 1 (or None for a backbone), got {num_classes}")
        kind, counts = LAYOUTS[depth]
        block = BLOCKS[kind]
        self.depth, self.output_stride = depth, output_stride
        self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        # Stages 3 and 4 trade their stride for dilation until the output stride is reached.
        dilate = {8: (False, False, True, True), 16: (False, False, False, True), 32: (False,) * 4}[output_stride]
        self._cin, self._dilation = 64, 1
        for i, (width, n, dil) in enumerate(zip(STAGE_WIDTHS, counts, dilate)):
            setattr(self, f"layer{i + 1}", self._stage(block, width, n, 1 if i == 0 else 2, dil))
        self.feature_dim = STAGE_WIDTHS[-1] * block.expansion
        self.pool = pool or num_classes is not None
        self.avgpool = nn.AdaptiveAvgPool2d(1) if self.pool else None
        self.fc = nn.Linear(self.feature_dim, num_classes) if num_classes is not None else None
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _stage(self, block: type[BasicBlock] | type[Bottleneck], width: int, n: int, stride: int, dilate: bool) -> nn.Sequential:
        previous = self._dilation
        if dilate:
            self._dilation *= stride
            stride = 1
        out = width * block.expansion
        downsample = None
        if stride != 1 or self._cin != out:
            downsample = nn.Sequential(_conv1x1(self._cin, out, stride), nn.BatchNorm2d(out))
        blocks = [block(self._cin, width, stride, downsample, previous, self._dilation)]
        self._cin = out
        blocks += [block(out, width, 1, None, self._dilation, self._dilation) for _ in range(n - 1)]
        return nn.Sequential(*blocks)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Returns the layer4 feature map [N, feature_dim, H/s, W/s]."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Returns logits, pooled features or the feature map (see the class docstring)."""
        z = self.features(x)
        if self.avgpool is None:
            return z
        z = torch.flatten(self.avgpool(z), 1)
        return z if self.fc is None else self.fc(z)


def _first(keys: list[str], n: int = 3) -> str:
    return ", ".join(keys[:n]) + (f" (+{len(keys) - n} more)" if len(keys) > n else "")


def load_weights(model: ResNet, path: str | os.PathLike[str]) -> ResNet:
    """Returns `model` with the state dict in `path` (torchvision key names) loaded; raises if it does not match.

    The file is read with `weights_only=True`. A classifier file (with `fc.*`) loads into a backbone, which has
    no fc; files saved before BatchNorm counted its batches (no `num_batches_tracked`) load too.
    """
    path = Path(path)
    if not path.is_file():
        raise MtlensError(f"weights file {str(path)!r} does not exist; pass the path of a saved state dict")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001  (any unreadable file is the user's to fix)
        raise MtlensError(f"{path}: cannot be read as a PyTorch state dict ({type(err).__name__}: {str(err).splitlines()[0]})") from None
    if not isinstance(state, Mapping) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise MtlensError(f"{path}: expected a state dict (parameter name -> tensor), got {type(state).__name__}")
    own = model.state_dict()
    ignorable = ("num_batches_tracked",)
    missing = [k for k in own if k not in state and not k.endswith(ignorable)]
    unexpected = [k for k in state if k not in own and not (model.fc is None and k.startswith("fc."))]
    name = f"resnet{model.depth}"
    if missing or unexpected:
        raise MtlensError(
            f"{path}: keys do not match {name} (torchvision names): missing {_first(missing) or 'none'}; "
            f"unexpected {_first(unexpected) or 'none'}"
        )
    for key, value in own.items():
        if key in state and state[key].shape != value.shape:
            raise MtlensError(f"{path}: {key!r} has shape {tuple(state[key].shape)}, {name} expects {tuple(value.shape)}")
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
    return model


BACKBONES: Registry[ResNet] = Registry("backbone")


def _factory(depth: int):  # type: ignore[no-untyped-def]
    def build(num_classes: int | None = None, output_stride: int = 32, pool: bool = False,
              weights: str | os.PathLike[str] | None = None) -> ResNet:
        model = ResNet(depth, num_classes, output_stride, pool)
        return model if weights is None else load_weights(model, weights)

    build.__doc__ = f"Returns a ResNet-{depth} (a backbone unless num_classes), random or loaded from `weights`."
    return build


resnet18 = _factory(18)
resnet50 = _factory(50)
BACKBONES.add("resnet18", resnet18, aliases=("resnet-18",))
BACKBONES.add("resnet50", resnet50, aliases=("resnet-50",))


def create_backbone(name: str, **options: object) -> ResNet:
    """Returns the backbone registered under `name` (resnet18, resnet50) built with `options`."""
    return BACKBONES.create(name, **options)


def available_backbones() -> list[str]:
    """Returns the registered backbone names."""
    return BACKBONES.available()
