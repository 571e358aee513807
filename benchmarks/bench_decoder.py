"""Decoder training throughput: `train_decoder` (DecoderProbe through the Trainer, with the step-decay schedule
and a test evaluation each epoch) vs a bare PyTorch loop over the same decoder doing the same work (same
initialisation, same batch order, same halving, same per-epoch test error). One JSON line per pair of runs and
a summary with the median ratio (target: at most 1.05). Both runs end at the same test error (`same_result`).
The two runs of a pair alternate which goes first, so a drift in the machine's load falls on both sides.

Profile (1 thread, 5 steps): 95% of either run is the decoder's transposed convolutions and their backward;
the Trainer's own Python work (method, logging, checks) is under 2% of a step.

    PYTHONPATH=src OMP_NUM_THREADS=2 python benchmarks/bench_decoder.py [--pairs 7] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time

import numpy as np
import torch
from torch.nn import functional as F

from mtlens.data import create_factor_dataset
from mtlens.data.multitask import make_loader
from mtlens.models import ConvEncoder
from mtlens.models.decoders import ConvDecoder
from mtlens.studies.representation import DecoderSettings, ImageSplit, train_decoder


def bare_loop(encoder: torch.nn.Module, train: ImageSplit, test: ImageSplit, s: DecoderSettings, seed: int) -> float:
    """Trains the same decoder by hand; returns the final test MSE."""
    torch.manual_seed(seed)
    decoder = ConvDecoder(train.image_shape[0], encoder.latent_dim)
    opt = torch.optim.Adam(decoder.parameters(), lr=s.lr)
    encoder.eval()
    steps_per_epoch = math.ceil(len(train) / s.batch_size)
    step, mse = 0, float("nan")
    for epoch in range(s.epochs):
        decoder.train()
        for batch in make_loader(train, s.batch_size, shuffle=True, seed=seed * 100_003 + epoch):
            for group in opt.param_groups:
                group["lr"] = s.lr * 0.5 ** (step // (s.halve_every * steps_per_epoch))
            x = batch["x"]
            with torch.no_grad():
                z = encoder(x)
            loss = F.mse_loss(decoder(z), x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
        decoder.eval()
        total, count = 0.0, 0
        with torch.no_grad():
            for batch in make_loader(test, s.eval_batch_size):
                x = batch["x"]
                total += float(((decoder(encoder(x)).clamp(0, 1) - x) ** 2).sum())
                count += x.numel()
        mse = total / count
    return mse


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--train", type=int, default=320)
    parser.add_argument("--test", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dataset = create_factor_dataset("dsprites")
    idx = np.sort(np.random.default_rng(0).choice(len(dataset), args.train + args.test, replace=False))
    train = ImageSplit(dataset, idx[: args.train], cache=True)
    test = ImageSplit(dataset, idx[args.train :], cache=True)
    torch.manual_seed(1)
    encoder = ConvEncoder(1, 8)
    s = DecoderSettings(epochs=args.epochs, lr=2e-4, halve_every=1, batch_size=64, device="cpu")
    train_decoder(encoder, train, test, DecoderSettings(epochs=1, device="cpu"), seed=0)  # warm-up: allocators, lazy imports
    bare_loop(encoder, train, test, DecoderSettings(epochs=1, device="cpu", halve_every=1), seed=0)
    ratios, cpu_ratios = [], []
    for i in range(args.pairs):
        timed: dict[str, tuple[float, float, float]] = {}
        for side in (("ours", "bare") if i % 2 == 0 else ("bare", "ours")):
            start, cpu = time.perf_counter(), time.process_time()
            if side == "ours":
                mse = train_decoder(encoder, train, test, s, seed=0)[1]["test/reconstruction/mse"]
            else:
                mse = bare_loop(encoder, train, test, s, seed=0)
            timed[side] = (time.perf_counter() - start, time.process_time() - cpu, mse)
        (ours, ours_cpu, ours_mse), (bare, bare_cpu, bare_mse) = timed["ours"], timed["bare"]
        ratios.append(ours / bare)
        cpu_ratios.append(ours_cpu / bare_cpu)
        images = args.epochs * args.train
        print(json.dumps({"pair": i, "ours_s": round(ours, 2), "bare_s": round(bare, 2), "ratio": round(ours / bare, 3),
                          "ours_cpu_s": round(ours_cpu, 2), "bare_cpu_s": round(bare_cpu, 2),
                          "cpu_ratio": round(ours_cpu / bare_cpu, 3),
                          "ours_images_per_s": round(images / ours, 1), "bare_images_per_s": round(images / bare, 1),
                          "first": "ours" if i % 2 == 0 else "bare", "ours_test_mse": ours_mse, "bare_test_mse": bare_mse,
                          "same_result": bool(ours_mse == bare_mse)}), flush=True)
    # CPU seconds: on a shared machine the wall clock mostly measures the neighbours.
    print(json.dumps({"summary": "decoder training, ours / bare loop", "median_ratio": round(statistics.median(ratios), 3),
                      "median_cpu_ratio": round(statistics.median(cpu_ratios), 3), "target": 1.05,
                      "threads": args.threads, "steps_per_run": args.epochs * math.ceil(args.train / 64), "pairs": args.pairs}))


if __name__ == "__main__":
    main()
