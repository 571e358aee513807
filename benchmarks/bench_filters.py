"""Information filters (seed 001): step time with and without filters, and the batched forward vs a task loop.

1. `filters_vs_no_filters`: one training step (`Trainer.train_step`: step_losses, equal weighting's
   backward, Adam) of the filter model (learned noise, KL, beta = 0.1) vs the same model without filters
   (noise="none": W_j = Z, no KL), and vs mtlens's multi-head model with the same encoder and linear heads.
   Table II model (784-32-32-4), 4 Grouped-MNIST-like tasks of 4 classes, batch 128 (the authors') and 512.
   Goal: filters / no filters <= 1.15.
2. `batched_vs_task_loop`: the same step at T = 4, 16, 64 tasks for the filter model (all T filtered
   representations, heads and losses batched) and for a per-task loop written here (per task: its noise
   draw, its nn.Linear head, its cross-entropy and its KL, then the sum).

Times are this process's CPU time (time.process_time) on one thread, so that other processes on a shared
machine inflate them less than wall time would; blocks of steps alternate between the variants so that
drifting load hits all alike, and each line reports the median over blocks. Prints JSON lines. Run: PYTHONPATH=src python benchmarks/bench_filters.py
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mtlens.data.multitask import MultiTaskDataset
from mtlens.data.tasks import TaskSpec
from mtlens.methods import create_method
from mtlens.models import create_model
from mtlens.models import filters as _filters  # noqa: F401  (registers "filters")
from mtlens.models.filter_encoders import filter_encoder
from mtlens.training import TrainConfig, Trainer


class LoopFilters(nn.Module):
    """The filter model written task by task: what the batched model replaces."""

    def __init__(self, n_tasks: int, classes: int, d: int = 4) -> None:
        super().__init__()
        self.encoder = filter_encoder((1, 28, 28), d)
        self.noise = nn.ParameterList([nn.Parameter(0.01 * torch.randn(d)) for _ in range(n_tasks)])
        self.prior = nn.ParameterList([nn.Parameter(0.01 * torch.randn(d)) for _ in range(n_tasks)])
        self.heads = nn.ModuleList([nn.Linear(d, classes) for _ in range(n_tasks)])
        self.beta = 0.1

    def step_losses(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.encoder(batch["x"])
        losses = []
        for j, head in enumerate(self.heads):
            s, xi = self.noise[j], self.prior[j]
            w = z + torch.exp(0.5 * s) * torch.randn_like(z)
            ce = F.cross_entropy(head(w), batch["targets"][:, j].long())
            kl = 0.5 * (xi - s + (s.exp() + z.pow(2)) * torch.exp(-xi) - 1).sum(1).mean()
            losses.append(ce + self.beta * kl)
        return torch.stack(losses), z


def _stepper(model: nn.Module, n_tasks: int, batch: dict[str, torch.Tensor]) -> Callable[[], None]:
    method = create_method("ew", n_tasks)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        losses, z = model.step_losses(batch)
        method.backward(losses, [], z, list(model.parameters()))
        opt.step()

    return step


def _trainer_step(model: nn.Module, tasks: list[TaskSpec], batch: dict[str, torch.Tensor]) -> Callable[[], None]:
    data = MultiTaskDataset(batch["x"], batch["targets"], tasks)
    trainer = Trainer(model, create_method("ew", len(tasks)), {"train": data, "test": data},
                      TrainConfig(device="cpu", progress=False, checkpoint=False))
    return lambda: trainer.train_step(batch)


def _time(steppers: dict[str, Callable[[], None]], steps: int, blocks: int) -> dict[str, float]:
    for step in steppers.values():  # warm-up
        for _ in range(10):
            step()
    times: dict[str, list[float]] = {k: [] for k in steppers}
    for _ in range(blocks):
        for name, step in steppers.items():
            start = time.process_time()
            for _ in range(steps):
                step()
            times[name].append((time.process_time() - start) / steps)
    return {k: float(np.median(v)) for k, v in times.items()}


def _batch(n_tasks: int, classes: int, batch: int = 128) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {"x": torch.rand(batch, 1, 28, 28, generator=g),
            "targets": torch.randint(0, classes, (batch, n_tasks), generator=g).float()}


def main(steps: int = 40, blocks: int = 15) -> None:
    torch.set_num_threads(1)
    classes = 4
    tasks = [TaskSpec(f"t{j}", "multiclass", classes) for j in range(4)]
    for size in (128, 512):
        batch = _batch(4, classes, size)
        torch.manual_seed(0)
        models = {
            "filters": create_model("filters", tasks, (1, 28, 28), beta=0.1),
            "no_filters": create_model("filters", tasks, (1, 28, 28), noise="none"),
            "multi_head_linear": create_model("multi_head", tasks, (1, 28, 28), latent_dim=4, head_hidden=(),
                                              mlp_hidden=(32, 32)),
        }
        t = _time({k: _trainer_step(m, tasks, batch) for k, m in models.items()}, steps, blocks)
        print(json.dumps({"bench": "filters_vs_no_filters", "tasks": 4, "batch": size, "threads": 1,
                          **{f"{k}_ms": round(v * 1e3, 3) for k, v in t.items()},
                          "ratio_filters_over_no_filters": round(t["filters"] / t["no_filters"], 3),
                          "ratio_filters_over_multi_head": round(t["filters"] / t["multi_head_linear"], 3),
                          "goal_ratio": 1.15}))
    for n_tasks in (4, 16, 64):
        tasks = [TaskSpec(f"t{j}", "multiclass", classes) for j in range(n_tasks)]
        batch = _batch(n_tasks, classes)
        torch.manual_seed(0)
        batched = create_model("filters", tasks, (1, 28, 28), beta=0.1)
        loop = LoopFilters(n_tasks, classes)
        t = _time({"batched": _stepper(batched, n_tasks, batch), "loop": _stepper(loop, n_tasks, batch)}, 20, 7)
        print(json.dumps({"bench": "batched_vs_task_loop", "tasks": n_tasks, "batch": 128,
                          "batched_ms": round(t["batched"] * 1e3, 3), "loop_ms": round(t["loop"] * 1e3, 3),
                          "speedup": round(t["loop"] / t["batched"], 2)}))


if __name__ == "__main__":
    main()
