"""Benchmark: dSprites images per second, drawn on demand vs read from a memory-mapped file, in one run.

Prints JSON lines: the mask-table build time, then per batch size (256, 4096 random indices) the
procedural renderer's rate and, as the peer, the rate of reading the same number of images through the
file reader's two storage paths: a STORED uint8 .npy member memory-mapped in place, and the bit-packed
decompressed cache (what the compressed official file uses), both holding 20,000 rendered images (warm in
the page cache), and the ratio renderer / file. `cpu_images_per_s` uses this process's CPU time, which
tells less about other load on the machine than the wall-clock rate does.

Run: .venv/bin/python benchmarks/bench_dsprites.py [--images 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from mtlens.data.dsprites import DSprites, shape_masks
from mtlens.data.dsprites_render import FACTOR_SIZES


def rate(fn: Callable[[np.ndarray], torch.Tensor], batches: list[np.ndarray]) -> tuple[float, float]:
    """Returns (wall, cpu) images per second of calling fn on every batch (after one warm-up call)."""
    fn(batches[0])
    t, c = time.perf_counter(), time.process_time()
    for b in batches:
        fn(b)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    n = sum(len(b) for b in batches)
    return n / wall, n / max(cpu, 1e-9)


def write_files(folder: Path, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Returns memory maps of the images as a uint8 .npy and as the bit-packed cache layout."""
    plain, packed = folder / "imgs.npy", folder / "imgs-packed.npy"
    np.save(plain, images.astype(np.uint8))
    np.save(packed, np.packbits(images.astype(np.uint8).reshape(len(images), -1), axis=1))
    return np.load(plain, mmap_mode="r"), np.load(packed, mmap_mode="r")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200_000, help="images per measurement")
    parser.add_argument("--file-images", type=int, default=20_000, help="images in the peer file")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    print(json.dumps({"bench": "dsprites", "cpus": os.cpu_count(), "load_avg_1min": os.getloadavg()[0],
                      "torch_threads": torch.get_num_threads()}))

    t = time.perf_counter()
    table = shape_masks()
    build = {"seconds": round(time.perf_counter() - t, 3), "variants": int(table.counts.size),
             "megabytes": round(table.nbytes / 2**20, 1)}
    print(json.dumps({"bench": "dsprites", "what": "mask_table_build", **build}))
    ds = DSprites(renderer="procedural")
    n_total = int(np.prod(FACTOR_SIZES))
    file_idx = rng.choice(n_total, size=args.file_images, replace=False)
    with tempfile.TemporaryDirectory() as tmp:
        plain, packed = write_files(Path(tmp), ds.images(file_idx)[:, 0].numpy())

        def read_plain(idx: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.asarray(plain[idx]).astype(np.float32)).unsqueeze(1)

        def read_packed(idx: np.ndarray) -> torch.Tensor:
            bits = np.unpackbits(packed[idx], axis=1).reshape(-1, 64, 64)
            return torch.from_numpy(bits.astype(np.float32)).unsqueeze(1)

        for batch in (256, 4096):
            k = max(1, args.images // batch)
            grid_batches = [rng.integers(0, n_total, batch) for _ in range(k)]
            file_batches = [rng.integers(0, args.file_images, batch) for _ in range(k)]
            rend = rate(ds.images, grid_batches)
            row = {"bench": "dsprites", "batch": batch, "images": k * batch}
            rates = {"images_per_s": round(rend[0]), "cpu_images_per_s": round(rend[1])}
            print(json.dumps({**row, "what": "procedural", **rates}))
            for name, fn in (("file_uint8_mmap", read_plain), ("file_packed_mmap", read_packed)):
                peer = rate(fn, file_batches)
                rates = {"images_per_s": round(peer[0]), "cpu_images_per_s": round(peer[1])}
                ratios = {"ratio_renderer_over_file": round(rend[0] / peer[0], 3),
                          "cpu_ratio_renderer_over_file": round(rend[1] / peer[1], 3)}
                print(json.dumps({**row, "what": name, **rates, **ratios}))


if __name__ == "__main__":
    main()
