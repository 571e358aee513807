"""Progressive Layered Extraction, PLE (Tang, Liu, Zhao & Gong, RecSys 2020, §4.3, eqs. 4-6).

One extraction level per backbone stage. At level l, Es shared experts (copies of stage l) read the shared
branch's input h_s and Et experts of task t read task t's input h_t (both start as x). Task t's gate,
softmax(W flatten(h_t)), mixes the shared experts and its own into the next h_t; the shared gate,
softmax(W flatten(h_s)), mixes every expert of the level (shared and all tasks') into the next h_s, except at
the last level, which has no shared gate. Task t reads its h_t after the last level. One level is CGC.

Split: task t's gate at the level before the last feeds only its own experts and gate of the last level,
so those three and its head are task t's own parameters; everything else reaches every task (a task's
experts at level l feed the shared gate of level l, whose output feeds every task's next level) and is
shared, with the last level's shared experts. The cut (the representation of the feature level) is [the last
level's shared experts' outputs, and every task's input to the last level], flattened and concatenated
([N, D]); the last level reads its parts from it, so every path from the shared parameters crosses it. The codes (`encode`) are the last level's experts' outputs side by
side (shared first): [N, (Es + T Et) d] on the conv encoder. No single last shared layer.

Defaults Es = Et = 1 are a choice (the paper tunes them per data set). LibMTL 1.1.5's `PLE` differs: it has
no shared branch or shared gate, and applies the shared experts to each task's own input at every level, so
the two cannot be set to compute the same function; one level of ours equals LibMTL's CGC.
"""

from __future__ import annotations

import torch
from torch import nn

from mtlens.errors import MtlensError
from mtlens.models.experts import SoftmaxGate
from mtlens.models.soft_sharing import Trunk, TrunkOutput, mix
from mtlens.models.stages import Backbone


class PLETrunk(Trunk):
    """Extraction levels of shared and per-task experts with task gates and a shared branch."""

    architecture = "ple"

    def __init__(self, backbone: Backbone, n_tasks: int, shared_experts: int = 1, task_experts: int = 1) -> None:
        super().__init__(backbone, n_tasks)
        if shared_experts < 1 or task_experts < 0:
            raise MtlensError(f"PLE needs >= 1 shared expert and >= 0 per task, got {shared_experts} and {task_experts}")
        levels = backbone.n_stages
        copies = [backbone.stages() for _ in range(shared_experts + n_tasks * task_experts)]
        # expert j of level l is stage l of copy j: shared experts first, then task 0's, task 1's, ...
        self.shared = nn.ModuleList([nn.ModuleList([copies[j][l] for j in range(shared_experts)]) for l in range(levels)])
        self.own = nn.ModuleList([
            nn.ModuleList([nn.ModuleList([copies[shared_experts + t * task_experts + j][l] for j in range(task_experts)])
                           for t in range(n_tasks)]) for l in range(levels)])
        self.task_gates = nn.ModuleList([
            nn.ModuleList([SoftmaxGate(backbone.input_numel(l), shared_experts + task_experts) for _ in range(n_tasks)])
            for l in range(levels)])
        self.shared_gates = nn.ModuleList([SoftmaxGate(backbone.input_numel(l), shared_experts + n_tasks * task_experts)
                                           for l in range(levels - 1)])
        self.levels = levels
        if levels > 1 or shared_experts > 1:
            self.broken_assumptions["last_shared_layer"] = "the shared part ends in parallel experts and task branches"

    def _cut(self, shared_out: torch.Tensor, inputs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Returns the cut and the tensors the last level reads from it (its parts, viewed back)."""
        if self.levels == 1:  # the inputs are x itself: no shared parameter behind them
            return shared_out, shared_out, inputs
        parts = [shared_out, *inputs]
        cut = torch.cat([p.flatten(1) for p in parts], dim=1)
        views, start = [], 0
        for p in parts:
            n = p[0].numel()
            views.append(cut[:, start:start + n].view_as(p))
            start += n
        return cut, views[0], views[1:]

    def forward(self, x: torch.Tensor) -> TrunkOutput:
        """Returns each task's input after the last level, the cut, and the last level's experts' outputs."""
        h_shared, h = x, [x] * self.n_tasks
        cut = None
        for l in range(self.levels):
            shared_out = torch.stack([e(h_shared) for e in self.shared[l]], dim=1)
            if l == self.levels - 1:
                cut, shared_out, h = self._cut(shared_out, h)
            own = [torch.stack([e(h[t]) for e in self.own[l][t]], dim=1) if len(self.own[l][t]) else None
                   for t in range(self.n_tasks)]
            mixed = [torch.cat([shared_out, o], dim=1) if o is not None else shared_out for o in own]
            new_h = [mix(self.task_gates[l][t](h[t])[0], mixed[t]) for t in range(self.n_tasks)]
            if l < self.levels - 1:
                every = torch.cat([shared_out, *(o for o in own if o is not None)], dim=1)
                h_shared = mix(self.shared_gates[l](h_shared)[0], every)
            h = new_h
        codes = [shared_out, *(o for o in own if o is not None)]
        return TrunkOutput(h, cut, codes)

    def shared_parameters(self) -> list[nn.Parameter]:
        last = self.levels - 1
        below = [*self.own[:last].parameters(), *self.task_gates[:max(last - 1, 0)].parameters(),
                 *self.shared_gates.parameters()]
        return below + list(self.shared.parameters())

    def task_parameters(self, task: int) -> list[nn.Parameter]:
        gates = self.task_gates[max(self.levels - 2, 0):]
        return [*self.own[-1][task].parameters(), *(p for level in gates for p in level[task].parameters())]
