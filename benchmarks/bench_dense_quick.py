"""Per-step CPU time of every cell of a balancing preset (default `dense_quick`), and the study's estimated time.

The preset's cells (seed 004's methods, at both levels where they use per-task gradients, and the single-task
runs) each train `total_steps` steps, record the challenge measures every `measures.every` steps (multi-task
cells), evaluate val and test once per epoch and, when `train.checkpoint`, write a checkpoint per epoch. This
script times one step of each cell kind (the fastest of --steps after a warm-up, CPU time of this process with
one torch thread: on a shared machine the steadier number), the challenge recorder, the per-epoch evaluation,
a checkpoint and the rendering, then prints the estimated study time on --cores cores (cells spread over
single-threaded workers). One JSON object per line.

    .venv/bin/python benchmarks/bench_dense_quick.py [--steps 2] [--cores 2] [--preset dense_quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from mtlens.measures.challenge_callback import ChallengeRecorder
from mtlens.methods import create_method
from mtlens.studies import load_study_config
from mtlens.studies.balancing import build_model, cells, study_data
from mtlens.training import Trainer
from mtlens.training.checkpoint import save_checkpoint
from mtlens.training.trainer import OPTIMIZERS


def _cpu(fn: Callable[[], object], steps: int) -> float:
    """Returns the least CPU seconds of `steps` calls after one warm-up."""
    fn()
    best = float("inf")
    for _ in range(steps):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="dense_quick")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = load_study_config(f"balancing/{args.preset}")
    t = time.process_time()
    data = study_data(cfg)
    for split in ("train", "val"):  # render every scene once (the procedural benchmark caches per geometry)
        ds = data.splits[split]
        for start in range(0, len(ds), 64):
            ds.__getitems__(list(range(start, min(start + 64, len(ds)))))
    render_s = time.process_time() - t
    train = data.splits["train"]
    batch = train.__getitems__(list(range(cfg.train.batch_size)))
    base = {"preset": args.preset, "image": list(train.output_size), "batch": cfg.train.batch_size,
            "backbone": f"{cfg.model.backbone} os{cfg.model.output_stride}", "head": cfg.model.head, "threads": 1}
    print(json.dumps({**base, "part": "render", "cpu_s": round(render_s, 2)}), flush=True)
    per_step: dict[str, float] = {}
    plan = cells(cfg.model_copy(update={"seeds": cfg.seeds[:1]}))
    for cell in plan:
        p = cell.params
        key = "single_task" if "single_task" in p else f"{p['method']}/{p['level']}"
        if key in per_step:
            continue
        torch.manual_seed(0)
        model = build_model(cfg, data, p.get("single_task"))
        method = create_method(p["method"], len(model.active_tasks), level=p["level"], **p["options"])
        opt = OPTIMIZERS[cfg.train.optimizer](list(model.parameters()) + list(method.parameters()), cfg.train)
        shared, heads = list(model.shared_parameters()), list(model.task_parameters())

        def step() -> None:
            opt.zero_grad()
            losses, z = model.step_losses(batch)
            method.backward(losses, shared, z, heads)
            opt.step()

        per_step[key] = _cpu(step, args.steps)
        print(json.dumps({**base, "part": "step", "cell": key, "cpu_ms": round(per_step[key] * 1e3, 1)}), flush=True)
    torch.manual_seed(0)
    model = build_model(cfg, data)
    shared = list(model.shared_parameters())
    recorder = ChallengeRecorder(every=1, measures=cfg.measures.which)

    def record() -> None:
        losses, z = model.step_losses(batch)
        recorder.compute(losses, shared, z)

    record_s = _cpu(record, args.steps)
    print(json.dumps({**base, "part": "challenge_recorder", "cpu_ms": round(record_s * 1e3, 1)}), flush=True)
    trainer = Trainer(model, create_method("ew", len(data.tasks)), data.splits,
                      dataclasses.replace(cfg.train, device="cpu", progress=False))
    trainer.train_step(batch)  # the optimiser's state exists, as in a checkpoint of a running cell
    eval_s = _cpu(trainer._evaluate_splits, 1)
    print(json.dumps({**base, "part": "evaluate_val_and_test", "cpu_s": round(eval_s, 2)}), flush=True)
    checkpoint_s = 0.0
    if cfg.train.checkpoint:
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            save_checkpoint(Path(tmp) / "checkpoint.pt", trainer.state_dict())
            checkpoint_s = time.perf_counter() - t
        print(json.dumps({**base, "part": "checkpoint", "wall_s": round(checkpoint_s, 2)}), flush=True)
    steps = cfg.train.total_steps(len(train))
    records = -(-steps // cfg.measures.every)
    epochs = -(-steps // cfg.train.steps_per_epoch(len(train)))
    per_cell = {c.name: steps * per_step["single_task" if "single_task" in c.params else
                                         f"{c.params['method']}/{c.params['level']}"]
                + (0 if "single_task" in c.params else records * record_s) + epochs * (eval_s + checkpoint_s)
                for c in plan}
    total = sum(per_cell.values()) * len(cfg.seeds) + render_s
    print(json.dumps({**base, "part": "estimate", "cells": len(per_cell) * len(cfg.seeds), "steps_per_cell": steps,
                      "cpu_s_total": round(total), "cores": args.cores, "wall_min": round(total / args.cores / 60, 1),
                      "slowest_cell_s": round(max(per_cell.values())), "fastest_cell_s": round(min(per_cell.values()))}))


if __name__ == "__main__":
    main()
