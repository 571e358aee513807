"""Training-step time of the gradient methods of issue 16 beside TorchJD 0.18 (the peer that implements them;
LibMTL 1.1.5 has none of them), as ratios in one run.

Model and step as benchmarks/bench_methods.py: the Table-2 conv encoder with ten 300-300-300-1 heads, batch 64
of 64x64x1 inputs, CPU; a step = forward + method backward + Adam step. TorchJD's step is `mtl_backward` on the
representation then `jac_to_grad` with its aggregator (its stateful weightings through
`GramianWeightedAggregator`). Prints one JSON object per measurement: {"impl", "method", "ms_per_step",
"ratio_to_torchjd", ...}. TorchJD's UPGrad and DualProj need quadprog (put it on PYTHONPATH); without it they
are skipped with a note.

    .venv/bin/python benchmarks/bench_peer_methods.py [--steps 5] [--threads N] [--methods upgrad,pcd]
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import torch

from bench_methods import _cli, _ours, _setup, _time

#: (mtlens name, mtlens options, TorchJD aggregator factory)
PAIRS: list[tuple[str, dict[str, Any], Callable[[Any], Any]]] = [
    ("upgrad", {"norm_eps": 1e-4, "reg_eps": 1e-4}, lambda a: a.UPGrad()),
    ("dualproj", {"norm_eps": 1e-4, "reg_eps": 1e-4}, lambda a: a.DualProj()),
    ("config", {}, lambda a: a.ConFIG()),
    ("fairgrad", {}, lambda a: a.FairGrad(1.0)),
    ("krum", {"n_byzantine": 1}, lambda a: a.Krum(1)),
    ("trimmed_mean", {}, lambda a: a.TrimmedMean(1)),
    ("pcd", {}, lambda a: a.PCD()),
    ("excess_mtl", {}, lambda a: a.ExcessMTL(0.01, 1)),
    ("sdmgrad", {}, lambda a: a.GramianWeightedAggregator(a.SDMGradWeighting())),
    ("modo", {"gamma": 0.1}, lambda a: a.GramianWeightedAggregator(a.MoDoWeighting(0.1, 0.1))),
    ("cr_mogm", {"base": "imtl_g"}, lambda a: a.GramianWeightedAggregator(a.CRMOGMWeighting(a.IMTLGWeighting()))),
]
#: Ours only (no installed peer implements them).
OURS_ONLY = ["moco", "db_mtl"]


def _torchjd(factory: Callable[[Any], Any]) -> Callable[[], None]:
    from torchjd import aggregation
    from torchjd.autojac import jac_to_grad, mtl_backward

    model, x, y = _setup()
    aggregator = factory(aggregation)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    shared = list(model.shared_parameters())

    def step() -> None:
        opt.zero_grad()
        z = model.encode(x)
        task_losses = [((p.reshape(-1) - y[:, i]) ** 2).mean() for i, p in enumerate(model.heads_forward(z).values())]
        mtl_backward(task_losses, features=z, shared_params=shared)
        jac_to_grad(shared, aggregator)
        opt.step()

    step()  # raises ImportError here when an optional dependency is missing
    return step


def main() -> None:
    args, only, base = _cli()
    ew = _time(_ours("ew", "param"), args.steps)
    print(json.dumps({**base, "impl": "mtlens", "method": "ew", "ms_per_step": round(ew, 1)}), flush=True)
    for name, options, factory in PAIRS:
        if only and name not in only:
            continue
        try:
            ref_step = _torchjd(factory)
        except ImportError as err:
            print(json.dumps({**base, "impl": "torchjd-0.18", "method": name, "skipped": str(err)}), flush=True)
            ref = None
        else:
            ref = _time(ref_step, args.steps)
        # ours and theirs interleaved twice: the fastest of each, least disturbed by other load
        ours = min(_time(_ours(name, "param", **options), args.steps) for _ in range(2))
        if ref is not None:
            ref = min(ref, _time(_torchjd(factory), args.steps))
        row = {**base, "impl": "mtlens", "method": name, "ms_per_step": round(ours, 1), "ratio_to_ew": round(ours / ew, 2)}
        if ref is not None:
            row.update(torchjd_ms_per_step=round(ref, 1), ratio_to_torchjd=round(ours / ref, 2))
        print(json.dumps(row), flush=True)
    for name in OURS_ONLY:
        if not only or name in only:
            ours = _time(_ours(name, "param"), args.steps)
            print(json.dumps({**base, "impl": "mtlens", "method": name, "ms_per_step": round(ours, 1),
                              "ratio_to_ew": round(ours / ew, 2), "note": "no installed peer implements it"}))


if __name__ == "__main__":
    main()
