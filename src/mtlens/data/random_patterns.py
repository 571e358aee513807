"""Seed 003 §3.2: tasks of random patterns, the most disparate tasks possible.

Task t holds n samples (x, y): x uniform on [0, 1]^m, y uniform on {0, 1}, every draw independent. The models
are judged on how well they fit the training samples, so the test split IS the training split.
"""

from __future__ import annotations

import numpy as np
import torch

from mtlens.data.base import Source
from mtlens.data.multitask import MultiTaskDataset
from mtlens.data.registry import TASK_DATA
from mtlens.data.task_groups import TaskGroupData
from mtlens.data.tasks import TaskSpec, check_n_tasks
from mtlens.errors import MtlensError


def build_random_patterns(n: int, width: int = 16, n_tasks: int = 2, seed: int = 0,
                          data_dir: object = None) -> TaskGroupData:
    """Returns n_tasks binary tasks of n uniform inputs in [0, 1]^width with uniform random labels (test = train).

    data_dir is accepted for the dataset registry's uniform call and unused: the tasks are drawn, not read.
    """
    n_tasks = check_n_tasks(n_tasks, "random_patterns")
    for name, value, low in (("n", n, 1), ("width", width, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise MtlensError(f"random_patterns: {name} must be an integer >= {low}, got {value!r}")
    rng = np.random.default_rng([int(seed), 30])
    specs, parts = [], []
    for t in range(n_tasks):
        spec = TaskSpec(f"random{t}", "binary")
        x = torch.from_numpy(rng.random((n, width)).astype(np.float32))
        y = torch.from_numpy(rng.integers(0, 2, size=(n, 1)).astype(np.float32))
        specs.append(spec)
        parts.append(MultiTaskDataset(x, y, (spec,)))
    source = Source("renderer", f"{n_tasks} tasks of {n} uniform [0, 1]^{width} inputs with random binary labels (seed {seed})")
    info = {"n": n, "width": width, "test_is_train": True}
    return TaskGroupData("random_patterns", tuple(specs), tuple(parts), tuple(parts), tuple((width,) for _ in specs), source, info)


TASK_DATA.add("random_patterns", build_random_patterns)
