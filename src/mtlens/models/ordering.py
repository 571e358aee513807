"""Parallel, permuted and soft ordering of shared layers (seed 003 §3, eqs. 2, 3, 7), and single-task cores.

A model for T tasks with per-task inputs: task t's input goes through its encoder E_t, then D depths of the
shared core layers W_1..W_D (each followed by its nonlinearity and a dropout), then its decoder D_t:

- parallel (eq. 2): depth k applies W_k for every task;
- permuted (eq. 3): depth k applies W_{rho_t(k)}, rho_t a fixed permutation per task (drawn from the seed);
- soft (eq. 7): depth k applies sum_j s(t, j, k) W_j, with s(t, :, k) = softmax over the layers of learned
  scales, initialised equal; an optional identity layer joins the layers that can be chosen (§4.4);
- single_task: each task has its own D core layers (the seed's single-task baseline, trained for all tasks
  at once: the parameters are disjoint, so summing the losses gives each task exactly its own updates).

Batches hold one batch per task: {"x": [x_0, ..., x_{T-1}], "targets": [y_0, ..., y_{T-1}]} with x_t [B_t, ...]
and y_t [B_t] (batch sizes may differ), or, when every task has the same input shape and batch size, x one
tensor [T, B, ...] and targets [T, B]. Predictions are [B_t] (regression; binary as logits) or [B_t, C_t].
There is no single shared representation, so `step_losses` returns None for it.

Dropout (App. A: "at the output of each core layer") is applied to the output of each depth. For a fixed
ordering that is the output of the core layer applied there; for soft ordering it drops the mixed output
rather than each of the D layer outputs before mixing (the seed does not say which): the same expectation,
and D times fewer random numbers (dropout masks were a quarter of a CPU step at D = 4).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mtlens.data.tasks import TaskSpec
from mtlens.errors import MtlensError
from mtlens.models.losses import task_loss, task_scores
from mtlens.models.ordering_layers import CORE_ACTIVATIONS, CoreLayers, MaskDropout, TaskConvBank, TaskDenseBank
from mtlens.models.registry import MODELS

ORDERINGS = ("parallel", "permuted", "soft", "single_task")
ENCODERS = ("learned", "frozen", "shared", "identity")
DECODERS = ("task", "shared")


def _generator(seed: int, part: int) -> torch.Generator:
    """Returns a generator for one part of the model, so every ordering built with a seed starts from the same weights."""
    state = np.random.SeedSequence([int(seed), part]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & ((1 << 63) - 1))


def draw_permutations(n_tasks: int, depth: int, seed: int = 0) -> list[list[int]]:
    """Returns one seeded random permutation of 0..depth-1 per task (seed 003 App. A: drawn per task per trial)."""
    rng = np.random.default_rng([int(seed), 3])
    return [[int(j) for j in rng.permutation(depth)] for _ in range(n_tasks)]


def check_permutations(permutations: Sequence[Sequence[int]], tasks: Sequence[TaskSpec], depth: int) -> list[list[int]]:
    """Returns the permutations as lists, or raises naming the first one that is not a permutation of 0..depth-1."""
    perms = [list(p) for p in permutations]
    if len(perms) != len(tasks):
        raise MtlensError(f"permutations: {len(perms)} given for {len(tasks)} tasks; give one per task")
    for spec, p in zip(tasks, perms):
        if sorted(int(j) if isinstance(j, (int, np.integer)) and not isinstance(j, bool) else -1 for j in p) != list(range(depth)):
            raise MtlensError(f"permutation {p} of task {spec.name!r} is not a permutation of 0..{depth - 1}")
    return [[int(j) for j in p] for p in perms]


def _task_shapes(input_shape: Sequence[Any], n_tasks: int) -> list[tuple[int, ...]]:
    """Returns one shape per task from one shape for all tasks or a sequence of per-task shapes."""
    items = list(input_shape)
    if items and all(isinstance(s, (int, np.integer)) for s in items):
        return [tuple(int(s) for s in items)] * n_tasks
    shapes = [tuple(int(s) for s in shape) for shape in items]
    if len(shapes) != n_tasks:
        raise MtlensError(f"input shapes: {len(shapes)} given for {n_tasks} tasks; give one shape, or one per task")
    return shapes


class LayerOrderingModel(nn.Module):
    """Task encoders, D shared core layers applied in a parallel / permuted / soft order, task decoders."""

    def __init__(
        self,
        tasks: Sequence[TaskSpec],
        input_shape: Sequence[Any],
        ordering: str = "soft",
        depth: int = 4,
        width: int = 64,
        core: str | CoreLayers = "dense",
        activation: str = "relu",
        dropout: float = 0.0,
        encoder: str = "learned",
        encoder_activation: str = "relu",
        decoder: str = "task",
        identity_layer: bool = False,
        permutations: Sequence[Sequence[int]] | None = None,
        output_dims: Sequence[int] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.tasks = tuple(tasks)
        if not self.tasks:
            raise MtlensError("a layer-ordering model needs at least one task")
        if ordering not in ORDERINGS:
            raise MtlensError(f"unknown ordering {ordering!r}; choose one of {', '.join(ORDERINGS)}")
        if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 1:
            raise MtlensError(f"depth D (the number of core layers) must be an integer >= 1, got {depth!r}")
        if encoder not in ENCODERS:
            raise MtlensError(f"unknown encoder kind {encoder!r}; choose one of {', '.join(ENCODERS)}")
        if decoder not in DECODERS:
            raise MtlensError(f"unknown decoder kind {decoder!r}; choose one of {', '.join(DECODERS)}")
        if not 0.0 <= float(dropout) < 1.0:
            raise MtlensError(f"dropout must be a rate in [0, 1), got {dropout}")
        if encoder_activation not in CORE_ACTIVATIONS:
            raise MtlensError(f"unknown encoder activation {encoder_activation!r}; choose one of {', '.join(CORE_ACTIVATIONS)}")
        kind = core.kind if isinstance(core, CoreLayers) else core
        if identity_layer and (ordering != "soft" or kind != "dense"):
            raise MtlensError(f"identity_layer needs ordering='soft' and core='dense' (got {ordering!r}, {kind!r}): a fixed "
                              "order would skip a core layer, and a conv layer pools, so no identity matches its shape")
        T, D = len(self.tasks), int(depth)
        self.ordering, self.depth, self.identity_layer = ordering, D, bool(identity_layer)
        self.architecture = f"{ordering}_ordering"
        self.active_tasks = tuple(range(T))
        self.input_shapes = _task_shapes(input_shape, T)
        n_layers = D * T if ordering == "single_task" else D
        if isinstance(core, CoreLayers):  # the user's own layers (CoreLayers.from_modules), trained in place
            if core.n_layers != n_layers:
                raise MtlensError(f"the given core has {core.n_layers} layers; ordering={ordering!r} with depth {D} "
                                  f"and {T} tasks needs {n_layers}")
            self.core = core
        else:
            self.core = CoreLayers(n_layers, width, core, activation, generator=_generator(seed, 1))
        self.drop = MaskDropout(float(dropout))
        self._build_encoder(encoder, encoder_activation, _generator(seed, 2))
        self._build_decoder(decoder, output_dims, _generator(seed, 4))
        if ordering == "soft":
            # seed 003 §3.3: all s(i, j, k) start equal; zero logits give softmax 1/L at every depth
            self.scale_logits = nn.Parameter(torch.zeros(T, D + int(self.identity_layer), D))
            layer_of = torch.arange(D).repeat(T, 1)
        elif ordering == "permuted":
            perms = draw_permutations(T, D, seed) if permutations is None else check_permutations(permutations, self.tasks, D)
            layer_of = torch.tensor(perms, dtype=torch.long)
        else:
            layer_of = torch.arange(D).repeat(T, 1)
            if ordering == "single_task":
                layer_of = layer_of + D * torch.arange(T)[:, None]
        if permutations is not None and ordering != "permuted":
            raise MtlensError(f"permutations are for ordering='permuted', got ordering={ordering!r}")
        self.register_buffer("layer_of", layer_of, persistent=False)
        # per depth: does every task use one layer (parallel)? Known now, so the forward never syncs to ask
        self._every = [int(layer_of[0, k]) if bool((layer_of[:, k] == layer_of[0, k]).all()) else None for k in range(D)]

    # ------------------------------------------------------------------ construction
    def _build_encoder(self, kind: str, activation: str, gen: torch.Generator) -> None:
        core, shapes = self.core, self.input_shapes
        self.encoder_kind = kind
        if core.kind == "dense":
            widths = [int(math.prod(s)) for s in shapes]
            self.in_widths = widths
            if kind == "identity":
                if max(widths) > core.width:
                    raise MtlensError(f"identity encoders pad inputs to the core width {core.width}; inputs have up to {max(widths)} features")
                self.encoder = None
            else:
                self._check_shared(kind, widths, "input widths")
                self.encoder = TaskDenseBank(widths, [core.width] * len(widths), shared=kind == "shared",
                                             trainable=kind != "frozen", activation=activation, generator=gen)
            self.core_in_shape: tuple[int, ...] = (core.width,)
        else:
            images = [s if len(s) == 3 else (1, *s) if len(s) == 2 else None for s in shapes]
            if any(s is None for s in images) or len({s[1:] for s in images}) != 1:  # type: ignore[index]
                raise MtlensError(f"conv core layers need image inputs (C, H, W) of one size for every task, got {shapes}")
            channels = [s[0] for s in images]  # type: ignore[index]
            self.in_widths = channels
            if kind == "identity":
                # seed 003 App. A.3: inputs zero-padded along channels to the core width
                if max(channels) > core.width:
                    raise MtlensError(f"identity encoders pad channels to the core width {core.width}; inputs have {max(channels)}")
                self.encoder = None
            else:
                self._check_shared(kind, channels, "input channels")
                self.encoder = TaskConvBank(channels, core.width, shared=kind == "shared", trainable=kind != "frozen", generator=gen)
            self.core_in_shape = (core.width, *images[0][1:])  # type: ignore[index]
        self.image_shape = None if core.kind == "dense" else self.core_in_shape[1:]

    def _check_shared(self, kind: str, values: Sequence[int], what: str) -> None:
        if kind == "shared" and len(set(values)) != 1:
            raise MtlensError(f"a shared encoder needs one input shape for every task; the tasks' {what} are {list(values)}")

    def _build_decoder(self, kind: str, output_dims: Sequence[int] | None, gen: torch.Generator) -> None:
        shape = self.core_in_shape
        for _ in range(self.depth):
            shape = self.core.output_shape(shape)
        if min(shape) < 1:
            raise MtlensError(f"{self.depth} conv core layers pool {self.core_in_shape[1:]} images to nothing; use smaller depth")
        self.out_widths = [t.output_dim for t in self.tasks]
        if output_dims is not None:
            # a regression task may predict a vector (seed 003 §4.4: the 10 landmark coordinates of CelebA)
            dims = [int(d) for d in output_dims]
            bad = [(t.name, d) for t, d, own in zip(self.tasks, dims, self.out_widths) if d != own and (t.kind != "regression" or d < 1)]
            if len(dims) != len(self.tasks) or bad:
                raise MtlensError(f"output_dims {dims}: give one width per task ({len(self.tasks)}); only a regression task "
                                  f"may differ from its task's width (got {bad[:1]})")
            self.out_widths = dims
        if kind == "shared" and len({(t.kind, t.output_dim) for t in self.tasks}) != 1:
            raise MtlensError("a shared decoder needs tasks of one kind and output width; got "
                              + ", ".join(f"{t.name}: {t.kind}/{t.output_dim}" for t in self.tasks))
        flat = int(math.prod(shape))
        self.decoder_kind = kind
        self.decoder = TaskDenseBank([flat] * len(self.tasks), self.out_widths, shared=kind == "shared", generator=gen)

    # ------------------------------------------------------------------ forward
    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    def scales(self) -> torch.Tensor:
        """Returns the scales s [T, L, D] (task, layer, depth), summing to 1 over layers; one-hot for fixed orderings.

        For single_task models the layers are each task's own D core layers.
        """
        if self.ordering == "soft":
            return torch.softmax(self.scale_logits, dim=1)
        local = self.layer_of - self.layer_of.min(dim=1, keepdim=True).values if self.ordering == "single_task" else self.layer_of
        return F.one_hot(local, self.depth).transpose(1, 2).float()

    def _sample_shape(self, width: int) -> tuple[int, ...]:
        return (width,) if self.image_shape is None else (width, *self.image_shape)

    def _stack_inputs(self, xs: Sequence[torch.Tensor] | torch.Tensor) -> tuple[torch.Tensor, list[int]]:
        """Returns the tasks' inputs as one zero-padded tensor [T, B_max, ...] in the encoders' layout, and each B_t.

        xs: one tensor per task, or one tensor [T, B, ...] when every task has the same input shape (a view then).
        """
        dtype = self.core.weight.dtype
        pad_to = self.core.width if self.encoder is None else max(self.in_widths)
        if isinstance(xs, torch.Tensor):
            width = self.in_widths[0]
            sample = self._sample_shape(width)
            if xs.shape[0] != len(self.tasks) or len(set(self.in_widths)) != 1 or math.prod(xs.shape[2:]) != math.prod(sample):
                raise MtlensError(f"a stacked input must be [{len(self.tasks)}, B, {', '.join(map(str, sample))}] with "
                                  f"tasks of one input shape; got {list(xs.shape)}")
            h = xs.to(dtype).reshape(xs.shape[0], xs.shape[1], *sample)
            if pad_to != width:
                h = F.pad(h, (*(0, 0) * (h.ndim - 3), 0, pad_to - width))
            return h, [int(xs.shape[1])] * len(self.tasks)
        if len(xs) != len(self.tasks):
            raise MtlensError(f"expected one input tensor per task ({len(self.tasks)}), got {len(xs)}")
        rows = max(x.shape[0] for x in xs)
        parts = []
        for spec, x, width in zip(self.tasks, xs, self.in_widths):
            sample = self._sample_shape(width)
            if math.prod(x.shape[1:]) != math.prod(sample):
                raise MtlensError(f"task {spec.name!r} expects inputs of shape {list(sample)} per sample, got {list(x.shape[1:])}")
            x = x.to(dtype).reshape(x.shape[0], *sample)
            if pad_to != width or rows != x.shape[0]:
                x = F.pad(x, (*(0, 0) * (x.ndim - 2), 0, pad_to - width, 0, rows - x.shape[0]))
            parts.append(x)
        return torch.stack(parts), [int(x.shape[0]) for x in xs]

    def _core(self, h: torch.Tensor) -> torch.Tensor:
        """Returns the activations [T, B, ...] after the D depths of core layers (each followed by dropout)."""
        if self.ordering != "soft":
            for k in range(self.depth):
                h = self.drop(self.core.selected(h, self.layer_of[:, k], self._every[k]))
            return h
        stacked = self.core.stacked()  # the same stacked layers serve every depth
        scales = torch.softmax(self.scale_logits, dim=1)
        for k in range(self.depth):
            h = self.drop(self.core.mixed(h, scales[:, :, k], self.identity_layer, stacked))
        return h

    def forward(self, xs: Sequence[torch.Tensor] | torch.Tensor) -> dict[str, torch.Tensor]:
        """Returns {task name: prediction} for per-task inputs: one tensor per task (in task order) or one [T, B, ...].

        Predictions are [B_t] (regression and binary logits), [B_t, C_t] (multiclass) or [B_t, d] (a regression task
        given `output_dims` d > 1).
        """
        h, sizes = self._stack_inputs(xs if isinstance(xs, torch.Tensor) else list(xs))
        if self.encoder is not None:
            h = self.encoder(h)
        out = self.decoder(self._core(h).flatten(2))
        preds = {}
        for t, (spec, rows) in enumerate(zip(self.tasks, sizes)):
            width = self.out_widths[t]
            p = out[t, :rows, :width]
            preds[spec.name] = p if spec.kind == "multiclass" or width > 1 else p[:, 0]
        return preds

    def step_losses(self, batch: Mapping[str, Any]) -> tuple[torch.Tensor, None]:
        """Returns (the [T] task losses of a per-task batch, None: there is no single shared representation)."""
        preds = self(batch["x"])
        return torch.stack([task_loss(s, preds[s.name], y.reshape(-1)) for s, y in zip(self.tasks, batch["targets"])]), None

    def score_batch(self, batch: Mapping[str, Any]) -> dict[str, tuple[torch.Tensor, int]]:
        """Returns per task (summed squared error or number correct over its rows in the batch, its row count)."""
        preds = self(batch["x"])
        out = {}
        for spec, y in zip(self.tasks, batch["targets"]):
            y = y.reshape(-1, 1)
            out[spec.name] = (task_scores((spec,), {spec.name: preds[spec.name]}, y)[spec.name], int(y.shape[0]))
        return out

    # ------------------------------------------------------------------ parameter groups
    def _shared_modules(self) -> list[nn.Module]:
        mods: list[nn.Module] = [] if self.ordering == "single_task" else [self.core]
        if self.encoder_kind == "shared":
            mods.append(self.encoder)  # type: ignore[arg-type]
        if self.decoder_kind == "shared":
            mods.append(self.decoder)
        return mods

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        """Returns the trainable parameters shared by tasks: the core layers (and a shared encoder / decoder)."""
        return (p for m in self._shared_modules() for p in m.parameters() if p.requires_grad)

    def task_parameters(self) -> Iterator[nn.Parameter]:
        """Returns the trainable task-specific parameters: encoders, decoders, soft-ordering scales (single_task: cores)."""
        shared = {id(p) for m in self._shared_modules() for p in m.parameters()}
        return (p for p in self.parameters() if id(p) not in shared and p.requires_grad)


def layer_ordering(tasks: Sequence[TaskSpec], input_shape: Sequence[Any], ordering: str = "soft", **options: Any) -> LayerOrderingModel:
    """Returns a layer-ordering model; input_shape is one shape for every task or one per task."""
    return LayerOrderingModel(tasks, input_shape, ordering=ordering, **options)


MODELS.add("layer_ordering", layer_ordering)
for _name in ORDERINGS:
    MODELS.add(f"{_name}_ordering", partial(layer_ordering, ordering=_name))
