"""A run killed with SIGKILL mid-epoch and resumed ends with the same numbers as an uninterrupted run."""

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from mtlens.runs import RunStore

CONFIG = """
study: hard_sharing
preset: test
seeds: [0]
variants: [multi_head]
data: {dataset: tiny, n_tasks: 2, task_seed: 0}
train: {epochs: 3, batch_size: 16, progress: false, log_every: 1, device: cpu}
"""

SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from mtlens.studies import load_study_config, run_study
    from mtlens.training import Trainer

    config, store, kill_at, resume = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
    if kill_at >= 0:
        original = Trainer.train_step
        def train_step(self, batch):
            if self.global_step == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no status update: a hard kill
            return original(self, batch)
        Trainer.train_step = train_step
    # serial: the cell runs in this process, where Trainer is patched; a rerun resumes unfinished cells by itself
    run_study(load_study_config(config, [f"store={store}"]), backend="serial", display=False)
    """
)


def _run(tmp_path: Path, store: Path, kill_at: int, resume: bool) -> subprocess.CompletedProcess:
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, str(script), str(tmp_path / "c.yaml"), str(store), str(kill_at), "1" if resume else "0"],
        capture_output=True, text=True, env=env, timeout=300,
    )


def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(CONFIG)
    clean = _run(tmp_path, tmp_path / "clean.sqlite", -1, False)
    assert clean.returncode == 0, clean.stderr

    killed_store = tmp_path / "killed.sqlite"
    killed = _run(tmp_path, killed_store, 13, False)  # epoch 2 of 3, 3 steps in (10 steps per epoch)
    assert killed.returncode == -signal.SIGKILL
    [run] = RunStore(killed_store).list_runs()
    assert run.status == "running"  # killed before it could say anything
    resumed = _run(tmp_path, killed_store, -1, True)
    assert resumed.returncode == 0, resumed.stderr

    [done] = RunStore(killed_store).list_runs()
    [ref] = RunStore(tmp_path / "clean.sqlite").list_runs()
    assert done.id == run.id and done.status == "finished" and done.attempts == 2
    assert done.summary == ref.summary and any(k.startswith("test/") for k in done.summary)
    # every logged metric (including the replayed steps) equals the uninterrupted run's, no duplicates
    a = [(m.name, m.step, m.value) for m in RunStore(killed_store).metrics(done.id) if not m.name.startswith("time/")]
    b = [(m.name, m.step, m.value) for m in RunStore(tmp_path / "clean.sqlite").metrics(ref.id) if not m.name.startswith("time/")]
    assert a == b
