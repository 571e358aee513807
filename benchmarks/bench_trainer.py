"""Multi-head training throughput on CPU, and the Trainer's epoch time relative to a bare PyTorch loop.

Both do the same work on the same data: the Table-2 conv encoder with 10 Table-3 heads on procedural
dSprites, batch 64, equal weighting, Adam. The bare loop has no store, no progress bar, no checkpoint and no
evaluation; the Trainer runs with its store and checkpoints on (evaluation excluded from the timed epoch
by giving it no val/test rows). Goal: trainer / bare <= 1.05. Prints JSON lines.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from mtlens.data import create_factor_dataset
from mtlens.data.multitask import MultiTaskDataset, factor_task_splits, make_loader, split_indices
from mtlens.data.random_mlp import RandomMLPTasks
from mtlens.methods import create_method
from mtlens.models import create_model
from mtlens.runs import RunStore
from mtlens.training import TrainConfig, Trainer
from mtlens.models.losses import task_losses


def bare_epoch(model, data: MultiTaskDataset, batch_size: int, seed: int) -> float:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    for batch in make_loader(data, batch_size, shuffle=True, seed=seed):
        opt.zero_grad(set_to_none=True)
        preds = model(batch["x"])
        loss = task_losses(model.tasks, preds, batch["targets"], model.active_tasks).sum()
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def main(n_images: int = 3200, batch_size: int = 64, repeats: int = 3) -> None:
    ds = create_factor_dataset("dsprites")
    tasks = RandomMLPTasks.for_dataset(ds, 10, seed=0)
    split = split_indices(len(ds), (1.0, 0.0, 0.0), seed=0, subset=n_images)
    data = factor_task_splits(ds, tasks, split, device="cpu")
    data["test"] = MultiTaskDataset(ds, torch.zeros(0, 10), tasks.tasks, indices=np.zeros(0, dtype=np.int64))
    bare, trainer_times = [], []
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(Path(tmp) / "bench.sqlite")
        torch.manual_seed(0)  # warm-up: the first epoch in a process pays for allocator and kernel set-up
        bare_epoch(create_model("multi_head", tasks.tasks, ds.image_shape), data["train"], batch_size, 0)
        for r in range(repeats):  # alternate, so that drift in machine load hits both alike
            torch.manual_seed(r)
            bare.append(bare_epoch(create_model("multi_head", tasks.tasks, ds.image_shape), data["train"], batch_size, r))
            torch.manual_seed(r)
            run_id = store.create_run("bench", {"r": r}, r)
            store.start(run_id)
            model = create_model("multi_head", tasks.tasks, ds.image_shape)
            t = Trainer(model, create_method("ew", 10), data, TrainConfig(epochs=1, batch_size=batch_size, seed=r, progress=True,
                        device="cpu"), store=store, run_id=run_id, checkpoint_dir=Path(tmp) / run_id)
            t.fit()
            trainer_times.append(t.history[-1]["time/epoch_s"])
    b, tr = float(np.median(bare)), float(np.median(trainer_times))
    print(json.dumps({"bench": "multi_head_train_throughput", "device": "cpu", "heads": 10, "batch": batch_size,
                      "images": n_images, "images_per_s": round(n_images / b, 1), "threads": torch.get_num_threads()}))
    print(json.dumps({"bench": "trainer_vs_bare_loop", "bare_epoch_s": round(b, 3), "trainer_epoch_s": round(tr, 3),
                      "ratio": round(tr / b, 3), "goal_ratio": 1.05, "repeats": repeats}))


if __name__ == "__main__":
    main()
