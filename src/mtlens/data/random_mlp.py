"""Random-MLP regression tasks over the true factors (seed 000, §3.1).

Each task is an MLP with four hidden layers of 300 tanh units and one output; its weights are drawn from
N(0, 1) and its biases at PyTorch's default `nn.Linear` init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)). The raw
outputs have a standard deviation around 10-20, so targets are standardised per task on the training split
by default.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from mtlens.data.base import FactorDataset
from mtlens.data.tasks import TaskSet, TaskSpec, check_n_tasks
from mtlens.device import resolve_device
from mtlens.errors import MtlensError

INPUTS = ("physical", "unit")


class RandomMLPTasks(TaskSet):
    """n random-MLP regression tasks on factor values [N, K]; `fit` sets the per-task standardisation."""

    def __init__(
        self,
        num_inputs: int,
        n_tasks: int = 10,
        seed: int = 0,
        *,
        hidden: Sequence[int] = (300, 300, 300, 300),
        inputs: str = "physical",
        value_ranges: np.ndarray | None = None,
        standardize: bool = True,
    ) -> None:
        n_tasks = check_n_tasks(n_tasks, "random-MLP tasks")
        if num_inputs < 1:
            raise MtlensError(f"random-MLP tasks: need at least one input factor, got {num_inputs}")
        if inputs not in INPUTS:
            raise MtlensError(f"random-MLP tasks: unknown inputs {inputs!r}; choose one of {', '.join(INPUTS)}")
        if inputs == "unit" and value_ranges is None:
            raise MtlensError("random-MLP tasks: inputs='unit' needs value_ranges [K, 2] (use for_dataset)")
        self.num_inputs = num_inputs
        self.seed = int(seed)
        self.hidden = tuple(int(h) for h in hidden)
        self.inputs = inputs
        self.value_ranges = None if value_ranges is None else np.asarray(value_ranges, dtype=np.float64)
        self.standardize = standardize
        self.tasks = tuple(TaskSpec(f"task_{i}", "regression") for i in range(n_tasks))
        self.layers = self._draw_weights(n_tasks)
        self.mean: torch.Tensor | None = None
        self.std: torch.Tensor | None = None

    @classmethod
    def for_dataset(cls, dataset: FactorDataset, n_tasks: int = 10, seed: int = 0, **kwargs: object) -> RandomMLPTasks:
        """Returns tasks whose inputs are `dataset`'s factor values (all factors, as in the official files)."""
        ranges = np.array([[np.min(t), np.max(t)] for t in dataset.factor_value_table], dtype=np.float64)
        return cls(dataset.num_factors, n_tasks, seed, value_ranges=ranges, **kwargs)  # type: ignore[arg-type]

    def _draw_weights(self, n_tasks: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        # One generator per task from a SeedSequence, so task i is the same whatever the number of tasks.
        widths = (self.num_inputs, *self.hidden, 1)
        per_task = []
        for child in np.random.SeedSequence(self.seed).spawn(n_tasks):
            g = torch.Generator().manual_seed(int(child.generate_state(1, dtype=np.uint64)[0] >> 1))
            layers = []
            for fan_in, fan_out in zip(widths[:-1], widths[1:]):
                w = torch.randn(fan_in, fan_out, generator=g)
                bound = 1.0 / math.sqrt(fan_in)
                b = (torch.rand(fan_out, generator=g) * 2 - 1) * bound
                layers.append((w, b))
            per_task.append(layers)
        # Stack across tasks: weight [T, in, out], bias [T, 1, out], for one batched matmul per layer.
        return [
            (torch.stack([t[i][0] for t in per_task]), torch.stack([t[i][1] for t in per_task]).unsqueeze(1))
            for i in range(len(widths) - 1)
        ]

    def _prepare(self, z: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
        x = torch.as_tensor(np.asarray(z, dtype=np.float32) if not isinstance(z, torch.Tensor) else z)
        x = x.to(device=device, dtype=torch.float32)
        if x.ndim != 2 or x.shape[1] != self.num_inputs:
            raise MtlensError(f"random-MLP tasks: factor values must be [N, {self.num_inputs}], got {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise MtlensError("random-MLP tasks: factor values contain NaN or inf")
        if self.inputs == "unit":
            lo = torch.as_tensor(self.value_ranges[:, 0], dtype=torch.float32, device=device)  # type: ignore[index]
            span = torch.as_tensor(np.ptp(self.value_ranges, axis=1), dtype=torch.float32, device=device)
            x = torch.where(span > 0, (x - lo) / torch.where(span > 0, span, 1.0), torch.zeros_like(x))
        return x

    @torch.no_grad()
    def raw(self, z: np.ndarray | torch.Tensor, *, batch_size: int = 4096, device: str | torch.device = "auto") -> torch.Tensor:
        """Returns the unstandardised task outputs [N, T] (float32, CPU) for factor values z [N, K]."""
        dev = resolve_device(device)
        # One network at a time with contiguous [in, out] weights: a plain addmm per layer measured ~2x faster
        # on CPU than one batched matmul over the T stacked networks (benchmarks/bench_tasks.py).
        nets = [[(w[t].contiguous().to(dev), b[t, 0].contiguous().to(dev)) for w, b in self.layers]
                for t in range(self.n_tasks)]
        x_all = self._prepare(z, dev)
        out = torch.empty(x_all.shape[0], self.n_tasks, dtype=torch.float32, device=dev)
        last = len(self.layers) - 1
        for start in range(0, x_all.shape[0], batch_size):
            xb = x_all[start : start + batch_size]
            for t, layers in enumerate(nets):
                h = xb
                for i, (w, b) in enumerate(layers):
                    h = torch.addmm(b, h, w)
                    if i < last:
                        h = torch.tanh_(h)
                out[start : start + batch_size, t] = h[:, 0]
        return out.cpu()

    def fit(self, z_train: np.ndarray | torch.Tensor, **kwargs: object) -> RandomMLPTasks:
        """Sets the per-task mean and std from training factor values; returns self."""
        y = self.raw(z_train, **kwargs)  # type: ignore[arg-type]
        if y.shape[0] < 2:
            raise MtlensError("random-MLP tasks: standardisation needs at least 2 training points")
        self.mean, self.std = y.mean(0), y.std(0).clamp_min(1e-12)
        return self

    def standardize_targets(self, y: torch.Tensor) -> torch.Tensor:
        """Returns raw outputs standardised with the fitted training statistics (or as is when off)."""
        if not self.standardize:
            return y
        if self.mean is None or self.std is None:
            raise MtlensError("random-MLP tasks: call fit(training factor values) before standardised targets")
        return (y - self.mean) / self.std

    def __call__(self, z: np.ndarray | torch.Tensor, **kwargs: object) -> torch.Tensor:
        """Returns the targets [N, T]: raw outputs, standardised on the training split unless switched off."""
        return self.standardize_targets(self.raw(z, **kwargs))  # type: ignore[arg-type]

    def state_dict(self) -> dict[str, object]:
        """Returns what rebuilds these tasks exactly (the weights follow from the seed)."""
        return {
            "num_inputs": self.num_inputs, "n_tasks": self.n_tasks, "seed": self.seed, "hidden": list(self.hidden),
            "inputs": self.inputs, "standardize": self.standardize,
            "value_ranges": None if self.value_ranges is None else self.value_ranges.tolist(),
            "mean": None if self.mean is None else self.mean.tolist(),
            "std": None if self.std is None else self.std.tolist(),
        }
