"""Learning to Branch, LTB (Guo, Lee & Ulbricht, ICML 2020, §3): a tree of stages learned by Gumbel-softmax.

Stage l of the backbone has K_l nodes (copies of the stage); the last stage has one node per task, which
feeds that task's head. Every node of stage l > 1 reads the output of one parent node of stage l - 1, chosen
from a categorical distribution with learned logits theta_l (one row per node, initially uniform). While
training, each step samples the choices with the straight-through Gumbel-softmax (hard one-hot forward,
softmax((theta + G) / tau) gradient), so the nodes' weights and the logits train together on the training
loss; in evaluation the choice is the argmax (the learned tree). The first stage's nodes all read the input.

Choices where the paper leaves them open or where we follow LibMTL's later LTB (it is not in LibMTL 1.1.5):
K_l = T at every stage (`branches` sets them); tau = tau0 / sqrt(1 + step / tau_steps) with tau0 = 5,
tau_steps = 100 (LibMTL anneals epochs / 20 / sqrt(epoch + 1), per epoch; a model does not know epochs);
an optional warm-up of `warmup_steps` steps that feeds every node the mean of its parents (LibMTL sums them
for 1% of the epochs). The Gumbel noise of step s comes from a generator seeded by (seed, s), and s is a
buffer, so a resumed run draws the same trees. A step is counted by the forward pass that builds a graph in
training mode; a no-grad forward in training mode (FAMO's losses after the step) reuses that step's tree.

Split: every node below the last stage and its logits can reach any task: shared. Task t's own parameters
are its last-stage node, its row of the last logits and its head. The cut (the representation of the
feature level) is the stack of the outputs of the stage before the last, [N, K, ...]. The codes (`encode`)
are the T last-stage nodes' outputs side by side, [N, T d] on the conv encoder (in evaluation: the argmax
tree). No single last shared layer unless K = 1 before the last stage.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from mtlens.errors import MtlensError
from mtlens.models.soft_sharing import Trunk, TrunkOutput, mix_rows
from mtlens.models.stages import Backbone


class LTBTrunk(Trunk):
    """Stages of K_l nodes, each node reading one parent chosen by Gumbel-softmax (argmax in evaluation)."""

    architecture = "ltb"

    def __init__(self, backbone: Backbone, n_tasks: int, branches: Sequence[int] | None = None, tau: float = 5.0,
                 tau_steps: int = 100, warmup_steps: int = 0, seed: int = 0) -> None:
        super().__init__(backbone, n_tasks)
        n = backbone.n_stages
        if n < 2:
            raise MtlensError(f"LTB needs a backbone of at least 2 stages to branch, {backbone.name} has {n}")
        widths = [n_tasks] * (n - 1) if branches is None else [int(k) for k in branches]
        if len(widths) != n - 1 or any(k < 1 for k in widths):
            raise MtlensError(f"branches: give {n - 1} node counts >= 1 (the stages before the last), got {list(widths)}")
        if tau <= 0 or tau_steps < 1 or warmup_steps < 0:
            raise MtlensError(f"LTB needs tau > 0, tau_steps >= 1 and warmup_steps >= 0, got {tau}, {tau_steps}, {warmup_steps}")
        self.widths = [*widths, n_tasks]
        self.tau0, self.tau_steps, self.warmup_steps, self.seed = float(tau), int(tau_steps), int(warmup_steps), int(seed)
        copies = [backbone.stages() for _ in range(max(self.widths))]
        self.nodes = nn.ModuleList([nn.ModuleList([copies[i][l] for i in range(k)]) for l, k in enumerate(self.widths)])
        self.logits = nn.ParameterList([nn.Parameter(torch.zeros(self.widths[l], self.widths[l - 1])) for l in range(1, n - 1)])
        self.task_logits = nn.ParameterList([nn.Parameter(torch.zeros(self.widths[-2])) for _ in range(n_tasks)])
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        if self.widths[-2] > 1:
            self.broken_assumptions["last_shared_layer"] = f"the shared part ends in {self.widths[-2]} parallel branches"

    def tau(self, step: int) -> float:
        """Returns the Gumbel-softmax temperature at `step`."""
        return self.tau0 / math.sqrt(1.0 + step / self.tau_steps)

    def _choices(self) -> list[torch.Tensor]:
        """Returns per stage l > 1 the [K_l, K_{l-1}] mixing weights of the parents for this forward pass."""
        rows = [*self.logits, torch.stack(list(self.task_logits))]
        if not self.training:
            return [F.one_hot(r.argmax(1), r.shape[1]).to(r.dtype) for r in rows]
        step = int(self.step)
        if torch.is_grad_enabled():
            self.step += 1
        else:
            step = max(step - 1, 0)  # the tree of the step just taken
        if step < self.warmup_steps:
            return [torch.full_like(r, 1.0 / r.shape[1]) for r in rows]
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        tau = self.tau(step)
        out = []
        for r in rows:
            u = torch.rand(r.shape, generator=gen, dtype=r.dtype).clamp_(1e-10, 1 - 1e-7).to(r.device)
            soft = torch.softmax((r - torch.log(-torch.log(u))) / tau, dim=1)
            hard = F.one_hot(soft.argmax(1), r.shape[1]).to(soft.dtype)
            out.append(hard - soft.detach() + soft)
        return out

    def forward(self, x: torch.Tensor) -> TrunkOutput:
        """Returns the T last-stage nodes' outputs, the stack of the stage before (the cut) and the codes."""
        choices = self._choices()
        outs = [node(x) for node in self.nodes[0]]
        cut = None
        for l in range(1, len(self.nodes)):
            stacked = torch.stack(outs, dim=1)
            if l == len(self.nodes) - 1:
                cut = stacked
            outs = [node(h) for node, h in zip(self.nodes[l], mix_rows(choices[l - 1], stacked))]
        return TrunkOutput(outs, cut, [torch.stack(outs, dim=1)])

    def shared_parameters(self) -> list[nn.Parameter]:
        return [*self.nodes[:-1].parameters(), *self.logits]

    def task_parameters(self, task: int) -> list[nn.Parameter]:
        return [*self.nodes[-1][task].parameters(), self.task_logits[task]]
