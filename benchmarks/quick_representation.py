"""Times the `quick` settings of the decoding, autoencoders and geometry studies, cell by cell, on 2 CPU cores.

Runs what each study's quick preset will run (through the one-call cells of mtlens.studies.representation),
prints one JSON line per stage (wall seconds and the numbers) and writes the figures to --out.

    PYTHONPATH=src python benchmarks/quick_representation.py --study all --out /tmp/quick_repr
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from mtlens.methods import create_method
from mtlens.models import create_model
from mtlens.models.probes import as_encoder
from mtlens.plots.representation import (plot_embeddings, plot_pca_spectra, plot_reconstructions, plot_similarity,
                                         plot_traversal)
from mtlens.studies.common import DataConfig, build_factor_data
from mtlens.studies.representation import (AutoencoderSettings, DecoderSettings, HeadSettings, ImageSplit,
                                           decoding_cell, embedding_cell, encode_split, encoder_geometry,
                                           example_rows, pairwise_similarity, reconstruct, table1_cell, table6_cell,
                                           train_autoencoder, traverse)
from mtlens.training import TrainConfig, Trainer

# The hard-sharing quick preset's data and training (configs/hard_sharing/quick.yaml).
DATA = DataConfig(dataset="dsprites", n_tasks=10, task_seed=0, inputs="unit", subset=8000)
HARD_SHARING = TrainConfig(epochs=2, lr=1e-3, batch_size=64, seed=0, device="cpu", progress=False, checkpoint=False)
# 400 steps of 16: a decoder on multi-head codes reaches ~36 summed squared error per image (seed 000 Table 4:
# 35.97 after 500 epochs), on random codes it is still ~180 (the all-black image: ~210).
DECODER = DecoderSettings(epochs=2, lr=1e-3, halve_every=None, batch_size=16, device="cpu")
DECODER_TRAIN = 3200
# ReLU where the seed's App. C.3 (and `paper`) has tanh: in 400 steps of 16 a ReLU AE reaches ~42 summed squared
# error per image on dSprites, a tanh one is still at ~183 after 600 (the all-black image: ~210).
AUTOENCODER = AutoencoderSettings(epochs=2, lr=1e-3, batch_size=16, activation="relu", device="cpu")
AUTOENCODER_TRAIN = 3200
HEADS = HeadSettings(epochs=5, lr=1e-3, batch_size=64, device="cpu")
METRICS = {"mig": {"num_train": 2000}, "sap": {"num_train": 2000, "num_test": 1000}}
EMBED_POINTS = 1000
GEOMETRY_POINTS = 2000


_CPU: dict[float, float] = {}


def clock() -> float:
    """Returns a wall-clock start mark (and remembers the process CPU time at that mark)."""
    now = time.perf_counter()
    _CPU[now] = time.process_time()
    return now


def emit(stage: str, started: float, **values: object) -> None:
    # cpu_s is load-independent: on a shared machine the wall time says more about the neighbours.
    cpu = time.process_time() - _CPU.get(started, 0.0)
    print(json.dumps({"stage": stage, "seconds": round(time.perf_counter() - started, 1), "cpu_s": round(cpu, 1),
                      **values}), flush=True)


def hard_sharing_encoders(dataset, task_set, splits) -> dict[str, torch.nn.Module]:
    """Returns the random, single-task (task 0) and multi-head encoders of seed 0, trained as the quick preset does."""
    out = {}
    for variant, kwargs in (("random", {}), ("single_task", {"task": 0}), ("multi_head", {})):
        t = clock()
        torch.manual_seed(0)
        model = create_model(variant, task_set.tasks, dataset.image_shape, latent_dim=8, **kwargs)
        values = Trainer(model, create_method("ew", len(model.active_tasks)), splits, HARD_SHARING).fit()
        out[variant.replace("_", "-")] = model.encoder.eval()
        emit(f"hard_sharing/{variant}", t, test_mean_mse=values["test/mean_mse"])
    return out


def decoding(out: Path) -> None:
    t0 = clock()
    dataset, task_set, splits = build_factor_data(DATA)
    encoders = hard_sharing_encoders(dataset, task_set, splits)
    train = ImageSplit(dataset, splits["train"].indices[:DECODER_TRAIN], cache=True)
    test = ImageSplit.of(splits["test"], cache=True)
    probes = {}
    for label, enc in encoders.items():
        t = clock()
        result = decoding_cell(enc, train, test, DECODER, seed=0, label=label)
        probes[label] = result.probe
        emit(f"decoding/{label}", t, **result.values())
    t = clock()
    rows = example_rows(test, 8, seed=0)
    x = test.x(rows)
    plot_reconstructions(x, {k: reconstruct(p, x) for k, p in probes.items()}, out / "reconstructions.png",
                         "Test reconstructions from frozen encoders (quick)")
    for label, probe in probes.items():
        codes = encode_split(probe.encoder, test, device="cpu")
        tr = traverse(probe, x[0], steps=11, observed=codes)
        plot_traversal(tr.image, tr.reconstruction, tr.values, tr.images, out / f"traversal_{label}.png", f"{label} encoder")
    emit("decoding/figures", t)
    t = clock()
    emb = embedding_cell(encoders, test, n_points=EMBED_POINTS, seed=0, device="cpu")
    plot_embeddings(emb.coords, emb.factor_values, emb.factor_names, out / "umap.png", "UMAP of test codes (quick)")
    emit("decoding/umap", t)
    emit("decoding/total", t0)


def autoencoders(out: Path) -> None:
    t0 = clock()
    dataset, task_set, splits = build_factor_data(DATA)
    # The auto-encoders see a subset of the training images; the heads train on the whole training split.
    ae_train = ImageSplit(dataset, splits["train"].indices[:AUTOENCODER_TRAIN], cache=True)
    test = ImageSplit.of(splits["test"], cache=True)
    trained = {}
    for rep in ("ground_truth", "raw_factors", "ae", "vae", "factor_vae"):
        t = clock()
        if rep in ("ae", "vae", "factor_vae"):
            trained[rep], values = train_autoencoder(rep, ae_train, test, AUTOENCODER, seed=0)
            emit(f"autoencoders/train/{rep}", t, **values)
            t = clock()
        cell = table1_cell(rep, dataset, task_set, splits, seed=0, heads=HEADS, encoder=trained.get(rep))
        emit(f"autoencoders/table1/{rep}", t, rmse=cell.heads.rmse, rmse_raw=cell.heads.rmse_raw)
    for rep, model in trained.items():
        t = clock()
        emit(f"autoencoders/table6/{rep}", t, **table6_cell(model, dataset, list(METRICS), seed=0, settings=METRICS, device="cpu"))
    t = clock()
    x = test.x(example_rows(test, 8, seed=0))
    plot_reconstructions(x, {k: reconstruct(m, x) for k, m in trained.items()}, out / "ae_reconstructions.png",
                         "Auto-encoder reconstructions (quick)")
    emit("autoencoders/figures", t)
    emit("autoencoders/total", t0)


def geometry(out: Path) -> None:
    t0 = clock()
    dataset, task_set, splits = build_factor_data(DATA)
    encoders = hard_sharing_encoders(dataset, task_set, splits)
    t = clock()
    train = ImageSplit(dataset, splits["train"].indices[:AUTOENCODER_TRAIN], cache=True)
    test = ImageSplit.of(splits["test"], cache=True)
    ae, _ = train_autoencoder("ae", train, test, AUTOENCODER, seed=0)
    encoders["ae"] = as_encoder(ae)
    emit("geometry/train/ae", t)
    t = clock()
    rows = np.sort(np.random.default_rng(0).choice(len(splits["train"]), GEOMETRY_POINTS, replace=False))
    idx = splits["train"].indices[rows]
    points = ImageSplit(dataset, idx, cache=True)
    codes = {label: encode_split(enc, points, device="cpu") for label, enc in encoders.items()}
    targets = splits["train"].targets[rows].numpy()
    spectra, effective = {}, {}
    for label, c in codes.items():
        geo = encoder_geometry(label, c, dataset, idx, targets, task_set.names)
        spectra[label], effective[label] = geo.explained_ratio, geo.values["effective_dimensionality"]
        emit(f"geometry/{label}", t, **{k: round(v, 4) for k, v in geo.values.items() if "/task/" not in k})
        t = clock()
    sims = pairwise_similarity(codes)
    for name, mat in sims.items():
        plot_similarity(list(codes), mat, out / f"similarity_{name}.png", f"{name} between encoders (quick)")
    plot_pca_spectra(spectra, out / "pca_spectra.png", effective)
    emit("geometry/similarity", t, **{name: np.round(m, 3).tolist() for name, m in sims.items()}, labels=list(codes))
    emit("geometry/total", t0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--study", choices=("decoding", "autoencoders", "geometry", "all"), default="all")
    parser.add_argument("--out", default="quick_representation")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the pipeline, not the timing")
    args = parser.parse_args()
    if args.smoke:
        global DATA, DECODER_TRAIN, AUTOENCODER_TRAIN, EMBED_POINTS, GEOMETRY_POINTS, HARD_SHARING, DECODER, AUTOENCODER, HEADS, METRICS
        DATA = DATA.model_copy(update={"subset": 400})
        DECODER_TRAIN = AUTOENCODER_TRAIN = 64
        EMBED_POINTS, GEOMETRY_POINTS = 40, 200
        HARD_SHARING = TrainConfig(epochs=1, batch_size=64, device="cpu", progress=False, checkpoint=False)
        DECODER = DecoderSettings(epochs=1, device="cpu")
        AUTOENCODER = AutoencoderSettings(epochs=1, device="cpu")
        HEADS = HeadSettings(epochs=1, hidden=(16,), device="cpu")
        METRICS = {"mig": {"num_train": 200}, "sap": {"num_train": 200, "num_test": 100}}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    for name, fn in (("decoding", decoding), ("autoencoders", autoencoders), ("geometry", geometry)):
        if args.study in (name, "all"):
            fn(out)


if __name__ == "__main__":
    main()
