"""Mixtures of experts: MMoE, CGC and DSelect-k, each expert a whole copy of the backbone.

- MMoE (Ma, Zhao, Yi, Chen, Hong & Chi, KDD 2018, eq. 5): E shared experts f_e; task t reads
  sum_e g_t(x)_e f_e(x) with the gate g_t(x) = softmax(W_t x), linear in the (flattened) input.
- CGC (Tang, Liu, Zhao & Gong, RecSys 2020, §4.2, "customized gate control", PLE's single level): Es shared
  experts and Et experts of each task's own; task t's gate mixes the shared experts and its own.
- DSelect-k (Hazimeh, Zhao, Chowdhery, Sathiamoorthy, Chen, Mazumder, Hong & Chi, NeurIPS 2021, §3, the
  per-example gate): k single-expert selectors per task, selector i built from m = ceil(log2 E) smooth steps
  S(z_ib) of a linear function of x, r_i(e) = prod_b [S(z_ib) if bit b of e else 1 - S(z_ib)], combined by
  softmax(W x) over the selectors. S(t) = 0 below -gamma/2, 1 above gamma/2, -2 t^3 / gamma^3 + 3 t / (2 gamma)
  + 1/2 between; gamma = 1, k = 2 (LibMTL's defaults); z's weights start uniform in +-gamma/100 and the
  selector logits' in +-0.05 (the official implementation's initialisers). Its regularisers, added to task
  t's loss (they touch only its gate): an entropy term entropy_reg * sum_{i,e} -r log(r + 1e-6), and, when E
  is not a power of 2, sum_i (1 / sum_e r_i(e) - 1), which keeps the selectors on real experts. Both are
  averaged over the batch where the official code sums them (our losses are batch means); the -1 only makes
  the second term 0 at its optimum (same gradient). entropy_reg = 1e-6 is the official schedule's default.

Split: the shared experts are shared; the gates, a task's own experts (CGC) and its head are that task's. The
cut (the representation of the feature level) is the stack of the shared experts' outputs, [N, Es, ...]:
gates read the input directly, so every path from the shared parameters crosses it. The codes (`encode`)
are every expert's output side by side (shared first, then each task's own): [N, (Es + T Et) d] on the conv
encoder; the per-task mixtures are linear in them. With more than one shared expert there is no single last
shared layer.

LibMTL 1.1.5 computes MMoE, CGC and DSelect-k's mixtures as here (equal outputs on copied weights:
tests/models/test_soft_sharing_libmtl.py); its DSelect-k adds its regularisers by a backward inside `forward`,
for the selectors of the last task only, summed over the batch, and always with the entropy weight 1e-6.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from mtlens.errors import MtlensError
from mtlens.models.soft_sharing import Trunk, TrunkOutput, mix
from mtlens.models.stages import Backbone


class SoftmaxGate(nn.Module):
    """g(x) = softmax(W flatten(x) + b) over n experts (MMoE's and CGC's gate)."""

    def __init__(self, in_dim: int, n_experts: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_dim, n_experts)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Returns (the [N, n] expert weights, no regulariser)."""
        return torch.softmax(self.linear(x.flatten(1)), dim=-1), None


def smooth_step(t: torch.Tensor, gamma: float) -> torch.Tensor:
    """Returns DSelect-k's smooth step (a cubic between -gamma/2 and gamma/2, 0 below, 1 above)."""
    cubic = -2.0 / gamma**3 * t**3 + 3.0 / (2.0 * gamma) * t + 0.5
    return torch.where(t <= -gamma / 2, torch.zeros_like(t), torch.where(t >= gamma / 2, torch.ones_like(t), cubic))


class DSelectGate(nn.Module):
    """DSelect-k's per-example gate: k binary-encoded single-expert selectors and their softmax weights."""

    def __init__(self, in_dim: int, n_experts: int, k: int = 2, gamma: float = 1.0, entropy_reg: float = 1e-6) -> None:
        super().__init__()
        if n_experts < 2:
            raise MtlensError(f"DSelect-k selects among at least 2 experts, got num_experts={n_experts}")
        if not 1 <= k:
            raise MtlensError(f"DSelect-k's k (the number of selectors) must be >= 1, got {k}")
        if gamma <= 0 or entropy_reg < 0:
            raise MtlensError(f"DSelect-k needs gamma > 0 and entropy_reg >= 0, got gamma={gamma}, entropy_reg={entropy_reg}")
        self.k, self.gamma, self.entropy_reg = k, float(gamma), float(entropy_reg)
        self.bits = math.ceil(math.log2(n_experts))
        self.power_of_2 = n_experts == 2**self.bits
        self.z_logits = nn.Linear(in_dim, k * self.bits)
        self.w_logits = nn.Linear(in_dim, k)
        with torch.no_grad():
            for p in self.z_logits.parameters():
                p.uniform_(-self.gamma / 100, self.gamma / 100)
            for p in self.w_logits.parameters():
                p.uniform_(-0.05, 0.05)
        codes = np.array([list(np.binary_repr(e, width=self.bits)) for e in range(n_experts)]) == "1"
        self.register_buffer("codes", torch.from_numpy(codes), persistent=False)  # [E, m], most significant bit first

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (the [N, E] expert weights, the gate's regulariser)."""
        x = x.flatten(1)
        s = smooth_step(self.z_logits(x).view(-1, self.k, 1, self.bits), self.gamma)
        selectors = torch.where(self.codes, s, 1 - s).prod(dim=-1)  # [N, k, E]
        weights = torch.einsum("nk,nke->ne", torch.softmax(self.w_logits(x), dim=1), selectors)
        penalty = self.entropy_reg * -(selectors * torch.log(selectors + 1e-6)).sum(dim=(1, 2)).mean()
        if not self.power_of_2:
            penalty = penalty + (1.0 / selectors.sum(dim=-1) - 1.0).sum(dim=1).mean()
        return weights, penalty


class ExpertsTrunk(Trunk):
    """Shared experts, optional experts per task, and one gate per task reading the input."""

    architecture = "mmoe"

    def __init__(self, backbone: Backbone, n_tasks: int, shared_experts: int, task_experts: int = 0,
                 gate: str = "softmax", k: int = 2, gamma: float = 1.0, entropy_reg: float = 1e-6) -> None:
        super().__init__(backbone, n_tasks)
        if shared_experts < 1 or task_experts < 0:
            raise MtlensError(f"a mixture of experts needs >= 1 shared expert and >= 0 per task, got {shared_experts} and {task_experts}")
        self.shared = nn.ModuleList([nn.Sequential(*backbone.stages()) for _ in range(shared_experts)])
        self.own = nn.ModuleList([nn.ModuleList([nn.Sequential(*backbone.stages()) for _ in range(task_experts)])
                                  for _ in range(n_tasks)])
        n_in, n_mixed = backbone.input_numel(0), shared_experts + task_experts
        self.gates = nn.ModuleList([DSelectGate(n_in, n_mixed, k, gamma, entropy_reg) if gate == "dselect_k"
                                    else SoftmaxGate(n_in, n_mixed) for _ in range(n_tasks)])
        if shared_experts > 1:
            self.broken_assumptions["last_shared_layer"] = f"the shared part ends in {shared_experts} parallel experts"

    def forward(self, x: torch.Tensor) -> TrunkOutput:
        """Returns each task's mixture, the stacked shared experts' outputs (the cut) and every expert's output."""
        cut = torch.stack([e(x) for e in self.shared], dim=1)
        own = [torch.stack([e(x) for e in experts], dim=1) if len(experts) else None for experts in self.own]
        features, penalties = [], []
        for t, gate in enumerate(self.gates):
            weights, penalty = gate(x)
            experts = cut if own[t] is None else torch.cat([cut, own[t]], dim=1)
            features.append(mix(weights, experts))
            penalties.append(penalty)
        codes = [cut, *(o for o in own if o is not None)]
        reg = torch.stack(penalties) if penalties[0] is not None else None
        return TrunkOutput(features, cut, codes, reg)

    def shared_parameters(self) -> list[nn.Parameter]:
        return list(self.shared.parameters())

    def task_parameters(self, task: int) -> list[nn.Parameter]:
        return [*self.own[task].parameters(), *self.gates[task].parameters()]


class MMoETrunk(ExpertsTrunk):
    """MMoE: E shared experts and a softmax gate per task."""

    architecture = "mmoe"

    def __init__(self, backbone: Backbone, n_tasks: int, num_experts: int = 4) -> None:
        super().__init__(backbone, n_tasks, num_experts)


class CGCTrunk(ExpertsTrunk):
    """CGC: Es shared experts, Et experts per task, a softmax gate per task over the shared and its own."""

    architecture = "cgc"

    def __init__(self, backbone: Backbone, n_tasks: int, shared_experts: int = 1, task_experts: int = 1) -> None:
        super().__init__(backbone, n_tasks, shared_experts, task_experts)


class DSelectKTrunk(ExpertsTrunk):
    """DSelect-k: E shared experts, a per-example DSelect-k gate per task."""

    architecture = "dselect_k"

    def __init__(self, backbone: Backbone, n_tasks: int, num_experts: int = 4, k: int = 2, gamma: float = 1.0,
                 entropy_reg: float = 1e-6) -> None:
        super().__init__(backbone, n_tasks, num_experts, gate="dselect_k", k=k, gamma=gamma, entropy_reg=entropy_reg)
