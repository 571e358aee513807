"""Dense-task training step (ResNet-18 dilated, ASPP heads) of mtlens vs LibMTL 1.1.5's NYU-v2 set-up, and memory.

Set-up of both (LibMTL's `examples/nyu`, backbone ResNet-18 instead of its ResNet-50): the dilated ResNet
(output stride 8), one DeepLab-v3 ASPP head per task (segmentation 13 classes, depth, normal), predictions
upsampled to the image, the NYU-v2 losses over valid pixels, Adam. LibMTL runs its own `resnet_dilated`,
its HPS architecture and its weighting classes (outside its Trainer, which requires CUDA); both use the same
ASPP head class (LibMTL's example defines the same DeepLab-v3 head in its own examples/nyu/aspp.py, which is
not part of the package). Inputs are random images and targets at the given resolution and batch, CPU.

Prints one JSON object per measurement: time {"impl", "method", "level", "ms_per_step", "cpu_ms_per_step",
"ratio_to_ew"} (the fastest of --steps steps after a warm-up; ratios of CPU time, the steadier number on a
shared machine), and memory {"measure": "peak_rss_mb", "tasks", "method", "level", "step_peak_mb",
"ratio_to_ew"} (each in a fresh process: the peak RSS during steps minus the RSS before them).

    .venv/bin/python benchmarks/bench_dense.py [--height 48 --width 64 --batch 2] [--steps 2 --rounds 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import resource
import os
import subprocess
import sys
import threading
import time
import types
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

from mtlens.data.dense import DenseTask
from mtlens.methods import create_method
from mtlens.models.dense import dense_resnet
from mtlens.models.dense_heads import ASPPHead
from mtlens.models.dense_losses import dense_loss

KINDS = (("segmentation", 13), ("depth", None), ("normal", None))
# (mtlens name, level, LibMTL class, its kwargs, rep_grad); LibMTL's PCGrad has no representation mode.
METHODS = [("ew", "param", "EW", {}, False), ("pcgrad", "param", "PCGrad", {}, False),
           ("mgda", "param", "MGDA", {"mgda_gn": "none"}, False), ("mgda", "feature", "MGDA", {"mgda_gn": "none"}, True)]


def dense_tasks(n: int) -> list[DenseTask]:
    """Returns n dense tasks cycling through segmentation (13 classes), depth and normal."""
    out = []
    for i in range(n):
        kind, classes = KINDS[i % 3]
        out.append(DenseTask(kind if n == 3 else f"{kind}{i}", kind, classes))
    return out


def batch(tasks: list[DenseTask], b: int, h: int, w: int, seed: int = 0) -> dict:
    """Returns a random NYU-like batch: ~10% unlabelled / missing pixels per task."""
    g = torch.Generator().manual_seed(seed)
    targets = {}
    for t in tasks:
        hole = torch.rand(b, h, w, generator=g) < 0.1
        if t.kind == "segmentation":
            targets[t.name] = torch.randint(0, t.num_classes or 2, (b, h, w), generator=g).masked_fill(hole, -1)
        elif t.kind == "depth":
            targets[t.name] = (torch.rand(b, 1, h, w, generator=g) * 10).masked_fill(hole[:, None], 0.0)
        else:
            targets[t.name] = F.normalize(torch.randn(b, 3, h, w, generator=g), dim=1).masked_fill(hole[:, None], 0.0)
    return {"x": torch.rand(b, 3, h, w, generator=g), "targets": targets}


def _ours(name: str, level: str, n_tasks: int, b: int, h: int, w: int) -> Callable[[], None]:
    torch.manual_seed(0)
    tasks = dense_tasks(n_tasks)
    model = dense_resnet(tasks, (3, h, w), backbone="resnet18", output_stride=8, head="aspp")
    method = create_method(name, n_tasks, level=level)
    opt = torch.optim.Adam(list(model.parameters()) + list(method.parameters()), lr=1e-4)
    shared, heads, data = list(model.shared_parameters()), list(model.task_parameters()), batch(tasks, b, h, w)

    def step() -> None:
        opt.zero_grad()
        losses, z = model.step_losses(data)
        method.backward(losses, shared, z, heads)
        opt.step()

    step.release = lambda: opt.zero_grad(set_to_none=True)  # type: ignore[attr-defined]
    return step


def _stub_torchvision() -> None:
    if "torchvision" not in sys.modules:  # LibMTL 1.1.5 imports torchvision only for ResNet URLs
        tv, models, utils = (types.ModuleType(n) for n in ("torchvision", "torchvision.models", "torchvision.models.utils"))
        utils.load_state_dict_from_url = lambda *a, **k: None  # type: ignore[attr-defined]
        tv.models, models.utils = models, utils  # type: ignore[attr-defined]
        sys.modules.update({"torchvision": tv, "torchvision.models": models, "torchvision.models.utils": utils})


def _libmtl(cls: str, kwargs: dict, rep_grad: bool, n_tasks: int, b: int, h: int, w: int) -> Callable[[], None]:
    _stub_torchvision()
    import LibMTL.weighting as weighting
    from LibMTL.architecture import HPS
    from LibMTL.model import resnet_dilated

    torch.manual_seed(0)
    tasks = dense_tasks(n_tasks)
    decoders = nn.ModuleDict({t.name: ASPPHead(512, t.channels) for t in tasks})

    class Model(HPS, getattr(weighting, cls)):  # what LibMTL's Trainer._prepare_model builds
        def zero_grad_share_params(self) -> None:
            for p in self.encoder.parameters():  # zeros, not None: LibMTL writes param.grad.data afterwards
                p.grad = torch.zeros_like(p)

    model = Model([t.name for t in tasks], lambda: resnet_dilated("resnet18", pretrained=False), decoders, rep_grad,
                  False, torch.device("cpu"))
    model.init_param()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    data = batch(tasks, b, h, w)

    def step() -> None:
        model.train()
        preds = model(data["x"])
        losses = torch.zeros(n_tasks)
        for i, t in enumerate(tasks):  # LibMTL's NYU trainer: upsample (process_preds), then the task losses
            pred = F.interpolate(preds[t.name], (h, w), mode="bilinear", align_corners=True)
            losses[i] = dense_loss(t, pred, data["targets"][t.name])
        opt.zero_grad()
        model.zero_grad_share_params()
        model.backward(losses, **kwargs)
        opt.step()

    return step


def _time(step: Callable[[], None], steps: int) -> tuple[float, float]:
    """Returns (wall ms, CPU ms) of the fastest of `steps` steps after one warm-up: the least disturbed by other load.

    CPU time (all threads of this process) is the steadier number on a shared machine: it excludes waiting.
    """
    step()
    walls, cpus = [], []
    for _ in range(steps):
        t, c = time.perf_counter(), time.process_time()
        step()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return min(walls) * 1e3, min(cpus) * 1e3


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _memory_child(name: str, level: str, n_tasks: int, b: int, h: int, w: int) -> None:
    """Runs in a fresh process: prints the peak RSS during two steps above the RSS before them.

    A warm-up step first allocates the optimiser state; gradients are then released, so the peak counts what
    a step allocates (gradients, activations, Jacobians). The parent sets MALLOC_MMAP_THRESHOLD_ so large
    blocks go back to the system when freed and RSS follows the live memory.
    """
    step = _ours(name, level, n_tasks, b, h, w)
    step()
    step.release()  # type: ignore[attr-defined]
    before = _rss_mb()
    peak, stop = [before], threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_mb())
            time.sleep(0.0005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    for _ in range(2):
        step()
        step.release()  # type: ignore[attr-defined]
    stop.set()
    sampler.join()
    print(json.dumps({"step_peak_mb": peak[0] - before}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--height", type=int, default=48)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=2, help="timed steps per round (after one warm-up)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of the two implementations")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: time, libmtl, memory")
    parser.add_argument("--memory-child", nargs=3, metavar=("METHOD", "LEVEL", "TASKS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    b, h, w = args.batch, args.height, args.width
    if args.memory_child:
        name, level, n = args.memory_child
        _memory_child(name, level, int(n), b, h, w)
        return
    skip = set(filter(None, args.skip.split(",")))
    base = {"device": "cpu", "threads": torch.get_num_threads(), "batch": b, "height": h, "width": w,
            "backbone": "resnet18 dilated (output stride 8)", "heads": "aspp"}

    def emit(**values: object) -> None:
        print(json.dumps({**base, **values}), flush=True)

    if "time" not in skip:
        # Each method's two implementations are built together and timed in alternation, so both see the same
        # background load; every number is the fastest of its rounds.
        ew: dict[str, float] = {}
        for name, level, cls, kwargs, rep in METHODS:
            steps = {"mtlens": _ours(name, level, 3, b, h, w)}
            if "libmtl" not in skip:
                try:
                    steps["libmtl-1.1.5"] = _libmtl(cls, kwargs, rep, 3, b, h, w)
                except ImportError as err:
                    emit(impl="libmtl-1.1.5", method=name, level=level, skipped=str(err))
            best = {impl: (float("inf"), float("inf")) for impl in steps}
            for _ in range(args.rounds):
                for impl, step in steps.items():
                    ms, cpu = _time(step, args.steps)
                    best[impl] = (min(best[impl][0], ms), min(best[impl][1], cpu))
            for impl, (ms, cpu) in best.items():
                ew.setdefault(impl, cpu)  # EW comes first
                emit(impl=impl, method=name, level=level, tasks=3, ms_per_step=round(ms, 1), cpu_ms_per_step=round(cpu, 1),
                     ratio_to_ew=round(cpu / ew[impl], 2), ratio_to_mtlens_ew=round(cpu / ew["mtlens"], 2))
            del steps
    if "memory" not in skip:
        for n in (3, 10):
            ew_mb = None
            for name, level in (("ew", "param"), ("pcgrad", "param"), ("mgda", "param"), ("mgda", "feature")):
                cmd = [sys.executable, __file__, "--height", str(h), "--width", str(w), "--batch", str(b),
                       "--threads", str(torch.get_num_threads()), "--memory-child", name, level, str(n)]
                env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
                out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout.strip().splitlines()[-1]
                mb = json.loads(out)["step_peak_mb"]
                ew_mb = mb if name == "ew" else ew_mb
                emit(measure="peak_rss_mb", impl="mtlens", tasks=n, method=name, level=level, step_peak_mb=round(mb, 1),
                     ratio_to_ew=round(mb / ew_mb, 2) if ew_mb else None)


if __name__ == "__main__":
    main()
