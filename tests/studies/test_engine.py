"""The engine: same records on every backend, a SIGKILLed worker's cell is retried and resumes without duplicates
(a SIGKILLed driver: tests/training/test_resume.py), a failing cell is retried once then recorded (and reported)
as failed."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from mtlens.runs import RunStore
from mtlens.studies import load_study_config, run_study, sweep

TINY = ("study: hard_sharing\nvariants: [multi_head, random]\ndata: {dataset: tiny, n_tasks: 2, subset: 96}\n"
        "model: {latent_dim: 4, head_hidden: [16]}\ntrain: {epochs: 1, batch_size: 32, log_every: 1}\n")
# Long enough cells (10 steps per epoch, 3 epochs) that a kill lands after the first checkpoint, mid-cell.
KILL = ("study: hard_sharing\nvariants: [multi_head]\n"
        "data: {dataset: tiny, n_tasks: 2, subset: 400, options: {num_positions: 16}}\n"
        "model: {latent_dim: 4, head_hidden: [16]}\ntrain: {epochs: 3, batch_size: 32, log_every: 2}\n")


def _records(store_path: Path) -> dict[tuple[str, str], tuple[str, dict, dict]]:
    """Returns (run config hash, name) -> (status, summary, series without timings) of every run."""
    store = RunStore(store_path)
    out = {}
    for r in store.list_runs():
        series = {k: v for k, v in store.series(r.id).items() if not k.startswith("time/")}
        out[(r.config_hash, r.name)] = (r.status, r.summary, series)
    return out


@pytest.fixture(scope="session")
def ray_local():
    ray = pytest.importorskip("ray", reason="the Ray backend test needs the extra: pip install 'mtlens[ray]'")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_a_sweep_gives_the_same_records_on_serial_pool_and_ray(tmp_path: Path, ray_local) -> None:
    (tmp_path / "c.yaml").write_text(TINY)
    records = {}
    for backend in ("serial", "pool", "ray"):
        store = tmp_path / backend / "s.sqlite"
        result = sweep(tmp_path / "c.yaml", ["train.lr=1e-3,1e-2"], [f"store={store}"], backend=backend,
                       workers=2 if backend != "serial" else None, threads=1, display=False)
        assert (result.finished, result.failed, result.skipped) == (4, 0, 0)
        assert result.reports[0].name == "report.html" and len(result.reports) == 3  # index + one per point
        records[backend] = _records(store)
    assert len(records["serial"]) == 4
    assert records["pool"] == records["serial"]
    assert records["ray"] == records["serial"]
    # a second sweep finds every cell finished
    again = sweep(tmp_path / "c.yaml", ["train.lr=1e-3,1e-2"], [f"store={tmp_path / 'serial' / 's.sqlite'}"],
                  backend="serial", threads=1, display=False)
    assert (again.finished, again.skipped) == (0, 4)


def _worker_pids() -> list[int]:
    """Returns the pool workers among this process's children (spawned interpreters, not the resource tracker)."""
    pids = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        for pid in (task / "children").read_text().split():
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
            if b"spawn_main" in cmd:
                pids.append(int(pid))
    return pids


def _kill_after_first_checkpoint(root: Path, kill: Callable[[], None], timeout: float = 300) -> threading.Thread:
    def watch() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(root.glob("artifacts/*/checkpoint.pt")):
                kill()
                return
            time.sleep(0.01)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.fixture(scope="module")
def clean_kill_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("clean")
    (folder / "c.yaml").write_text(KILL)
    run_study(load_study_config(folder / "c.yaml", [f"store={folder / 's.sqlite'}"]), backend="serial", threads=1,
              display=False)
    return _records(folder / "s.sqlite")


def test_a_sigkilled_worker_is_retried_and_its_cell_resumes_without_duplicates(tmp_path: Path, clean_kill_run) -> None:
    (tmp_path / "c.yaml").write_text(KILL)
    killed: list[int] = []

    def kill() -> None:
        for pid in _worker_pids():
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    watcher = _kill_after_first_checkpoint(tmp_path, kill)
    cfg = load_study_config(tmp_path / "c.yaml", [f"store={tmp_path / 's.sqlite'}"])
    result = run_study(cfg, backend="pool", workers=1, threads=1, display=False)
    watcher.join()
    assert killed and (result.finished, result.failed) == (1, 0)
    [run] = RunStore(tmp_path / "s.sqlite").list_runs()
    assert run.status == "finished" and run.attempts == 2
    assert _records(tmp_path / "s.sqlite") == clean_kill_run  # resumed from its checkpoint: same rows, once each


def test_a_non_finite_cell_is_retried_once_then_recorded_and_reported_as_failed(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(TINY)
    cfg = load_study_config(tmp_path / "c.yaml", [f"store={tmp_path / 's.sqlite'}", "train.lr=1e12",
                                                  "variants=[multi_head]"])
    result = run_study(cfg, backend="serial", threads=1, display=False)
    assert (result.finished, result.failed) == (0, 1)
    [run] = RunStore(tmp_path / "s.sqlite").list_runs()
    assert run.status == "failed" and run.attempts == 2
    assert run.error.startswith("non-finite loss at step") and run.error.endswith("(after 2 attempts)")
    report = result.report_html.with_suffix(".md").read_text()
    assert f"- seed0/multi_head (run {run.id}): non-finite loss" in report and "1 failed" in report
