"""Benchmark: MPI3D images per second, the procedural stand-in vs the official-file path, in one run.

Prints JSON lines: the stand-in renderer's build time, the time to fill its sprite cache on a first pass, then
per batch size (256, 4096 random indices) the stand-in's rate and, as the peer, the rate of the official-file
path (MPI3D with a STORED official-format npz memory-mapped in place, warm in the page cache; the file holds a
smaller grid through a patched size table, 20 x 20 axes = 259,200 images, 3.2 GB) and the ratio stand-in /
file; last, a compressed file (4 x 4 axes, 10,368 images): the one-off decompression into the cache
(mtlens.data.npz) with `np.load` of the member as the peer, and the rate of reading from that cache.
`cpu_images_per_s` uses this process's CPU time, which says less about other load on the machine than the
wall-clock rate does.

Run: .venv/bin/python benchmarks/bench_mpi3d.py
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from mtlens.data import mpi3d
from mtlens.data.mpi3d import MPI3D, _renderer


def rate(fn: Callable[[np.ndarray], torch.Tensor], batches: list[np.ndarray]) -> tuple[float, float]:
    """Returns (wall-clock images/s, CPU images/s) of fn over the batches, after one warm-up call."""
    fn(batches[0])
    n = sum(len(b) for b in batches)
    t0, c0 = time.perf_counter(), time.process_time()
    for b in batches:
        fn(b)
    return n / (time.perf_counter() - t0), n / (time.process_time() - c0)


def main() -> None:
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    stand_in = MPI3D("toy")
    renderer = _renderer(stand_in.variant)
    print(json.dumps({"measure": "stand_in_build_s", "value": round(time.perf_counter() - t0, 3)}))
    t0 = time.perf_counter()
    for _ in range(10):
        stand_in.images(rng.integers(0, len(stand_in), 10_000))
    print(
        json.dumps(
            {"measure": "sprite_cache_fill_s", "images": 100_000, "value": round(time.perf_counter() - t0, 3),
             "sprites": len(renderer._slots)}
        )
    )
    small = (6, 6, 2, 3, 3, 20, 20)
    mpi3d.VARIANTS["toy"] = dataclasses.replace(mpi3d.VARIANTS["toy"], factor_sizes=small)
    with tempfile.TemporaryDirectory() as tmp:
        n_file = int(np.prod(small))
        images = rng.integers(0, 256, (n_file, 64, 64, 3), dtype=np.uint8)
        np.savez(Path(tmp) / "mpi3d_toy.npz", images=images)
        official = MPI3D("toy", data_dir=tmp)
        official.images(np.arange(n_file))  # warm the page cache
        for batch in (256, 4096):
            runs = max(2, 40_000 // batch)
            stand_batches = [rng.integers(0, len(stand_in), batch) for _ in range(runs)]
            file_batches = [rng.integers(0, n_file, batch) for _ in range(runs)]
            s_wall, s_cpu = rate(stand_in.images, stand_batches)
            f_wall, f_cpu = rate(official.images, file_batches)
            print(
                json.dumps(
                    {
                        "measure": "images_per_s",
                        "batch": batch,
                        "stand_in": round(s_wall),
                        "official_file": round(f_wall),
                        "ratio_stand_in_over_file": round(s_wall / f_wall, 3),
                        "stand_in_cpu_images_per_s": round(s_cpu),
                        "official_file_cpu_images_per_s": round(f_cpu),
                        "threads": torch.get_num_threads(),
                    }
                )
            )
        tiny = (6, 6, 2, 3, 3, 4, 4)
        n_file = int(np.prod(tiny))
        mpi3d.VARIANTS["toy"] = dataclasses.replace(mpi3d.VARIANTS["toy"], factor_sizes=tiny)
        folder = Path(tmp) / "compressed"
        folder.mkdir()
        np.savez_compressed(folder / "mpi3d_toy.npz", images=images[:n_file])
        t0 = time.perf_counter()
        with np.load(folder / "mpi3d_toy.npz") as npz:
            npz["images"]
        peer = time.perf_counter() - t0
        t0 = time.perf_counter()
        compressed = MPI3D("toy", data_dir=folder, cache_dir=Path(tmp) / "cache")
        first_open = time.perf_counter() - t0
        batches = [rng.integers(0, n_file, 4096) for _ in range(10)]
        c_wall, c_cpu = rate(compressed.images, batches)
        print(json.dumps({"measure": "compressed_file", "images": n_file, "first_open_s": round(first_open, 3),
                          "np_load_images_s": round(peer, 3), "ratio_first_open_over_np_load": round(first_open / peer, 3),
                          "cache_images_per_s_batch_4096": round(c_wall), "cache_cpu_images_per_s": round(c_cpu)}))


if __name__ == "__main__":
    main()
