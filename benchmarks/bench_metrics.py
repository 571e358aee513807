"""Disentanglement metrics: mtlens vs disentanglement_lib 1.5, wall time and scores, in the same run.

Two cases, one JSON line per metric (plus one for the whole suite):
- "conv_encoder": the Table-2 conv encoder (mtlens.models.ConvEncoder, 8 codes), trained for --train-steps
  Adam steps to regress the latent factor values of dSprites (the procedural renderer when no official file is
  found; "tiny" if dSprites is not registered); both libraries sample the same dataset with the same seed and
  encode with the same model (mtlens in --batch-size batches on --device, disentanglement_lib as its configs do).
- "random_codes": fixed random codes [num_train, 10] partly driven by dSprites-sized factors, into the
  pure functions of both.
Sizes are the unsupervised_study_v1 configs' at --scale 1 (the default); --scale 0.05 gives a quick run.
disentanglement_lib is imported through tests/measures/dlib_shim.py (no tensorflow).

    .venv/bin/python benchmarks/bench_metrics.py --scale 0.05 --train-steps 200
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from mtlens.data import available_datasets, create_factor_dataset
from mtlens.device import resolve_device
from mtlens.measures import disentanglement as D

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SUITE = ("mig", "factor_vae", "sap", "dci")


def load_shim():
    spec = importlib.util.spec_from_file_location("dlib_shim", ROOT / "tests" / "measures" / "dlib_shim.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["dlib_shim"] = module
    spec.loader.exec_module(module)
    return module


def make_encoder(latent_dim: int = 8) -> torch.nn.Module:
    try:
        from mtlens.models import ConvEncoder

        return ConvEncoder(in_channels=1, latent_dim=latent_dim)
    except ImportError:  # Table 2 of seed 000: six 4x4 stride-2 convs, then a linear layer
        chans, layers, c_in = (32, 32, 64, 128, 256, 256), [], 1
        for c in chans:
            layers += [torch.nn.Conv2d(c_in, c, 4, 2, 1), torch.nn.ReLU()]
            c_in = c
        return torch.nn.Sequential(*layers, torch.nn.Flatten(), torch.nn.Linear(256, latent_dim))


def train_encoder(model: torch.nn.Module, dataset, steps: int, seed: int) -> float:
    """Trains `model` to regress the (standardised) latent factor values; returns the last loss."""
    latent = [k for k, s in enumerate(dataset.factor_sizes) if s > 1]
    head = torch.nn.Linear(model(torch.zeros(1, *dataset.image_shape)).shape[1], len(latent))
    opt = torch.optim.Adam([*model.parameters(), *head.parameters()], lr=1e-3)
    rs = np.random.RandomState(seed)
    loss = torch.tensor(float("nan"))
    for _ in range(steps):
        idx = rs.randint(len(dataset), size=64)
        values = dataset.factor_values(idx)[:, latent]
        target = torch.from_numpy((values - values.mean(0)) / (values.std(0) + 1e-6)).float()
        loss = torch.nn.functional.mse_loss(head(model(dataset.images(idx))), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return float(loss)


def settings_for(scale: float) -> dict[str, dict[str, int]]:
    out = {}
    for name in ("mig", "factor_vae", "beta_vae", "sap", "dci", "modularity_explicitness", "irs", "unsupervised"):
        s = dict(D.METRICS.create(name).settings)
        out[name] = {k: max(2, int(round(v * scale))) for k, v in s.items() if k.startswith("num_") and k != "num_bins"}
    return out


def dlib_score(name: str, shim, gt, rep, seed: int, s: dict[str, int]) -> float:
    rs = np.random.RandomState(seed)
    np.random.seed(seed)  # the global RNG the reference's classifiers draw from
    if name == "mig":
        return shim.load("mig").compute_mig(gt, rep, rs, num_train=s["num_train"], batch_size=16)["discrete_mig"]
    if name == "factor_vae":
        return shim.load("factor_vae").compute_factor_vae(gt, rep, rs, batch_size=64, **s)["eval_accuracy"]
    if name == "beta_vae":
        return shim.load("beta_vae").compute_beta_vae_sklearn(gt, rep, rs, batch_size=64, **s)["eval_accuracy"]
    if name == "sap":
        return shim.load("sap_score").compute_sap(gt, rep, rs, batch_size=16, continuous_factors=False, **s)["SAP_score"]
    if name == "dci":
        return shim.load("dci").compute_dci(gt, rep, rs, batch_size=16, **s)["disentanglement"]
    if name == "modularity_explicitness":
        return shim.load("modularity_explicitness").compute_modularity_explicitness(gt, rep, rs, batch_size=16, **s)["modularity_score"]
    if name == "irs":
        return shim.load("irs").compute_irs(gt, rep, rs, batch_size=16, **s)["IRS"]
    return shim.load("unsupervised_metrics").unsupervised_metrics(gt, rep, rs, batch_size=16, **s)["gaussian_total_correlation"]


def emit(**row) -> None:
    print(json.dumps(row), flush=True)


def bench_encoder(args, shim) -> None:
    name = "dsprites" if "dsprites" in available_datasets() else "tiny"
    dataset = create_factor_dataset(name)
    torch.manual_seed(args.seed)
    model = make_encoder()
    t0 = time.perf_counter()
    loss = train_encoder(model, dataset, args.train_steps, args.seed)
    emit(case="conv_encoder", stage="train", dataset=str(dataset), steps=args.train_steps, loss=loss, seconds=time.perf_counter() - t0)
    device = resolve_device(args.device)
    model = model.to(device)

    def encode(images: torch.Tensor) -> torch.Tensor:
        return model(images)

    def representation(observations: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(observations).to(device)).cpu().numpy()

    gt = shim.ground_truth_data(dataset)
    settings = settings_for(args.scale)
    totals = {"mtlens_s": 0.0, "dlib_s": 0.0}
    for metric in args.metrics:
        t0 = time.perf_counter()
        mine = D.evaluate(dataset, encode, [metric], seed=args.seed, batch_size=args.batch_size, device=device, settings={metric: settings[metric]})[D.METRICS.canonical(metric)]
        t_mine = time.perf_counter() - t0
        t0 = time.perf_counter()
        theirs = dlib_score(metric, shim, gt, representation, args.seed, settings[metric])
        t_dlib = time.perf_counter() - t0
        score = mine.disentanglement if metric == "dci" else mine.score
        if metric in DEFAULT_SUITE:
            totals["dlib_s"] += t_dlib
        emit(case="conv_encoder", metric=metric, mtlens_s=round(t_mine, 3), dlib_s=round(t_dlib, 3), ratio=round(t_dlib / t_mine, 2),
             mtlens_score=float(score), dlib_score=float(theirs), equal=bool(float(score) == float(theirs)))
    suite = [m for m in DEFAULT_SUITE if m in args.metrics]
    t0 = time.perf_counter()
    D.evaluate(dataset, encode, suite, seed=args.seed, batch_size=args.batch_size, device=device, settings={m: settings[m] for m in suite})
    t_suite = time.perf_counter() - t0
    emit(case="conv_encoder", metric="suite:" + ",".join(suite), mtlens_s=round(t_suite, 3), dlib_s=round(totals["dlib_s"], 3),
         ratio=round(totals["dlib_s"] / t_suite, 2), note="mtlens encodes each distinct image once for the whole suite")


def bench_random_codes(args, shim) -> None:
    rs = np.random.RandomState(args.seed)
    sizes = (3, 6, 40, 32, 32)
    n_train, n_test = max(50, int(10000 * args.scale)), max(50, int(5000 * args.scale))

    def draw(n):
        ys = np.stack([rs.randint(s, size=n) for s in sizes], axis=1)
        mix = (ys / np.array(sizes))[:, [0, 1, 2, 3, 4, 0, 1, 2, 3, 4]] * np.linspace(2, 0.2, 10)
        return (rs.randn(n, 10) + mix).astype(np.float32), ys

    m, y = draw(n_train)
    mt, yt = draw(n_test)
    utils = shim.load("utils")
    cases = {
        "mig": (lambda: D.mig(m, y).score, lambda: shim.load("mig")._compute_mig(m.T, y.T)["discrete_mig"]),
        "sap": (lambda: D.sap(m, y, mt, yt).score, lambda: shim.load("sap_score")._compute_sap(m.T, y.T, mt.T, yt.T, False)["SAP_score"]),
        "dci": (lambda: D.dci(m, y, mt, yt, random_state=np.random.RandomState(args.seed)).disentanglement,
                lambda: shim.load("dci")._compute_dci(m.T, y.T, mt.T, yt.T)["disentanglement"]),
        "modularity": (lambda: D.modularity_explicitness(m, y, mt, yt).modularity,
                       lambda: shim.load("modularity_explicitness").modularity(utils.discrete_mutual_info(utils.make_discretizer(m.T), y.T))),
        "irs": (lambda: D.irs(m, y).score,
                lambda: shim.load("irs").scalable_disentanglement_score(
                    utils.make_discretizer(y.T).T, shim.load("irs")._drop_constant_dims(m.T).T, 0.99)["avg_score"]),
    }
    for metric, (mine_fn, ref_fn) in cases.items():
        if metric not in args.metrics and not (metric == "modularity" and "modularity_explicitness" in args.metrics):
            continue
        np.random.seed(args.seed)
        t0 = time.perf_counter()
        mine = mine_fn()
        t_mine = time.perf_counter() - t0
        np.random.seed(args.seed)
        t0 = time.perf_counter()
        theirs = ref_fn()
        t_dlib = time.perf_counter() - t0
        emit(case="random_codes", metric=metric, n_train=n_train, mtlens_s=round(t_mine, 3), dlib_s=round(t_dlib, 3),
             ratio=round(t_dlib / t_mine, 2), mtlens_score=float(mine), dlib_score=float(theirs), equal=bool(float(mine) == float(theirs)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the reference configs' num_* sizes")
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--batch-size", type=lambda v: v if v == "auto" else int(v), default="auto",
                        help="mtlens encoding batch ('auto': 64 on CPU, 1024 on GPU)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--metrics", default="mig,factor_vae,sap,dci,beta_vae,modularity_explicitness,irs,unsupervised")
    parser.add_argument("--cases", default="random_codes,conv_encoder")
    args = parser.parse_args()
    args.metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    warnings.filterwarnings("ignore")
    shim = load_shim()
    for case in args.cases.split(","):
        {"random_codes": bench_random_codes, "conv_encoder": bench_encoder}[case.strip()](args, shim)


if __name__ == "__main__":
    main()
