"""The Gram-based aggregators' `gramian=True` path (J J^T without the [T, P] Jacobian) against the materialised
path: step time and peak memory at T = 10 and T = 40 tasks.

Model: the Table-2 conv encoder (as benchmarks/bench_methods.py) with T linear heads, batch 64 of 64x64x1
inputs, CPU, level "param" (the per-task gradients w.r.t. the encoder's parameters, chained through the
representation). Each (method, T, path) runs in a fresh process, so its peak resident memory (ru_maxrss) is
its own: `peak_mb` is the process peak, `step_mb` its growth over the peak after building the model and one
plain backward (what the method's step adds). Prints one JSON object per run and, per (method, T), the
ratios gramian / materialised.

    .venv/bin/python benchmarks/bench_gramian.py [--steps 3] [--tasks 10,40] [--methods mgda,upgrad]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

METHODS = ["mgda", "imtl_g", "upgrad", "dualproj", "cagrad", "nash_mtl", "aligned_mtl"]


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux


def child(method: str, n_tasks: int, gramian: bool, steps: int) -> dict:
    """Runs `steps` training steps in this process; returns the timing and memory record."""
    import torch
    from torch import nn

    from mtlens.data.tasks import TaskSpec
    from mtlens.methods import create_method
    from mtlens.models import create_model

    torch.manual_seed(0)
    tasks = [TaskSpec(f"t{i}", "regression") for i in range(n_tasks)]
    model = create_model("multi_head", tasks, (1, 64, 64), head_hidden=())
    x, y = torch.rand(64, 1, 64, 64), torch.randn(64, n_tasks)
    shared, heads = list(model.shared_parameters()), list(model.task_parameters())
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def losses_of():  # type: ignore[no-untyped-def]
        z = model.encode(x)
        preds = model.heads_forward(z)
        return torch.stack([((p.reshape(-1) - y[:, i]) ** 2).mean() for i, p in enumerate(preds.values())]), z

    losses, _ = losses_of()
    losses.sum().backward()  # the baseline: what any step needs
    before = _peak_mb()
    m = create_method(method, n_tasks, gramian=gramian)
    times = []
    for _ in range(steps + 1):  # the first is a warm-up
        opt.zero_grad()
        start = time.perf_counter()
        losses, z = losses_of()
        m.backward(losses, shared, z, heads)
        opt.step()
        times.append(time.perf_counter() - start)
    n_params = sum(p.numel() for p in shared)
    return {"method": method, "tasks": n_tasks, "path": "gramian" if gramian else "materialised",
            "ms_per_step": round(min(times[1:]) * 1e3, 1), "peak_mb": round(_peak_mb(), 1),
            "step_mb": round(max(_peak_mb() - before, 0.0), 1), "jacobian_mb": round(n_tasks * n_params * 4 / 2**20, 1),
            "shared_params": n_params, "threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--tasks", default="10,40")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--child", nargs=3, metavar=("METHOD", "TASKS", "GRAMIAN"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        name, n, gram = args.child
        print(json.dumps(child(name, int(n), gram == "1", args.steps)))
        return
    env = dict(os.environ)
    for n in (int(t) for t in args.tasks.split(",")):
        for name in args.methods.split(","):
            rows = {}
            for gram in ("0", "1"):
                out = subprocess.run([sys.executable, __file__, "--steps", str(args.steps), "--child", name, str(n), gram],
                                     capture_output=True, text=True, env=env, check=True)
                rows[gram] = json.loads(out.stdout.strip().splitlines()[-1])
                print(json.dumps(rows[gram]), flush=True)
            print(json.dumps({"method": name, "tasks": n, "time_ratio_gramian": round(
                rows["1"]["ms_per_step"] / rows["0"]["ms_per_step"], 2), "step_mb_ratio_gramian": round(
                rows["1"]["step_mb"] / max(rows["0"]["step_mb"], 1e-9), 3)}), flush=True)


if __name__ == "__main__":
    main()
