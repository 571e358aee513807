"""benchmarks/bench_decoder.py compares like with like: the Trainer's decoder run and the bare loop end at the
same test error (same decoder, initialisation, batches, optimiser and schedule)."""

import json
import subprocess
import sys
from pathlib import Path


def test_bench_decoder_runs_the_same_training_on_both_sides() -> None:
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, str(root / "benchmarks" / "bench_decoder.py"), "--pairs", "2", "--train", "32",
                          "--test", "8", "--epochs", "2", "--threads", "1"],
                         capture_output=True, text=True, check=True, env={"PYTHONPATH": str(root / "src"), "OMP_NUM_THREADS": "1"})
    *pairs, summary = [json.loads(line) for line in out.stdout.splitlines()]
    assert [p["first"] for p in pairs] == ["ours", "bare"]
    assert all(p["same_result"] and p["ours_test_mse"] == p["bare_test_mse"] > 0 for p in pairs)
    assert pairs[0]["ours_test_mse"] == pairs[1]["ours_test_mse"]  # seeded: every run is the same training
    assert summary["steps_per_run"] == 2 and summary["pairs"] == 2 and summary["median_ratio"] > 0
