"""Study engine: one preset end to end (`mtlens reproduce`, fresh store) on each backend, as JSON lines.

Compares in one run: the process pool (2 workers x 1 torch thread on 2 cores) against serial (1 process x 2
threads): wall ratio, goal <= 0.75; and Ray (a local instance, started by the command) against the pool:
per-cell overhead = (Ray wall - Ray start-up - pool wall) / cells, goal <= 1 s. Each run is a fresh process
(imports, workers and report included), so the numbers are what a user waits for.

    python benchmarks/bench_engine.py                          # hard-sharing quick on serial, pool, ray
    python benchmarks/bench_engine.py --backends serial,pool --set train.epochs=1
    python benchmarks/bench_engine.py --backends pool,ray --repeat 3 --set data.dataset=tiny ...   # overhead

With `--repeat N` the backends run N times interleaved (a shared machine's load then hits each alike) and the
comparisons use each backend's median.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(study: str, preset: str, backend: str, workers: int, threads: int, sets: list[str], folder: Path) -> dict:
    store = folder / backend / "s.sqlite"
    argv = [sys.executable, "-m", "mtlens", "reproduce", study, "--preset", preset, "--store", str(store), "--quiet",
            "--backend", backend, "--threads", str(threads)]
    if backend != "serial":
        argv += ["--workers", str(workers)]
    for kv in sets:
        argv += ["--set", kv]
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{backend} run failed:\n{proc.stderr[-3000:]}")
    cells = int(proc.stdout.split(" cells finished")[0].split()[-1])
    return {"bench": "engine", "study": study, "preset": preset, "backend": backend,
            "workers": 1 if backend == "serial" else workers, "threads": threads, "cells": cells, "wall_s": round(wall, 2)}


def ray_startup(cpus: int) -> float:
    """Returns the seconds `ray.init` takes for a local instance (in a fresh process, as the CLI pays it)."""
    code = ("import time; t = time.perf_counter(); import ray; ray.init(num_cpus=%d, include_dashboard=False, "
            "log_to_driver=False); print(time.perf_counter() - t); ray.shutdown()" % cpus)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return float(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", default="hard-sharing")
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--backends", default="serial,pool,ray")
    parser.add_argument("--cores", type=int, default=2, help="workers x threads of the pool, threads of serial")
    parser.add_argument("--set", action="append", default=[], dest="sets")
    parser.add_argument("--repeat", type=int, default=1, help="run the backends this many times, interleaved")
    args = parser.parse_args()
    backends = args.backends.split(",")
    walls: dict[str, list[float]] = {b: [] for b in backends}
    cells = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            for backend in backends:
                workers, threads = (1, args.cores) if backend == "serial" else (args.cores, 1)
                row = run(args.study, args.preset, backend, workers, threads, args.sets, Path(tmp) / str(i))
                walls[backend].append(row["wall_s"])
                cells = row["cells"]
                print(json.dumps({**row, "repeat": i}), flush=True)
    wall = {b: statistics.median(w) for b, w in walls.items()}
    load = round(os.getloadavg()[0], 2)
    if "serial" in wall and "pool" in wall:
        print(json.dumps({"bench": "engine", "compare": "pool_over_serial", "ratio": round(wall["pool"] / wall["serial"], 3),
                          "goal": 0.75, "load_avg_1min": load}))
    if "ray" in wall and "pool" in wall:
        start = statistics.median(ray_startup(args.cores) for _ in range(args.repeat))
        per_cell = (wall["ray"] - start - wall["pool"]) / cells
        print(json.dumps({"bench": "engine", "compare": "ray_minus_pool_per_cell_s", "value": round(per_cell, 3),
                          "ray_startup_s": round(start, 2), "cells": cells, "goal": 1.0, "load_avg_1min": load}))


if __name__ == "__main__":
    main()
