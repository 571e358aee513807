"""T task heads evaluated as one batched computation, and their per-task losses without a loop over tasks.

A model whose tasks each read their own input (an information filter's W_j, seed 001 eq. 1) stacks those
inputs into [T, N, d]; `BatchedHeads` maps them to padded outputs [T, N, C_max] with one `baddbmm` per layer,
and `BatchedTaskLoss` turns the outputs into the [T] per-task mean losses that `mtlens.models.losses.task_loss`
gives task by task (cross-entropy for classes, BCE-with-logits for binary, MSE for regression), grouped by
task kind: at most three batched computations, whatever the number of tasks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from mtlens.data.tasks import TaskSpec
from mtlens.errors import MtlensError
from mtlens.models.encoders import activation

KINDS = ("multiclass", "binary", "regression")


class BatchedLinear(nn.Module):
    """T independent dense layers in one: inputs [T, N, in] -> [T, N, out].

    Initialised per task like `nn.Linear` (weights and biases uniform in +-1/sqrt(in)).
    """

    def __init__(self, n_tasks: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_dim)
        self.weight = nn.Parameter(torch.empty(n_tasks, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n_tasks, 1, out_dim).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Returns the T layers' outputs [T, N, out]."""
        return torch.baddbmm(self.bias, x, self.weight)


class BatchedHeads(nn.Module):
    """One MLP head per task (hidden widths shared, default none: linear heads as in seed 001 Table II).

    The output layer has C_max = the largest output width; task j's prediction is its first `widths[j]`
    columns. `dropout` > 0 puts dropout before every dense layer (seed 001 Table I's MTFL heads use 0.5).
    """

    def __init__(self, tasks: Sequence[TaskSpec], in_dim: int, hidden: Sequence[int] = (),
                 activation_name: str = "relu", dropout: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise MtlensError(f"head dropout must be in [0, 1), got {dropout}")
        self.widths = [t.output_dim for t in tasks]
        widths = [in_dim, *hidden, max(self.widths)]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            layers.append(BatchedLinear(len(tasks), a, b))
            if i < len(widths) - 2:
                layers.append(activation(activation_name))
        self.net = nn.Sequential(*layers)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        """Returns the padded outputs [T, N, C_max] of the heads on their inputs w [T, N, d]."""
        return self.net(w)

    def predictions(self, tasks: Sequence[TaskSpec], out: torch.Tensor) -> dict[str, torch.Tensor]:
        """Returns {task: prediction} from padded outputs: [N, C] for classes, [N] for binary and regression."""
        return {t.name: out[j, :, : t.output_dim] if t.kind == "multiclass" else out[j, :, 0]
                for j, t in enumerate(tasks)}


class BatchedTaskLoss:
    """Per-task mean losses [T] of padded outputs [T, N, C_max] against targets [N, T], grouped by task kind."""

    def __init__(self, tasks: Sequence[TaskSpec]) -> None:
        kinds = [t.kind for t in tasks]
        unknown = sorted(set(kinds) - set(KINDS))
        if unknown:
            raise MtlensError(f"batched heads support task kinds {', '.join(KINDS)}, got {', '.join(unknown)}")
        self.n_tasks = len(tasks)
        # (kind, task indices or None when every task has that kind: no gather needed)
        self.groups: list[tuple[str, torch.Tensor | None]] = []
        for kind in KINDS:
            idx = [j for j, k in enumerate(kinds) if k == kind]
            if idx:
                self.groups.append((kind, None if len(idx) == len(kinds) else torch.tensor(idx)))
        classes = [t.output_dim if t.kind == "multiclass" else 0 for t in tasks]
        c_max = max(t.output_dim for t in tasks)
        # padded logit columns of a class task must not take probability mass: -inf there
        pad = torch.arange(c_max)[None, :] >= torch.tensor(classes)[:, None]
        self.pad = pad if any(0 < c < c_max for c in classes) else None

    def __call__(self, out: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Returns the [T] mean losses (task_loss of each task, computed in at most three batched calls)."""
        y = targets.t()
        if len(self.groups) == 1:
            return self._kind_loss(self.groups[0][0], out, y, self.pad)
        losses = out.new_empty(self.n_tasks)
        for kind, idx in self.groups:
            idx = idx.to(out.device)
            pad = None if self.pad is None else self.pad.to(out.device)[idx]
            losses = losses.index_copy(0, idx, self._kind_loss(kind, out[idx], y[idx], pad))
        return losses

    @staticmethod
    def _kind_loss(kind: str, out: torch.Tensor, y: torch.Tensor, pad: torch.Tensor | None) -> torch.Tensor:
        t, n = y.shape
        if kind == "multiclass":
            if pad is not None:
                out = out.masked_fill(pad.to(out.device)[:, None, :], float("-inf"))
            ce = F.cross_entropy(out.reshape(t * n, -1), y.reshape(-1).long(), reduction="none")
            return ce.view(t, n).mean(1)
        if kind == "binary":
            return F.binary_cross_entropy_with_logits(out[..., 0], y, reduction="none").mean(1)
        return ((out[..., 0] - y) ** 2).mean(1)
