"""The store under misuse: read-only opening, dead runs, removing runs, damaged files, unwritable exports."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from mtlens.errors import MtlensError
from mtlens.runs import DEAD, RunStore


def dead_pid() -> int:
    """Returns the pid of a process that has exited (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def kill_owner(store: RunStore, run_id: str) -> None:
    """Makes a running run look like its process was killed: its owner pid is one that is gone."""
    with sqlite3.connect(store.path) as conn:
        conn.execute("UPDATE runs SET pid = ? WHERE id = ?", (dead_pid(), run_id))
    conn.close()


def damage(path: Path) -> None:
    """Overwrites every page after the schema page with garbage, as a failing disk or a bad copy would."""
    page = 4096
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        for number in range(1, size // page):
            handle.seek(number * page)
            handle.write(bytes((number * 37 + i) % 251 for i in range(page)))


@pytest.fixture()
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "mtlens.sqlite")


@pytest.mark.parametrize("kwargs", [{"read_only": True}, {"create": False}])
def test_an_empty_file_is_not_a_store_and_stays_empty(tmp_path: Path, kwargs: dict) -> None:
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    with pytest.raises(MtlensError, match="empty.sqlite is empty, not a run store"):
        RunStore(empty, **kwargs)
    assert empty.stat().st_size == 0 and sorted(p.name for p in tmp_path.iterdir()) == ["empty.sqlite"]


def test_a_read_only_store_reads_and_refuses_writes(store: RunStore) -> None:
    run_id = store.create_run("s", {"a": 1}, seed=0)
    store.close()
    reader = RunStore(store.path, read_only=True)
    assert [r.id for r in reader.list_runs()] == [run_id]
    with pytest.raises(MtlensError, match="opened read-only"):
        reader.create_run("s", {}, seed=1)
    reader.close()
    assert [p.name for p in store.path.parent.iterdir()] == ["mtlens.sqlite"]  # no WAL side files left behind


def test_a_running_run_whose_process_is_gone_is_dead(store: RunStore) -> None:
    alive = store.create_run("s", {}, seed=0)
    store.start(alive)  # owned by this process: alive
    killed = store.create_run("s", {}, seed=1)
    store.start(killed)
    kill_owner(store, killed)
    assert store.get_run(alive).state == "running" and not store.get_run(alive).dead
    run = store.get_run(killed)
    assert run.status == "running" and run.state == DEAD and run.dead
    assert [r.id for r in store.list_runs(status="dead")] == [killed]
    assert [r.id for r in store.list_runs(status="running")] == [alive]
    # the killed attempt has no known end: its duration does not grow with the clock
    assert run.timings.elapsed(run.state, run.timings.last_started_at + 3600) == 0.0
    store.start(killed)  # resumes as before
    assert store.get_run(killed).state == "running" and store.get_run(killed).attempts == 2


def test_remove_runs_deletes_rows_metrics_and_the_artifacts_folder(store: RunStore) -> None:
    keep, gone = store.create_run("s", {}, seed=0), store.create_run("s", {}, seed=1)
    for run_id in (keep, gone):
        store.log_metrics(run_id, 0, {"loss": 1.0, "acc": 0.5})
        (store.artifacts_dir(run_id) / "checkpoint.pt").write_bytes(b"x")
    [planned] = store.remove_runs([gone], dry_run=True)
    assert planned.metric_rows == 2 and planned.artifacts_dir == store.get_run(gone).artifacts_dir.resolve()
    assert len(store.list_runs()) == 2 and store.count_metrics() == 4 and planned.artifacts_dir.is_dir()
    [removed] = store.remove_runs([gone])
    assert removed.run.id == gone and removed.metric_rows == 2
    assert [r.id for r in store.list_runs()] == [keep] and store.count_metrics() == 2
    assert not removed.artifacts_dir.exists() and store.get_run(keep).artifacts_dir.is_dir()
    with pytest.raises(MtlensError, match=f"no run '{gone}'"):
        store.remove_runs([gone])


def test_remove_refuses_a_live_running_run_unless_forced(store: RunStore) -> None:
    run_id = store.create_run("s", {}, seed=0)
    store.start(run_id)
    with pytest.raises(MtlensError, match="is running .*stop it first, or pass --force"):
        store.remove_runs([run_id])
    assert store.remove_runs([run_id], force=True)[0].run.id == run_id and store.list_runs() == []


def test_remove_never_deletes_a_folder_the_store_does_not_own(store: RunStore, tmp_path: Path) -> None:
    run_id = store.create_run("s", {}, seed=0)
    elsewhere = tmp_path / "precious"
    elsewhere.mkdir()
    (elsewhere / "thesis.tex").write_text("keep me")
    with sqlite3.connect(store.path) as conn:  # a store edited (or crafted) to point outside its folder
        conn.execute("UPDATE runs SET artifacts_dir = ? WHERE id = ?", (str(elsewhere), run_id))
    conn.close()
    [removed] = store.remove_runs([run_id])
    assert removed.artifacts_dir is None and (elsewhere / "thesis.tex").read_text() == "keep me"


def test_a_damaged_store_is_one_line_naming_the_file_and_integrity_check(tmp_path: Path) -> None:
    path = tmp_path / "damaged.sqlite"
    with RunStore(path) as store:
        for seed in range(40):
            run_id = store.create_run("s", {"pad": "x" * 400, "seed": seed}, seed=seed)
            store.log_metrics(run_id, 0, {f"m{k}": float(k) for k in range(40)})
    damage(path)
    with pytest.raises(MtlensError) as err:
        store = RunStore(path, read_only=True)
        store.get_run(store.list_runs()[0].id)
    message = str(err.value)
    assert str(path) in message and "PRAGMA integrity_check" in message and "\n" not in message


def test_export_to_an_unwritable_place_is_one_line_and_leaves_no_file(store: RunStore, tmp_path: Path) -> None:
    run_id = store.create_run("s", {}, seed=0)
    store.log_metrics(run_id, 0, {"loss": 1.0})
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(MtlensError, match="a_file is a file, not a folder"):
        store.export_csv(blocker / "m.csv")
    with pytest.raises(MtlensError, match="it is a folder"):
        store.export_csv(tmp_path)
    out = tmp_path / "m.csv"
    assert store.export_csv(out) == 1 and out.read_text().count("\n") == 2
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporary file left
