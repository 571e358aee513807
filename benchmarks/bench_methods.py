"""Training-step time of the gradient methods, as a ratio to equal weighting, beside LibMTL and TorchJD.

Model: the Table-2 conv encoder (six 4x4 stride-2 convs, dense to 8) with ten 300-300-300-1 ReLU heads, batch
64 of 64x64x1 inputs, CPU. A step = forward + method backward + Adam step. Prints one JSON object per
measurement: {"impl", "method", "level", "ms_per_step", "ratio_to_ew", ...}; LibMTL 1.1.5 and TorchJD 0.18
are timed in the same run where they implement the method (skipped with a note when not installed).

    .venv/bin/python benchmarks/bench_methods.py [--steps 5] [--threads N] [--methods pcgrad,mgda]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import types
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from mtlens.data.tasks import TaskSpec
from mtlens.methods import create_method
from mtlens.models import create_model

N_TASKS, BATCH, SIZE = 10, 64, 64
PARAM_METHODS = ["pcgrad", "gradvac", "graddrop", "rgw", "mgda", "cagrad", "nash_mtl", "aligned_mtl", "imtl_g", "imtl", "cosreg"]
FEATURE_METHODS = ["pcgrad", "gradvac", "graddrop", "rgw", "mgda", "cagrad", "nash_mtl", "aligned_mtl", "imtl_g", "imtl"]
# (mtlens name, LibMTL class, LibMTL kwargs, rep_grad); LibMTL's CAGrad hard-codes 3 tasks, so it is absent
LIBMTL = [
    ("pcgrad", "PCGrad", {}, False),
    ("gradvac", "GradVac", {"beta": 0.5}, False),
    ("mgda", "MGDA", {"mgda_gn": "none"}, False),
    ("imtl", "IMTL", {}, False),
    ("mgda", "MGDA", {"mgda_gn": "none"}, True),
    ("imtl", "IMTL", {}, True),
]
TORCHJD = [("pcgrad", "PCGrad", {}), ("gradvac", "GradVac", {}), ("graddrop", "GradDrop", {}), ("rgw", "Random", {}),
           ("mgda", "MGDA", {}), ("aligned_mtl", "AlignedMTL", {}), ("imtl_g", "IMTLG", {})]


def _setup(seed: int = 0):  # type: ignore[no-untyped-def]
    torch.manual_seed(seed)
    tasks = [TaskSpec(f"t{i}", "regression") for i in range(N_TASKS)]
    model = create_model("multi_head", tasks, (1, SIZE, SIZE))
    x, y = torch.rand(BATCH, 1, SIZE, SIZE), torch.randn(BATCH, N_TASKS)
    return model, x, y


def _losses(model, x, y, z=None):  # type: ignore[no-untyped-def]
    z = model.encode(x) if z is None else z
    preds = model.heads_forward(z)
    return torch.stack([((p.reshape(-1) - y[:, i]) ** 2).mean() for i, p in enumerate(preds.values())]), z


def _time(step: Callable[[], None], steps: int) -> float:
    """Returns the fastest of `steps` timed steps in ms (after one warm-up): the least disturbed by other load."""
    step()  # warm-up (allocations, vmap tracing)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return min(times) * 1e3


def _ours(name: str, level: str, batched: bool | None = None, **options: Any) -> Callable[[], None]:
    model, x, y = _setup()
    if batched is not None:  # None: the method's default
        options["batched"] = batched
    method = create_method(name, N_TASKS, level=level, **options)
    opt = torch.optim.Adam(list(model.parameters()) + method.parameters(), lr=1e-4)
    shared, heads = list(model.shared_parameters()), list(model.task_parameters())

    def step() -> None:
        opt.zero_grad()
        losses, z = _losses(model, x, y)
        method.backward(losses, shared, z, heads)
        opt.step()
        method.after_step(lambda: _losses(model, x, y)[0])  # the life cycle; computes nothing for these methods

    return step


def _libmtl(cls: str, kwargs: dict, rep_grad: bool) -> Callable[[], None]:
    if "torchvision" not in sys.modules:  # LibMTL 1.1.5 imports torchvision only for ResNet URLs
        tv, models, utils = (types.ModuleType(n) for n in ("torchvision", "torchvision.models", "torchvision.models.utils"))
        utils.load_state_dict_from_url = lambda *a, **k: None  # type: ignore[attr-defined]
        tv.models, models.utils = models, utils  # type: ignore[attr-defined]
        sys.modules.update({"torchvision": tv, "torchvision.models": models, "torchvision.models.utils": utils})
    import LibMTL.weighting as weighting

    model, x, y = _setup()
    shared = list(model.shared_parameters())

    class Ref(getattr(weighting, cls)):  # type: ignore[misc]
        def get_share_params(self):  # type: ignore[no-untyped-def]
            return shared

        def zero_grad_share_params(self) -> None:
            for p in shared:  # zeros, not None: LibMTL writes param.grad.data afterwards
                p.grad = torch.zeros_like(p)

    ref = Ref()
    ref.task_num, ref.device, ref.rep_grad = N_TASKS, torch.device("cpu"), rep_grad
    ref.task_name = [f"t{i}" for i in range(N_TASKS)]
    ref.init_param()
    opt = torch.optim.Adam(list(model.parameters()) + list(ref.parameters()), lr=1e-4)

    def step() -> None:
        opt.zero_grad(set_to_none=False)
        ref.zero_grad_share_params()
        z = model.encode(x)
        if rep_grad:  # LibMTL's representation mode: a detached copy per task
            ref.rep = z
            ref.rep_tasks = {t: z.detach().clone().requires_grad_(True) for t in ref.task_name}
            preds = [model.heads_forward(ref.rep_tasks[t])[t] for t in ref.task_name]
            losses = torch.stack([((p.reshape(-1) - y[:, i]) ** 2).mean() for i, p in enumerate(preds)])
        else:
            losses, _ = _losses(model, x, y, z)
        ref.backward(losses, **kwargs)
        opt.step()

    return step


def _torchjd(cls: str, kwargs: dict, level: str) -> Callable[[], None]:
    from torchjd import aggregation
    from torchjd.autojac import jac_to_grad, mtl_backward

    model, x, y = _setup()
    agg = getattr(aggregation, cls)(**kwargs)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    shared, heads = list(model.shared_parameters()), list(model.task_parameters())

    def step() -> None:
        opt.zero_grad()
        z = model.encode(x)
        # separate loss tensors (not views of one stack): TorchJD frees each task's graph after its head
        task_losses = [((p.reshape(-1) - y[:, i]) ** 2).mean() for i, p in enumerate(model.heads_forward(z).values())]
        if level == "param":
            mtl_backward(task_losses, features=z, shared_params=shared)
            jac_to_grad(shared, agg)
        else:  # TorchJD has no representation mode: its aggregator on the representation's Jacobian
            losses = torch.stack(task_losses)
            losses.sum().backward(inputs=heads, retain_graph=True)
            eye = torch.eye(N_TASKS)
            jac_z = torch.autograd.grad(losses, z, eye, retain_graph=True, is_grads_batched=True)[0]
            direction = agg(jac_z.reshape(N_TASKS, -1))
            z.backward(direction.view_as(z))
        opt.step()

    return step


def _cli() -> tuple[argparse.Namespace, set[str], dict[str, Any]]:
    """Returns the parsed options (torch threads set), the methods asked for (empty: all) and the fields every
    JSON line carries; shared with bench_peer_methods.py."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--methods", default="", help="comma-separated subset of the methods")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    only = set(filter(None, args.methods.split(",")))
    base = {"device": "cpu", "threads": torch.get_num_threads(), "tasks": N_TASKS, "batch": BATCH, "steps": args.steps}
    return args, only, base


def main() -> None:
    args, only, base = _cli()

    def emit(impl: str, method: str, level: str, ms: float, ew: float, **extra: object) -> None:
        print(json.dumps({**base, "impl": impl, "method": method, "level": level, "ms_per_step": round(ms, 1),
                          "ratio_to_ew": round(ms / ew, 2), **extra}), flush=True)

    ew_step = _ours("ew", "param")
    ew = min(_time(ew_step, args.steps) for _ in range(2))
    emit("mtlens", "ew", "-", ew, ew)
    for batched in (True, False, True, False):  # interleaved: the batched (vmap) Jacobian against the loop
        for level in ("param", "feature"):
            ms = _time(_ours("pcgrad", level, batched=batched), args.steps)
            emit("mtlens", "pcgrad", level, ms, ew, jacobian="batched (vmap)" if batched else "loop")
    for level, names in (("param", PARAM_METHODS), ("feature", FEATURE_METHODS)):
        for name in names:
            if only and name not in only:
                continue
            emit("mtlens", name, level, _time(_ours(name, level), args.steps), ew)
    for name, cls, kwargs, rep in LIBMTL:
        if only and name not in only:
            continue
        try:
            step = _libmtl(cls, kwargs, rep)
        except ImportError as err:
            print(json.dumps({**base, "impl": "libmtl", "method": name, "skipped": str(err)}))
            continue
        emit("libmtl-1.1.5", name, "feature" if rep else "param", _time(step, args.steps), ew)
    for level in ("param", "feature"):
        for name, cls, kwargs in TORCHJD:
            if only and name not in only:
                continue
            try:
                step = _torchjd(cls, kwargs, level)
            except ImportError as err:
                print(json.dumps({**base, "impl": "torchjd", "method": name, "skipped": str(err)}))
                continue
            emit("torchjd-0.18", name, level, _time(step, args.steps), ew)
    emit("mtlens", "ew", "-", _time(ew_step, args.steps), ew, note="equal weighting again at the end: drift check")


if __name__ == "__main__":
    main()
