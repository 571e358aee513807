"""Time to label every dSprites factor combination (737,280) with 10 random-MLP tasks.

Peer in the same run: the same networks as ten separate `nn.Sequential` modules applied one task at a time
(what a straightforward implementation does). Prints JSON lines; goal <= 60 s for mtlens on 2 CPU cores.
"""

from __future__ import annotations

import json
import time

import numpy as np
import torch
from torch import nn

from mtlens.data import create_factor_dataset
from mtlens.data.random_mlp import RandomMLPTasks


def naive_modules(tasks: RandomMLPTasks) -> list[nn.Sequential]:
    nets = []
    for t in range(tasks.n_tasks):
        layers: list[nn.Module] = []
        for i, (w, b) in enumerate(tasks.layers):
            lin = nn.Linear(w.shape[1], w.shape[2])
            with torch.no_grad():
                lin.weight.copy_(w[t].T)
                lin.bias.copy_(b[t, 0])
            layers.append(lin)
            if i < len(tasks.layers) - 1:
                layers.append(nn.Tanh())
        nets.append(nn.Sequential(*layers))
    return nets


def main(n_tasks: int = 10, peer_fraction: float = 0.1) -> None:
    ds = create_factor_dataset("dsprites")
    tasks = RandomMLPTasks.for_dataset(ds, n_tasks, seed=0)
    idx = np.arange(len(ds))
    t0 = time.perf_counter()
    values = ds.factor_values(idx)
    t_values = time.perf_counter() - t0
    t0 = time.perf_counter()
    y = tasks.raw(values, device="cpu")
    t_label = time.perf_counter() - t0
    print(json.dumps({"bench": "random_mlp_label_all", "dataset": ds.name, "images": len(ds), "tasks": n_tasks,
                      "factor_values_s": round(t_values, 3), "label_s": round(t_label, 2),
                      "images_per_s": round(len(ds) / t_label), "goal_s": 60, "threads": torch.get_num_threads()}))
    # The peer on a fraction of the grid (it is the slow one), extrapolated.
    m = int(len(ds) * peer_fraction)
    x = torch.as_tensor(values[:m], dtype=torch.float32)
    nets = naive_modules(tasks)
    t0 = time.perf_counter()
    with torch.no_grad():
        peer = torch.cat([torch.cat([net(x[s : s + 4096]) for s in range(0, m, 4096)]) for net in nets], dim=1)
    t_peer = (time.perf_counter() - t0) / peer_fraction
    assert torch.allclose(peer, y[:m], rtol=1e-4, atol=1e-3), "peer and mtlens disagree"
    print(json.dumps({"bench": "random_mlp_label_all_peer", "peer": "per-task nn.Sequential, batches of 4096",
                      "label_s_extrapolated": round(t_peer, 2), "mtlens_speedup": round(t_peer / t_label, 2)}))


if __name__ == "__main__":
    main()
