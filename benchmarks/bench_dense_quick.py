"""Per-step CPU time of every (method, level) of the balancing study on the `dense_quick` setting, and the estimate.

The balancing study runs the setting's methods (seed 004's), at both levels where they use per-task gradients
(else at parameter level), records the challenge measures every `measures_every` steps and evaluates val and test
once per epoch. This script times one step of each (the fastest of --steps after a warm-up, CPU time of
this process with one torch thread: on a shared machine the steadier number), the challenge recorder, the
per-epoch evaluation and the rendering, then prints the estimated study time on --cores cores (runs spread over
single-threaded workers). One JSON object per line.

    .venv/bin/python benchmarks/bench_dense_quick.py [--steps 2] [--cores 2] [--setting dense_quick]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import torch

from mtlens.measures.challenge_callback import ChallengeRecorder
from mtlens.methods import METHODS, available_methods, create_method
from mtlens.models.dense_settings import build_dense_data, build_dense_model, dense_setting
from mtlens.training import TrainConfig, Trainer


def _cpu(fn: Callable[[], object], steps: int) -> float:
    """Returns the least CPU seconds of `steps` calls after one warm-up."""
    fn()
    best = float("inf")
    for _ in range(steps):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best


def plan(methods: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """Returns the (method, level) runs of the balancing study with `methods` (default: every registered one)."""
    out = []
    for name in methods or available_methods():
        cls = METHODS.get(name)
        out += [(name, lv) for lv in (cls.levels if getattr(cls, "uses_gradients", False) else ("param",))]
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--setting", default="dense_quick")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    setting = dense_setting(args.setting)
    t = time.process_time()
    data = build_dense_data(setting)
    for split in ("train", "test"):  # render every scene once (the procedural benchmark caches per geometry)
        ds = data[split]
        for start in range(0, len(ds), 64):
            ds.__getitems__(list(range(start, min(start + 64, len(ds)))))
    render_s = time.process_time() - t
    train = data["train"]
    batch = train.__getitems__(list(range(setting.batch_size)))
    base = {"setting": args.setting, "image": list(train.output_size), "batch": setting.batch_size,
            "backbone": f"{setting.backbone} os{setting.output_stride}", "head": setting.head, "threads": 1}
    print(json.dumps({**base, "part": "render", "cpu_s": round(render_s, 2)}), flush=True)
    torch.manual_seed(0)
    model = build_dense_model(setting, train.tasks, train.output_size)
    shared, heads = list(model.shared_parameters()), list(model.task_parameters())
    per_step: dict[tuple[str, str], float] = {}
    for name, level in plan(setting.methods):
        method = create_method(name, len(train.tasks), level=level)
        opt = torch.optim.Adam(list(model.parameters()) + list(method.parameters()), lr=setting.lr)

        def step() -> None:
            opt.zero_grad()
            losses, z = model.step_losses(batch)
            method.backward(losses, shared, z, heads)
            opt.step()

        per_step[(name, level)] = _cpu(step, args.steps)
        print(json.dumps({**base, "part": "step", "method": name, "level": level,
                          "cpu_ms": round(per_step[(name, level)] * 1e3, 1)}), flush=True)
    recorder = ChallengeRecorder(every=1)

    def record() -> None:
        losses, z = model.step_losses(batch)
        recorder.compute(losses, shared, z)

    record_s = _cpu(record, args.steps)
    print(json.dumps({**base, "part": "challenge_recorder", "cpu_ms": round(record_s * 1e3, 1)}), flush=True)
    cfg = TrainConfig(epochs=1, batch_size=setting.batch_size, eval_batch_size=setting.eval_batch_size, device="cpu",
                      progress=False, checkpoint=False)
    trainer = Trainer(model, create_method("ew", len(train.tasks)), data, cfg)
    eval_s = _cpu(lambda: (trainer.evaluate("val"), trainer.evaluate("test")), 1)
    print(json.dumps({**base, "part": "evaluate_val_and_test", "cpu_s": round(eval_s, 2)}), flush=True)
    steps = setting.steps
    records = steps // setting.measures_every + 1
    evals = setting.epochs(len(train))  # the Trainer evaluates val and test after every epoch
    per_run = {k: steps * v + records * record_s + evals * eval_s for k, v in per_step.items()}
    total = sum(per_run.values()) * len(setting.seeds) + render_s
    print(json.dumps({**base, "part": "estimate", "runs": len(per_run) * len(setting.seeds), "steps_per_run": steps,
                      "cpu_s_total": round(total), "cores": args.cores, "wall_min": round(total / args.cores / 60, 1),
                      "slowest_run_s": round(max(per_run.values())), "fastest_run_s": round(min(per_run.values()))}))


if __name__ == "__main__":
    main()
