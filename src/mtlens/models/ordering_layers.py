"""Stacked layers for layer ordering (seed 003 §3): core layers of one shape, per-task encoder and decoder banks.

Everything is stored stacked so a forward pass is a handful of batched kernels, never a Python loop over tasks
x layers: the D core layers are one weight tensor ([D, m, m] dense, [D, c, c, 3, 3] conv), applied all at once
to every task's activations (one matmul or one convolution with D*c output channels) or, when each task uses
its own layer, as one batched matmul / grouped convolution over tasks. Task encoders and decoders of different
widths are one [T, d_max, o_max] bank each: a task's block sits in the top-left corner and the rest is zero,
and since inputs are zero-padded to d_max and outputs sliced to o_i, the padding neither changes a task's
output nor receives a gradient.

Initialisation follows the seed's framework (Keras defaults, seed 003 App. A): Glorot-uniform weights (fan-in
and fan-out of each task's own block), zero biases.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from mtlens.errors import MtlensError

CORE_KINDS = ("dense", "conv")
CORE_ACTIVATIONS = ("relu", "linear")
KERNEL = 3  # seed 003 App. A.3: 3x3 convolutions, each followed by 2x2 max-pooling


def glorot_(w: torch.Tensor, fan_in: int, fan_out: int, generator: torch.Generator) -> torch.Tensor:
    """Fills `w` from U(-a, a), a = sqrt(6 / (fan_in + fan_out)) (Glorot uniform, Keras' default); returns w."""
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        return w.uniform_(-bound, bound, generator=generator)


def _act(h: torch.Tensor, activation: str) -> torch.Tensor:
    """Returns the activation of `h`, computed in place: every caller passes a fresh matmul or convolution output,
    whose backward does not need it (an out-of-place ReLU allocates and writes a second [T*B, m*D] tensor per depth)."""
    return h.relu_() if activation == "relu" else h


class MaskDropout(nn.Module):
    """Dropout (drop with probability p, scale the rest by 1 / (1 - p)) from a uniform mask.

    The same distribution as nn.Dropout; comparing torch.rand with p is 2.7x faster on CPU than the
    bernoulli_ draw nn.Dropout makes (41k elements: 0.6 vs 1.6 ms, 1 thread), a fifth of a soft-ordering step.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise MtlensError(f"dropout must be a rate in [0, 1), got {p}")
        self.p = float(p)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Returns h with dropout applied in training mode, h itself in evaluation mode."""
        if not self.training or self.p == 0.0:
            return h
        return h * torch.rand_like(h).ge_(self.p).mul_(1.0 / (1.0 - self.p))


class CoreLayers(nn.Module):
    """n_layers core layers of one shape, stored stacked: dense m -> m, or conv 3x3 c -> c with ReLU and 2x2 max-pool.

    `mixed` applies every layer to every task's rows and mixes them with the task's scales (soft ordering);
    `selected` applies to each task's rows the layer chosen for that task (fixed orderings). Layer outputs are
    taken after the nonlinearity (and pooling).
    """

    def __init__(self, n_layers: int, width: int, kind: str = "dense", activation: str = "relu",
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if isinstance(n_layers, bool) or not isinstance(n_layers, int) or n_layers < 1:
            raise MtlensError(f"the number of core layers must be an integer >= 1, got {n_layers!r}")
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise MtlensError(f"core width must be an integer >= 1, got {width!r}")
        if kind not in CORE_KINDS:
            raise MtlensError(f"unknown core layer kind {kind!r}; choose one of {', '.join(CORE_KINDS)}")
        if activation not in CORE_ACTIVATIONS:
            raise MtlensError(f"unknown core activation {activation!r}; choose one of {', '.join(CORE_ACTIVATIONS)}")
        if kind == "conv" and activation != "relu":
            raise MtlensError(f"conv core layers are conv + ReLU + max-pool (seed 003 App. A.3); got activation {activation!r}")
        self.n_layers, self.width, self.kind, self.activation = n_layers, width, kind, activation
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        if kind == "dense":
            # stored [L, in, out] so a layer is applied as h @ W[j]
            self.weight = nn.Parameter(torch.empty(n_layers, width, width))
            glorot_(self.weight, width, width, gen)
        else:
            self.weight = nn.Parameter(torch.empty(n_layers, width, width, KERNEL, KERNEL))
            glorot_(self.weight, width * KERNEL * KERNEL, width * KERNEL * KERNEL, gen)
        self.bias = nn.Parameter(torch.zeros(n_layers, width))

    @classmethod
    def from_modules(cls, layers: Sequence[nn.Module], activation: str = "relu") -> CoreLayers:
        """Returns core layers holding copies of the weights of `layers` (all nn.Linear m->m or all nn.Conv2d c->c 3x3)."""
        if len(layers) < 1:
            raise MtlensError("give at least one core layer (D >= 1), got none")
        shapes = [tuple(getattr(l, "weight").shape) if hasattr(l, "weight") else type(l).__name__ for l in layers]
        kinds = {type(l) for l in layers}
        first = layers[0]
        if kinds == {nn.Linear}:
            kind, width = "dense", first.out_features
            ok = all(l.in_features == l.out_features == width and l.bias is not None for l in layers)
        elif kinds == {nn.Conv2d}:
            kind, width = "conv", first.out_channels
            ok = all(l.in_channels == l.out_channels == width and l.kernel_size == (KERNEL, KERNEL) and l.stride == (1, 1)
                     and l.padding == (1, 1) and l.groups == 1 and l.bias is not None for l in layers)
        else:
            ok = False
        if not ok:
            raise MtlensError(
                f"core layers must all have one shape (all nn.Linear m->m or all nn.Conv2d c->c, 3x3, padding 1, with "
                f"bias) so they can be applied in any order; got weight shapes {shapes}"
            )
        core = cls(len(layers), width, kind, activation)
        with torch.no_grad():
            for j, l in enumerate(layers):
                core.weight[j].copy_(l.weight.t() if kind == "dense" else l.weight)
                core.bias[j].copy_(l.bias)
        return core

    def output_shape(self, shape: Sequence[int]) -> tuple[int, ...]:
        """Returns the shape of one sample after a core layer ((m,) dense, (c, H//2, W//2) conv)."""
        return (self.width,) if self.kind == "dense" else (self.width, shape[1] // 2, shape[2] // 2)

    def _finish(self, h: torch.Tensor) -> torch.Tensor:
        h = _act(h, self.activation)
        return F.max_pool2d(h, 2) if self.kind == "conv" else h

    def stacked(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (weight, bias) of all layers as one layer with outputs ordered (feature, layer).

        Dense: [m, m * L] and [m * L]; conv: [c * L, c, 3, 3] and [c * L]. A model computes this once per
        forward pass and hands it to `mixed` at every depth.
        """
        L, m = self.n_layers, self.width
        if self.kind == "dense":
            return self.weight.permute(1, 2, 0).reshape(m, m * L), self.bias.t().reshape(m * L)
        return self.weight.transpose(0, 1).reshape(m * L, m, KERNEL, KERNEL), self.bias.t().reshape(m * L)

    def mixed(self, h: torch.Tensor, scales: torch.Tensor, identity: bool = False,
              stacked: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """Returns sum_j scales[t, j] * layer_j(h[t]) for h [T, B, *in] and scales [T, L(+1)]: [T, B, *out].

        Every layer runs on every row in one matmul / one convolution whose outputs are ordered (feature, layer),
        so the mix over layers is one batched matmul (dense). identity: the last scale weighs h itself (dense).
        stacked: the result of `stacked()`, when the caller already has it.
        """
        T, B = h.shape[:2]
        L, m = self.n_layers, self.width
        w, b = stacked if stacked is not None else self.stacked()
        if self.kind == "dense":
            out = _act(torch.addmm(b, h.reshape(T * B, m), w), self.activation).view(T, B * m, L)
            if identity:
                out = torch.cat([out, h.reshape(T, B * m, 1)], dim=2)
            return torch.bmm(out, scales.unsqueeze(2)).view(T, B, m)
        out = self._finish(F.conv2d(h.reshape(T * B, *h.shape[2:]), w, b, padding=1))
        side = out.shape[-2:]
        out = out.view(T, B * m, L, -1)
        return (out * scales[:, None, :, None]).sum(2).view(T, B, m, *side)

    def selected(self, h: torch.Tensor, layer: torch.Tensor, every: int | None = None) -> torch.Tensor:
        """Returns h [T, B, *in] through layer `layer[t]` for task t's rows: [T, B, *out] (one batched kernel).

        every: the layer index when every task uses that one layer (parallel; the caller knows it, so no sync).
        """
        T, B = h.shape[:2]
        if every is not None:  # one plain layer over every row
            flat = h.reshape(T * B, *h.shape[2:])
            if self.kind == "dense":
                out = _act(torch.addmm(self.bias[every], flat, self.weight[every]), self.activation)
            else:
                out = self._finish(F.conv2d(flat, self.weight[every], self.bias[every], padding=1))
            return out.view(T, B, *out.shape[1:])
        if self.kind == "dense":
            return _act(torch.baddbmm(self.bias[layer].unsqueeze(1), h, self.weight[layer]), self.activation)
        m, H, W = h.shape[2:]
        grouped = h.transpose(0, 1).reshape(B, T * m, H, W)
        out = F.conv2d(grouped, self.weight[layer].reshape(T * m, m, KERNEL, KERNEL), self.bias[layer].reshape(T * m),
                       padding=1, groups=T)
        out = self._finish(out)
        return out.view(B, T, m, *out.shape[-2:]).transpose(0, 1)


class TaskDenseBank(nn.Module):
    """T dense layers of widths d_i -> o_i stored as one zero-padded [T, d_max, o_max] tensor (or one shared layer).

    forward(x [T, B, d_max]) -> [T, B, o_max]; a task's outputs beyond o_i are padding, to be sliced away.
    """

    def __init__(self, in_widths: Sequence[int], out_widths: Sequence[int], *, shared: bool = False,
                 trainable: bool = True, activation: str = "linear", generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.in_widths, self.out_widths = tuple(int(d) for d in in_widths), tuple(int(o) for o in out_widths)
        self.shared, self.activation = shared, activation
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        d_max, o_max = max(self.in_widths), max(self.out_widths)
        n = 1 if shared else len(self.in_widths)
        weight = torch.zeros(n, d_max, o_max)
        for t in range(n):
            d, o = self.in_widths[t], self.out_widths[t]
            glorot_(weight[t, :d, :o], d, o, gen)
        self.weight = nn.Parameter(weight, requires_grad=trainable)
        self.bias = nn.Parameter(torch.zeros(n, 1, o_max), requires_grad=trainable)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Returns the layer outputs [T, B, o_max] of inputs [T, B, d_max]."""
        out = torch.baddbmm(self.bias, x, self.weight) if not self.shared else torch.matmul(x, self.weight[0]) + self.bias[0]
        return _act(out, self.activation)


class TaskConvBank(nn.Module):
    """T 3x3 convolutions (C_i -> c, ReLU, no pooling) as one grouped convolution, or one shared convolution."""

    def __init__(self, in_channels: Sequence[int], width: int, *, shared: bool = False, trainable: bool = True,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.in_channels, self.width, self.shared = tuple(int(c) for c in in_channels), width, shared
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        c_max = max(self.in_channels)
        n = 1 if shared else len(self.in_channels)
        weight = torch.zeros(n, width, c_max, KERNEL, KERNEL)
        for t in range(n):
            c = self.in_channels[t]
            glorot_(weight[t, :, :c], c * KERNEL * KERNEL, width * KERNEL * KERNEL, gen)
        self.weight = nn.Parameter(weight, requires_grad=trainable)
        self.bias = nn.Parameter(torch.zeros(n, width), requires_grad=trainable)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Returns ReLU(conv(x)) [T, B, c, H, W] of inputs [T, B, C_max, H, W]."""
        T, B, C, H, W = x.shape
        if self.shared:
            out = F.conv2d(x.reshape(T * B, C, H, W), self.weight[0], self.bias[0], padding=1)
            return F.relu(out).view(T, B, self.width, H, W)
        grouped = x.transpose(0, 1).reshape(B, T * C, H, W)
        out = F.conv2d(grouped, self.weight.reshape(T * self.width, C, KERNEL, KERNEL), self.bias.reshape(-1),
                       padding=1, groups=T)
        return F.relu(out).view(B, T, self.width, H, W).transpose(0, 1)
