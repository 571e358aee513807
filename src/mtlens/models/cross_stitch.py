"""Cross-stitch networks (Misra, Shrivastava, Gupta & Hebert, CVPR 2016, §3).

One column (a copy of the backbone) per task; after every stage but the last, a cross-stitch unit replaces
each column's output by a learned linear combination of all columns' outputs: x_t <- sum_s alpha_ts x_s (one
scalar per pair of tasks and stage, as the paper's units). Initialised as the paper's (alpha_S, alpha_D) =
(0.9, 0.1) for two tasks, generalised to T tasks as rows summing to 1: alpha_tt = 0.9 and alpha_ts =
0.1 / (T - 1).

Split: the row t of the last unit and the last stage of column t reach only task t's loss, so they are task
t's own parameters (with its head); every other column stage and unit is shared. The cut (the representation
of the feature level) is the stack of every column's output before the last unit, [N, T, ...]: every path
from the shared parameters to the losses crosses it. The codes (`encode`) are the T columns' final outputs,
side by side: [N, T * d] on the conv encoder. No single last shared layer: the shared part ends in T columns.

LibMTL 1.1.5's `Cross_stitch` (ResNet only) keeps one weight per (stage, source column), shared by every
target column, initialised to 1 (each column receives the plain sum of all columns), with no unit after the
last stage, and counts the whole encoder as shared. With every row of our unit l set to its vector l, the two
compute the same features (tests/models/test_soft_sharing_libmtl.py).
"""

from __future__ import annotations

import torch
from torch import nn

from mtlens.errors import MtlensError
from mtlens.models.soft_sharing import Trunk, TrunkOutput, mix_rows
from mtlens.models.stages import Backbone


def stitch_rows(n_tasks: int, alpha_self: float) -> list[torch.Tensor]:
    """Returns the initial rows of one unit: alpha_self on the diagonal, the rest of 1 spread over the others."""
    if n_tasks == 1:
        return [torch.ones(1)]
    other = (1.0 - alpha_self) / (n_tasks - 1)
    return [torch.full((n_tasks,), other).index_fill_(0, torch.tensor([t]), alpha_self) for t in range(n_tasks)]


class CrossStitchTrunk(Trunk):
    """T columns joined by cross-stitch units after every stage but the last."""

    architecture = "cross_stitch"

    def __init__(self, backbone: Backbone, n_tasks: int, alpha_self: float = 0.9) -> None:
        super().__init__(backbone, n_tasks)
        if backbone.n_stages < 2:
            raise MtlensError(f"cross-stitch needs a backbone of at least 2 stages to stitch, {backbone.name} has {backbone.n_stages}")
        if not 0.0 <= alpha_self <= 1.0:
            raise MtlensError(f"alpha_self (the initial weight of a column on itself) must be in [0, 1], got {alpha_self}")
        self.columns = nn.ModuleList([backbone.stages() for _ in range(n_tasks)])
        self.units = nn.ModuleList([nn.ParameterList([nn.Parameter(r) for r in stitch_rows(n_tasks, alpha_self)])
                                    for _ in range(backbone.n_stages - 1)])
        if n_tasks > 1:
            self.broken_assumptions["last_shared_layer"] = f"the shared part ends in {n_tasks} parallel columns"

    def forward(self, x: torch.Tensor) -> TrunkOutput:
        """Returns each column's final output, the stack before the last unit (the cut) and the codes."""
        last = len(self.units)
        h = [x] * self.n_tasks
        cut = None
        for stage, unit in enumerate(self.units):
            stacked = torch.stack([self.columns[t][stage](h[t]) for t in range(self.n_tasks)], dim=1)
            if stage == last - 1:
                cut = stacked
            h = mix_rows(torch.stack(list(unit)), stacked)
        features = [self.columns[t][last](h[t]) for t in range(self.n_tasks)]
        return TrunkOutput(features, cut, [torch.stack(features, dim=1)])

    def shared_parameters(self) -> list[nn.Parameter]:
        last = len(self.units)
        params = [p for col in self.columns for stage in col[:last] for p in stage.parameters()]
        return params + [p for unit in self.units[:-1] for p in unit]

    def task_parameters(self, task: int) -> list[nn.Parameter]:
        return [*self.columns[task][len(self.units)].parameters(), self.units[-1][task]]
