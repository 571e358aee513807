"""Benchmark: dSprites images per second, drawn on demand vs read from a memory-mapped file, in one run.

Prints JSON lines: the mask-table build time; the one-off cost of opening a compressed official-format file
(decompressing `imgs` into the bit-packed cache, mtlens.data.npz) with `np.load` of the same member as the
peer; then per batch size (256, 4096 random indices) the procedural renderer's rate and, as peers, the rate
of reading the same number of images from plain numpy memory maps of the two storage layouts (a uint8 .npy,
the bit-packed cache) and through the file reader itself (`DSprites.from_file` on a STORED npz, memory-mapped
in place, and on a compressed npz, read from its cache). The files hold the renderer's images of a complete
25,920-image grid (posX, posY in 0..5), warm in the page cache. `cpu_images_per_s` uses this process's CPU
time, which tells less about other load on the machine than the wall-clock rate does.

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

from mtlens.data.dsprites import OFFICIAL_FILE, DSprites, shape_masks
from mtlens.data.dsprites_render import FACTOR_SIZES

FILE_GRID = (1, 3, 6, 40, 6, 6)  # a complete grid in the official layout: 25,920 images


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


def official_files(folder: Path, ds: DSprites) -> tuple[Path, Path]:
    """Returns (stored, compressed) official-format npz files of FILE_GRID holding the renderer's images."""
    n = int(np.prod(FILE_GRID))
    classes = np.stack(np.unravel_index(np.arange(n), FILE_GRID), axis=1).astype(np.int64)
    values = np.stack([ds.factor_value_table[k][classes[:, k]] for k in range(6)], axis=1)
    arrays = {"imgs": ds.images(ds.index_of(classes))[:, 0].numpy().astype(np.uint8),
              "latents_values": values, "latents_classes": classes}
    (folder / "stored").mkdir()
    (folder / "compressed").mkdir()
    np.savez(folder / "stored" / OFFICIAL_FILE, **arrays)
    np.savez_compressed(folder / "compressed" / OFFICIAL_FILE, **arrays)
    return folder / "stored" / OFFICIAL_FILE, folder / "compressed" / OFFICIAL_FILE


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
        stored_path, compressed_path = official_files(Path(tmp), ds)
        t = time.perf_counter()
        with np.load(compressed_path) as npz:
            npz["imgs"]
        peer = time.perf_counter() - t
        t = time.perf_counter()
        from_compressed = DSprites.from_file(compressed_path, expected_sizes=None)
        first_open = time.perf_counter() - t
        print(json.dumps({"bench": "dsprites", "what": "open_compressed_file", "images": int(np.prod(FILE_GRID)),
                          "first_open_s": round(first_open, 3), "np_load_imgs_s": round(peer, 3),
                          "ratio_first_open_over_np_load": round(first_open / peer, 3)}))
        from_stored = DSprites.from_file(stored_path, expected_sizes=None)
        n_file = len(from_stored)

        def read_plain(idx: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.asarray(plain[idx]).astype(np.float32)).unsqueeze(1)

        def read_packed(idx: np.ndarray) -> torch.Tensor:
            bits = np.unpackbits(packed[idx], axis=1).reshape(-1, 64, 64)
            return torch.from_numpy(bits.astype(np.float32)).unsqueeze(1)

        for batch in (256, 4096):
            k = max(1, args.images // batch)
            grid_batches = [rng.integers(0, n_total, batch) for _ in range(k)]
            file_batches = [rng.integers(0, args.file_images, batch) for _ in range(k)]
            reader_batches = [rng.integers(0, n_file, batch) for _ in range(k)]
            rend = rate(ds.images, grid_batches)
            row = {"bench": "dsprites", "batch": batch, "images": k * batch}
            rates = {"images_per_s": round(rend[0]), "cpu_images_per_s": round(rend[1])}
            print(json.dumps({**row, "what": "procedural", **rates}))
            peers = (("file_uint8_mmap", read_plain, file_batches), ("file_packed_mmap", read_packed, file_batches),
                     ("reader_stored_npz", from_stored.images, reader_batches),
                     ("reader_compressed_npz_cache", from_compressed.images, reader_batches))
            for name, fn, batches in peers:
                peer = rate(fn, batches)
                rates = {"images_per_s": round(peer[0]), "cpu_images_per_s": round(peer[1])}
                ratios = {"ratio_renderer_over_file": round(rend[0] / peer[0], 3),
                          "cpu_ratio_renderer_over_file": round(rend[1] / peer[1], 3)}
                print(json.dumps({**row, "what": name, **rates, **ratios}))


if __name__ == "__main__":
    main()
