"""Study engine: one preset end to end (`mtlens reproduce`, fresh store) on each backend, as JSON lines.

Compares in one run: the process pool (2 workers x 1 torch thread on 2 cores) against serial (1 process x 2
threads): wall ratio, goal <= 0.75; and Ray (a local instance, started by the command) against the pool:
per-cell overhead = (Ray wall - Ray start-up - pool wall) / cells, goal <= 1 s. Each run is a fresh process
(imports, workers and report included), so the numbers are what a user waits for.

    python benchmarks/bench_engine.py                          # hard-sharing quick on serial, pool, ray
    python benchmarks/bench_engine.py --backends serial,pool --set train.epochs=1
"""

from __future__ import annotations

import argparse
import json
import os
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
    args = parser.parse_args()
    backends = args.backends.split(",")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for backend in backends:
            workers, threads = (1, args.cores) if backend == "serial" else (args.cores, 1)
            results[backend] = run(args.study, args.preset, backend, workers, threads, args.sets, Path(tmp))
            print(json.dumps(results[backend]), flush=True)
    load = os.getloadavg()[0]
    if "serial" in results and "pool" in results:
        print(json.dumps({"bench": "engine", "compare": "pool_over_serial", "ratio": round(
            results["pool"]["wall_s"] / results["serial"]["wall_s"], 3), "goal": 0.75, "load_avg_1min": load}))
    if "ray" in results and "pool" in results:
        start = ray_startup(args.cores)
        per_cell = (results["ray"]["wall_s"] - start - results["pool"]["wall_s"]) / results["ray"]["cells"]
        print(json.dumps({"bench": "engine", "compare": "ray_minus_pool_per_cell_s", "value": round(per_cell, 3),
                          "ray_startup_s": round(start, 2), "goal": 1.0, "load_avg_1min": load}))


if __name__ == "__main__":
    main()
