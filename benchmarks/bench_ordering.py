"""Soft-ordering training step (seed 003 eq. 7) at D = 4, T = 10: stacked layers vs a per-task, per-layer loop.

Three implementations of one training step (forward, the sum of the task losses, backward, Adam), same sizes:
- `loop`: the straightforward model written here: a module per encoder, core layer and decoder; for each task,
  at each depth, every core layer on the task's activations, mixed with the task's softmaxed scales;
- `soft`: mtlens' LayerOrderingModel (ordering="soft"): at each depth all D layers on all tasks at once;
- `parallel`: mtlens' parallel ordering (one layer per depth: D times less core work than soft).
Settings: "tabular" is §4.2's UCI set (the ten tables' widths and class counts of Fig. 5a, learned 32-unit
encoders, 32-unit core, softmax decoders, dropout 0.8, batch 64 per task); "dense" is §4.1's digit pairs (784
inputs, frozen 64-unit encoders, 64-unit core, one logit, batch 64 per task, dropout 0.5); "conv" is §4.3's
Omniglot (105x105 images zero-padded to 53 channels, 53-filter 3x3 conv + ReLU + 2x2 max-pool core, 20 classes,
one image per task per step). Goal: loop / soft >= 3 on CPU. Prints JSON lines.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mtlens.data.tasks import TaskSpec
from mtlens.models.ordering import LayerOrderingModel


class LoopSoftOrdering(nn.Module):
    """Eq. 7 written plainly: Python loops over tasks, depths and layers."""

    def __init__(self, in_dims: list[int], depth: int, width: int, core: str, n_outs: list[int], dropout: float,
                 frozen: bool) -> None:
        super().__init__()
        n_tasks = len(in_dims)
        self.core_kind, self.depth, self.width = core, depth, width
        if core == "dense":
            self.enc = nn.ModuleList(nn.Linear(d, width) for d in in_dims)
            self.enc.requires_grad_(not frozen)  # §4.1: frozen random encoders; §4.2: learned
            self.layers = nn.ModuleList(nn.Linear(width, width) for _ in range(depth))
            flat = width
        else:
            self.enc = None  # §4.3: identity encoders, channels zero-padded to the core width
            self.layers = nn.ModuleList(nn.Conv2d(width, width, 3, padding=1) for _ in range(depth))
            side = 105
            for _ in range(depth):
                side //= 2
            flat = width * side * side
        self.scales = nn.Parameter(torch.zeros(n_tasks, depth, depth))
        self.dec = nn.ModuleList(nn.Linear(flat, n_out) for n_out in n_outs)
        self.drop = nn.Dropout(dropout)

    def layer(self, j: int, h: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.layers[j](h))
        return F.max_pool2d(out, 2) if self.core_kind == "conv" else out

    def forward(self, xs: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for t, x in enumerate(xs):
            if self.enc is not None:
                h = F.relu(self.enc[t](x.flatten(1)))
            else:
                h = F.pad(x, (0, 0, 0, 0, 0, self.width - x.shape[1]))
            for k in range(self.depth):
                s = torch.softmax(self.scales[t, :, k], dim=0)
                h = self.drop(sum(s[j] * self.layer(j, h) for j in range(self.depth)))
            outs.append(self.dec[t](h.flatten(1)))
        return outs


UCI = [(14, 2), (30, 2), (7, 8), (24, 2), (13, 5), (19, 2), (4, 3), (8, 2), (13, 3), (8, 10)]  # seed 003 Fig. 5a


def _setting(setting: str) -> dict[str, object]:
    """Returns the tasks, per-task input shapes and model options of a benchmark setting."""
    if setting == "tabular":
        tasks = [TaskSpec(f"t{t}", "multiclass", c) if c > 2 else TaskSpec(f"t{t}", "binary") for t, (_, c) in enumerate(UCI)]
        return {"tasks": tasks, "shapes": [(d,) for d, _ in UCI], "batch": 64,
                "options": dict(width=32, dropout=0.8, core="dense", encoder="learned")}
    if setting == "dense":
        return {"tasks": [TaskSpec(f"t{t}", "binary") for t in range(10)], "shapes": [(1, 28, 28)] * 10, "batch": 64,
                "options": dict(width=64, dropout=0.5, core="dense", encoder="frozen")}
    # App. A.3: "each training batch containing k random samples, one from each task"
    return {"tasks": [TaskSpec(f"t{t}", "multiclass", 20) for t in range(10)], "shapes": [(1, 105, 105)] * 10, "batch": 1,
            "options": dict(width=53, dropout=0.5, core="conv", encoder="identity")}


def _batch(tasks: list[TaskSpec], shapes: list[tuple[int, ...]], batch: int) -> tuple[object, object]:
    """Returns a training batch as RandomTaskBatches gives it: stacked [T, B, ...] for one input shape, else lists."""
    g = torch.Generator().manual_seed(0)
    xs = [torch.rand(batch, *shape, generator=g) for shape in shapes]
    ys = [torch.randint(0, t.num_classes or 2, (batch,), generator=g).float() for t in tasks]
    if len(set(shapes)) == 1:
        return torch.stack(xs), torch.stack(ys)
    return xs, ys


def _time_steps(step, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def bench(setting: str, depth: int = 4, steps: int = 30, repeats: int = 3) -> dict[str, object]:
    """Returns the median milliseconds per training step of loop / soft / parallel and their ratios."""
    spec = _setting(setting)
    tasks, shapes, options = spec["tasks"], spec["shapes"], spec["options"]
    xs, ys = _batch(tasks, shapes, spec["batch"])
    batch_dict = {"x": xs, "targets": ys}

    def ours(ordering: str):
        model = LayerOrderingModel(tasks, shapes, ordering=ordering, depth=depth, **options).train()
        opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            losses, _ = model.step_losses(batch_dict)
            losses.sum().backward()
            opt.step()
        return step

    in_dims = [int(np.prod(s)) for s in shapes]
    loop_model = LoopSoftOrdering(in_dims, depth, options["width"], options["core"], [t.output_dim for t in tasks],
                                  options["dropout"], frozen=options["encoder"] == "frozen").train()
    loop_opt = torch.optim.Adam([p for p in loop_model.parameters() if p.requires_grad], lr=1e-3)

    def loop_step() -> None:
        loop_opt.zero_grad(set_to_none=True)
        outs = loop_model(xs)
        loss = sum(F.binary_cross_entropy_with_logits(o[:, 0], y) if t.kind == "binary" else F.cross_entropy(o, y.long())
                   for t, o, y in zip(tasks, outs, ys))
        loss.backward()
        loop_opt.step()

    runs = {"loop": loop_step, "soft": ours("soft"), "parallel": ours("parallel")}
    for step in runs.values():  # warm-up: allocator and kernel selection
        _time_steps(step, 3)
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeats):  # interleaved, so drift in machine load hits all alike
        for name, step in runs.items():
            times[name].append(_time_steps(step, steps))
    med = {k: float(np.median(v)) for k, v in times.items()}
    return {"bench": "soft_ordering_step", "setting": setting, "device": "cpu", "threads": torch.get_num_threads(),
            "tasks": len(tasks), "depth": depth, "batch_per_task": spec["batch"], "width": options["width"],
            "ms_per_step": {k: round(1000 * v, 2) for k, v in med.items()},
            "loop_over_soft": round(med["loop"] / med["soft"], 2), "soft_over_parallel": round(med["soft"] / med["parallel"], 2),
            "goal_loop_over_soft": 3.0, "steps": steps, "repeats": repeats}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", default="tabular,dense,conv")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per repeat (conv: a tenth)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    for setting in args.settings.split(","):
        steps = max(1, args.steps // 10) if setting == "conv" else args.steps  # a conv step is ~50x a dense one
        print(json.dumps(bench(setting, steps=steps, repeats=args.repeats)), flush=True)


if __name__ == "__main__":
    main()
