"""The run store: round trips, upsert on replay, status transitions, concurrent writers, CSV export, bad files."""

from __future__ import annotations

import csv
import io
import json
import math
import multiprocessing
import os
import pickle
import re
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest

from mtlens.errors import MtlensError
from mtlens.runs import RunStore, config_hash
from mtlens.runs.ids import new_run_id

CONFIG = {"lr": 0.001, "encoder": {"channels": [32, 64]}, "tasks": 4}


@pytest.fixture()
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "runs" / "mtlens.sqlite")


def test_round_trip_create_start_log_finish(store: RunStore) -> None:
    run_id = store.create_run("hard_sharing", CONFIG, seed=7, name="multi-head")
    created = store.get_run(run_id)
    assert created.status == "created"
    assert created.timings.started_at is None and created.timings.wall_seconds == 0.0
    store.start(run_id)
    store.log_metrics(run_id, 0, {"loss": 2.5, "acc": 0.125})
    store.log_metrics(run_id, 1, {"loss": 1.25, "acc": 0.5})
    store.log_metrics(run_id, 2, {"loss": np.float32(0.75)})
    store.finish(run_id, {"mig": 0.375})

    run = store.get_run(run_id)
    assert (run.id, run.study, run.name, run.seed, run.status) == (run_id, "hard_sharing", "multi-head", 7, "finished")
    assert run.config == CONFIG and run.config_hash == config_hash(CONFIG)
    t = run.timings
    assert t.created_at <= t.started_at <= t.finished_at
    assert t.wall_seconds == pytest.approx(t.finished_at - t.started_at)
    assert run.attempts == 1 and run.pid == os.getpid() and run.error is None
    assert run.summary == {"mig": 0.375} and store.summary(run_id) == {"mig": 0.375}
    assert [tuple(m) for m in store.metrics(run_id)] == [
        ("acc", 0, 0.125), ("acc", 1, 0.5), ("loss", 0, 2.5), ("loss", 1, 1.25), ("loss", 2, 0.75)
    ]
    assert [tuple(m) for m in store.metrics(run_id, "acc")] == [("acc", 0, 0.125), ("acc", 1, 0.5)]
    assert store.series(run_id) == {"acc": [(0, 0.125), (1, 0.5)], "loss": [(0, 2.5), (1, 1.25), (2, 0.75)]}
    assert store.final_metrics(run_id) == {"acc": (1, 0.5), "loss": (2, 0.75)}
    assert store.last_step(run_id) == 2


def test_run_ids_are_dated_unique_and_sort_by_time(store: RunStore) -> None:
    assert re.fullmatch(r"700101-000000-[0-9a-f]{6}", new_run_id(0.0))
    assert new_run_id(1_700_000_000.0) < new_run_id(1_700_000_001.0) < new_run_id(1_800_000_000.0)
    ids = [store.create_run("s", {}, seed=i) for i in range(50)]
    assert len(set(ids)) == 50
    assert [r.id for r in store.list_runs()] == ids  # listed in creation order


def test_replayed_steps_overwrite_instead_of_duplicating(store: RunStore) -> None:
    run_id = store.create_run("s", CONFIG, seed=0)
    store.start(run_id)
    for step in range(5):
        store.log_metrics(run_id, step, {"loss": float(step), "acc": 10.0 + step})
    store.mark_interrupted(run_id)
    # resumed from a checkpoint at step 2: steps 3 and 4 are replayed with new values
    store.start(run_id)
    for step in (3, 4):
        store.log_metrics(run_id, step, {"loss": 100.0 + step, "acc": 200.0 + step})
    assert store.count_metrics(run_id) == 10
    assert store.series(run_id)["loss"] == [(0, 0.0), (1, 1.0), (2, 2.0), (3, 103.0), (4, 104.0)]
    assert store.get_run(run_id).attempts == 2
    # a replay that stops early can drop what lies past the checkpoint
    assert store.delete_metrics_after(run_id, 2) == 4
    assert store.last_step(run_id) == 2 and store.count_metrics(run_id) == 6


def test_store_file_is_in_wal_mode(store: RunStore) -> None:
    assert store.journal_mode() == "wal"
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "1"
    conn.close()


def test_opening_creates_missing_directories(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "store.sqlite"
    RunStore(path)
    assert path.is_file()


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -math.inf])
def test_non_finite_metric_is_rejected_and_nothing_of_the_step_is_written(store: RunStore, bad: float) -> None:
    run_id = store.create_run("s", {}, seed=0)
    with pytest.raises(MtlensError, match=r"metric 'task_2/loss' of run .* is (nan|inf|-inf); .*finite values only"):
        store.log_metrics(run_id, 3, {"task_1/loss": 0.5, "task_2/loss": bad})
    assert store.count_metrics(run_id) == 0


def test_metric_values_and_steps_must_be_numbers(store: RunStore) -> None:
    run_id = store.create_run("s", {}, seed=0)
    with pytest.raises(MtlensError, match="metric 'acc' .* is a str, not a number"):
        store.log_metrics(run_id, 0, {"acc": "high"})
    with pytest.raises(MtlensError, match="metric 'flag' .* is a bool"):
        store.log_metrics(run_id, 0, {"flag": True})
    with pytest.raises(MtlensError, match="metric step must be an integer, got 1.5"):
        store.log_metrics(run_id, 1.5, {"acc": 1.0})
    with pytest.raises(MtlensError, match="metric step is -1"):
        store.log_metrics(run_id, -1, {"acc": 1.0})
    store.log_metrics(run_id, np.int64(4), {"acc": 1.0})
    assert store.last_step(run_id) == 4


def test_fail_records_status_message_and_step(store: RunStore) -> None:
    run_id = store.create_run("s", {}, seed=0)
    store.start(run_id)
    store.log_metrics(run_id, 11, {"loss": 3.0})
    store.fail(run_id, "loss became nan at step 12", step=12)
    run = store.get_run(run_id)
    assert (run.status, run.error, run.error_step) == ("failed", "loss became nan at step 12", 12)
    assert run.timings.finished_at is not None and run.timings.wall_seconds >= 0.0
    with pytest.raises(MtlensError, match="is failed, cannot mark it finished"):
        store.finish(run_id)
    with pytest.raises(MtlensError, match="needs a non-empty message"):
        store.fail(store.create_run("s", {}, seed=1), "  ")


def test_status_transitions(store: RunStore) -> None:
    run_id = store.create_run("s", {}, seed=0)
    with pytest.raises(MtlensError, match="is created, cannot mark it finished"):
        store.finish(run_id)
    store.start(run_id)
    with pytest.raises(MtlensError, match=f"run {run_id} is already running \\(process {os.getpid()}"):
        store.start(run_id)
    store.finish(run_id)
    with pytest.raises(MtlensError, match="is finished; create a new run"):
        store.start(run_id)
    with pytest.raises(MtlensError, match="is finished, cannot mark it interrupted"):
        store.mark_interrupted(run_id)


def _dead_pid() -> int:
    ctx = multiprocessing.get_context("fork")
    proc = ctx.Process(target=os._exit, args=(0,))
    proc.start()
    proc.join()
    return proc.pid


def test_find_resumable_offers_interrupted_and_orphaned_runs_only(store: RunStore) -> None:
    digest = config_hash(CONFIG)
    finished = store.create_run("s", CONFIG, seed=1)
    store.start(finished)
    store.finish(finished)
    failed = store.create_run("s", CONFIG, seed=1)
    store.fail(failed, "diverged")
    assert store.find_resumable("s", digest, 1) is None

    interrupted = store.create_run("s", CONFIG, seed=1)
    store.start(interrupted)
    store.mark_interrupted(interrupted)
    assert store.find_resumable("s", digest, 1).id == interrupted
    assert store.find_resumable("s", digest, 2) is None
    assert store.find_resumable("other", digest, 1) is None
    assert store.find_resumable("s", config_hash({**CONFIG, "tasks": 5}), 1) is None

    # a run whose process was killed stays 'running'; it is resumable only once its pid is gone
    orphan = store.create_run("s", CONFIG, seed=1)
    store.start(orphan)
    assert store.find_resumable("s", digest, 1).id == interrupted  # own process: alive
    conn = sqlite3.connect(store.path)
    with conn:
        conn.execute("UPDATE runs SET pid = ? WHERE id = ?", (_dead_pid(), orphan))
    conn.close()
    assert store.find_resumable("s", digest, 1).id == orphan
    store.start(orphan)
    assert store.get_run(orphan).attempts == 2 and store.get_run(orphan).pid == os.getpid()


def test_artifacts_dir_lies_next_to_the_store_and_is_made_on_demand(store: RunStore) -> None:
    run_id = store.create_run("s", {}, seed=0)
    expected = store.path.parent / "artifacts" / run_id
    assert store.get_run(run_id).artifacts_dir == expected and not expected.exists()
    assert store.artifacts_dir(run_id) == expected and expected.is_dir()


def test_unknown_run_id_names_the_store_and_the_fix(store: RunStore) -> None:
    message = f"no run 'abc' in {store.path}; `mtlens runs list` shows the ids"
    for call in (store.get_run, store.start, store.last_step, lambda r: store.log_metrics(r, 0, {"a": 1.0})):
        with pytest.raises(MtlensError) as err:
            call("abc")
        assert str(err.value) == message


def test_resolve_id_takes_a_unique_prefix(store: RunStore) -> None:
    first = store.create_run("s", {}, seed=0)
    second = store.create_run("s", {}, seed=1)
    assert store.resolve_id(first) == first
    shortest = next(n for n in range(1, len(second) + 1) if not first.startswith(second[:n]))
    assert store.resolve_id(second[:shortest]) == second
    with pytest.raises(MtlensError, match="matches several runs"):
        store.resolve_id(first[:6])
    with pytest.raises(MtlensError, match="no run 'zz'"):
        store.resolve_id("zz")


def test_config_must_be_json_with_finite_numbers(store: RunStore) -> None:
    with pytest.raises(MtlensError, match=r"run config.encoder.path is a PosixPath"):
        store.create_run("s", {"encoder": {"path": Path("/x")}}, seed=0)
    with pytest.raises(MtlensError, match=r"run config.betas\[1\] is nan"):
        store.create_run("s", {"betas": [1.0, float("nan")]}, seed=0)
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_export_csv_writes_one_row_per_metric_value(store: RunStore, tmp_path: Path) -> None:
    a = store.create_run("hard_sharing", {"x": 1}, seed=3, name="mh")
    b = store.create_run("single_task", {"x": 2}, seed=4)
    store.log_metrics(a, 0, {"loss": 0.1 + 0.2})
    store.log_metrics(a, 5, {"loss": 1e-300})
    store.log_metrics(b, 1, {"acc": 0.5})
    out = tmp_path / "metrics.csv"
    assert store.export_csv(out) == 3
    rows = list(csv.DictReader(out.open()))
    assert [(r["run_id"], r["study"], r["run_name"], r["seed"], r["status"], r["metric"], r["step"]) for r in rows] == [
        (a, "hard_sharing", "mh", "3", "created", "loss", "0"),
        (a, "hard_sharing", "mh", "3", "created", "loss", "5"),
        (b, "single_task", "", "4", "created", "acc", "1"),
    ]
    assert [float(r["value"]) for r in rows] == [0.1 + 0.2, 1e-300, 0.5]  # exact round trip
    assert rows[0]["config_hash"] == config_hash({"x": 1})
    buffer = io.StringIO()
    assert store.export_csv(buffer, run_ids=[b]) == 1
    assert buffer.getvalue().splitlines()[1].startswith(f"{b},single_task,,4,created,")
    with pytest.raises(MtlensError, match="folder .*nowhere does not exist; create it first"):
        store.export_csv(tmp_path / "nowhere" / "m.csv")
    with pytest.raises(MtlensError, match="no run 'zz'"):
        store.export_csv(io.StringIO(), run_ids=["zz"])


def test_files_that_are_not_run_stores_are_rejected(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(MtlensError, match="junk.sqlite is not an mtlens run store \\(not an SQLite database"):
        RunStore(junk)

    other = tmp_path / "other.sqlite"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE people (name TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(MtlensError, match="other.sqlite is an SQLite database but not an mtlens run store"):
        RunStore(other)

    newer = tmp_path / "newer.sqlite"
    RunStore(newer).close()
    conn = sqlite3.connect(newer)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(MtlensError, match="schema version 99, this mtlens reads up to 1; upgrade mtlens"):
        RunStore(newer)

    with pytest.raises(MtlensError, match="no run store at .*missing.sqlite"):
        RunStore(tmp_path / "missing.sqlite", create=False)
    assert not (tmp_path / "missing.sqlite").exists()
    with pytest.raises(MtlensError, match="is a directory"):
        RunStore(tmp_path)


def test_a_pickled_store_reconnects(store: RunStore) -> None:
    run_id = store.create_run("s", {}, seed=0)
    clone = pickle.loads(pickle.dumps(store))
    clone.log_metrics(run_id, 0, {"loss": 1.0})
    assert store.final_metrics(run_id) == {"loss": (0, 1.0)}


def test_threads_write_through_their_own_connections(store: RunStore) -> None:
    run_id = store.create_run("s", {}, seed=0)
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for step in range(50):
                store.log_metrics(run_id, step, {f"t{k}": float(step)})
        except BaseException as err:  # surfaced below: a thread's exception would otherwise vanish
            errors.append(err)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.count_metrics(run_id) == 150


WRITES_PER_WORKER = 200


def _worker(store: RunStore, shared_run: str, k: int) -> None:
    # The store object comes from the parent through fork: it must open its own connection.
    own = store.create_run("concurrency", {"worker": k}, seed=k)
    store.start(own)
    for step in range(WRITES_PER_WORKER):
        store.log_metrics(own, step, {"loss": 1.0 / (step + 1), "acc": step / WRITES_PER_WORKER})
        store.log_metrics(shared_run, step, {f"worker_{k}": float(step)})
    store.finish(own, {"steps": float(WRITES_PER_WORKER)})


def test_four_processes_write_at_once_without_losing_rows(store: RunStore) -> None:
    shared_run = store.create_run("concurrency", {"shared": True}, seed=0)
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_worker, args=(store, shared_run, k)) for k in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    workers = [r for r in store.list_runs(study="concurrency") if r.id != shared_run]
    assert sorted(r.seed for r in workers) == [0, 1, 2, 3]
    assert all(r.status == "finished" and r.summary == {"steps": 200.0} for r in workers)
    assert [store.count_metrics(r.id) for r in workers] == [2 * WRITES_PER_WORKER] * 4
    assert store.count_metrics(shared_run) == 4 * WRITES_PER_WORKER
    assert store.count_metrics() == 12 * WRITES_PER_WORKER
    assert store.final_metrics(shared_run) == {f"worker_{k}": (199, 199.0) for k in range(4)}


def test_a_spawned_process_can_use_a_pickled_store(store: RunStore) -> None:
    run_id = store.create_run("s", {}, seed=0)
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=store.log_metrics, args=(run_id, 3, {"loss": 0.25}))
    proc.start()
    proc.join(timeout=60)
    assert proc.exitcode == 0
    assert store.final_metrics(run_id) == {"loss": (3, 0.25)}


def test_stored_config_is_canonical_json(store: RunStore) -> None:
    run_id = store.create_run("s", {"b": 1, "a": [1.5, None, True]}, seed=0)
    conn = sqlite3.connect(store.path)
    stored = conn.execute("SELECT config FROM runs WHERE id = ?", (run_id,)).fetchone()[0]
    conn.close()
    assert stored == '{"a":[1.5,null,true],"b":1}'
    assert json.loads(stored) == store.get_run(run_id).config


def test_a_write_waits_for_the_lock_and_times_out_with_a_clear_error(store: RunStore) -> None:
    run_id = store.create_run("s", {}, seed=0)
    holder = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # another process holding the write lock
    impatient = RunStore(store.path, busy_timeout=0.2)
    with pytest.raises(MtlensError, match="stayed locked by another process for 0.2 s; stop the process"):
        impatient.log_metrics(run_id, 0, {"loss": 1.0})
    release = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
    release.start()
    patient = RunStore(store.path, busy_timeout=10.0)
    patient.log_metrics(run_id, 0, {"loss": 2.0})  # blocks until the holder commits, then writes
    release.join()
    holder.close()
    assert store.final_metrics(run_id) == {"loss": (0, 2.0)}
