"""Shapes3D images/s: the procedural renderer on demand vs chunked reads from an official-layout 3dshapes.h5.

Prints JSON lines: renderer throughput with a cold cache (pixel maps built as batches need them) and a warm
one (pure lookup), the h5 reader on the same random indices (a temp file in the real layout, first
`--filled` images non-zero and gzip-compressed like a repacked file), and the renderer/file ratios.

    .venv/bin/python benchmarks/bench_shapes3d.py [--batches 20] [--batch-size 256] [--filled 20000]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch

from mtlens.data.shapes3d import FACTOR_SIZES, NUM_IMAGES, Shapes3D, readme_value_table


def write_file(path: Path, filled: int, seed: int) -> None:
    """Writes a 3dshapes.h5 in the official layout; rows below `filled` hold noise-free rendered-like images."""
    table = readme_value_table()
    cls = np.stack(np.unravel_index(np.arange(NUM_IMAGES), FACTOR_SIZES), axis=1)
    labels = np.stack([table[k][cls[:, k]] for k in range(len(FACTOR_SIZES))], axis=1)
    src = Shapes3D()
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        ds = f.create_dataset(
            "images", shape=(NUM_IMAGES, 64, 64, 3), dtype=np.uint8, chunks=(1, 64, 64, 3), compression="gzip"
        )
        # real-looking content so gzip works on images like the real ones, in blocks to bound memory
        for start in range(0, filled, 1000):
            idx = np.arange(start, min(start + 1000, filled))
            imgs = src.images(rng.integers(0, NUM_IMAGES, size=len(idx)))
            ds[start : start + len(idx)] = (imgs.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
        f.create_dataset("labels", data=labels, chunks=(8192, 6), compression="gzip", shuffle=True)


def timed(fn, batches: list[np.ndarray]) -> float:
    """Returns images/s of `fn` over the batches."""
    start = time.perf_counter()
    n = 0
    for b in batches:
        out = fn(b)
        n += len(out)
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--filled", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    common = {"batch_size": args.batch_size, "batches": args.batches, "torch_threads": torch.get_num_threads(),
              "machine": platform.machine()}

    rng = np.random.default_rng(args.seed)
    render_batches = [rng.integers(0, NUM_IMAGES, size=args.batch_size) for _ in range(args.batches)]
    renderer = Shapes3D()
    t0 = time.perf_counter()
    cold = timed(renderer.images, render_batches)
    cold_s = time.perf_counter() - t0
    print(json.dumps({"bench": "shapes3d_render_cold", "images_per_s": round(cold, 1), "seconds": round(cold_s, 2),
                      "pixel_maps_built": int(renderer.renderer._filled.sum()), **common}))
    t0 = time.perf_counter()
    renderer.renderer.precompute()
    print(json.dumps({"bench": "shapes3d_render_precompute", "seconds": round(time.perf_counter() - t0, 2),
                      "pixel_maps": 480}))
    warm = timed(renderer.images, render_batches)
    print(json.dumps({"bench": "shapes3d_render_warm", "images_per_s": round(warm, 1), **common}))

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        write_file(Path(tmp) / "3dshapes.h5", args.filled, args.seed)
        size = (Path(tmp) / "3dshapes.h5").stat().st_size
        print(json.dumps({"bench": "shapes3d_h5_write", "seconds": round(time.perf_counter() - t0, 2),
                          "filled": args.filled, "bytes": size}))
        official = Shapes3D(tmp)
        # The same number of random rows, drawn inside the filled part so every read decompresses real data.
        file_batches = [rng.integers(0, args.filled, size=args.batch_size) for _ in range(args.batches)]
        wide_batches = [rng.integers(0, NUM_IMAGES, size=args.batch_size) for _ in range(args.batches)]
        filed = timed(official.images, file_batches)
        wide = timed(official.images, wide_batches)
        print(json.dumps({"bench": "shapes3d_h5_read", "images_per_s": round(filed, 1), "rows": "filled", **common}))
        print(json.dumps({"bench": "shapes3d_h5_read", "images_per_s": round(wide, 1), "rows": "all (mostly "
                          "unallocated chunks)", **common}))
    print(json.dumps({"bench": "shapes3d_ratio", "render_cold_over_file": round(cold / filed, 3),
                      "render_warm_over_file": round(warm / filed, 3)}))


if __name__ == "__main__":
    main()
