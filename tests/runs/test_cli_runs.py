"""`mtlens runs list/show/export`: what they print and write, and the one-line errors with exit code 2."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from _cli import run_cli
from mtlens.cli import runs as runs_cli
from mtlens.runs import RunStore


@pytest.fixture()
def store(tmp_path: Path) -> RunStore:
    store = RunStore(tmp_path / "mtlens.sqlite")
    done = store.create_run("hard_sharing", {"lr": 0.001, "encoder": {"channels": [32, 64]}}, seed=3, name="multi-head")
    store.start(done)
    store.log_metrics(done, 0, {"loss": 2.0, "acc": 0.25})
    store.log_metrics(done, 9, {"loss": 0.5, "acc": 0.875})
    store.finish(done, {"mig": 0.3125})
    broken = store.create_run("single_task", {"lr": 0.1}, seed=4)
    store.start(broken)
    store.log_metrics(broken, 0, {"loss": 9.0})
    store.fail(broken, "loss became nan", step=1)
    return store



def _row(out: str, run_id: str) -> list[str]:
    line = next(line for line in out.splitlines() if run_id in line)
    return _cells(line)


def test_list_shows_each_run_with_status_and_final_metrics(store: RunStore, capsys: pytest.CaptureFixture[str]) -> None:
    done, broken = (r.id for r in store.list_runs())
    code, out, err = run_cli(["runs", "list", "--store", str(store.path)], capsys)
    assert (code, err) == (0, "")
    assert "2 runs in" in out
    header = next(line for line in out.splitlines() if "status" in line)
    assert [h.strip() for h in header.strip("┃ ").split("┃")] == [
        "id", "study", "name", "seed", "status", "started", "duration", "acc", "loss", "mig"
    ]
    row = _row(out, done)
    assert row[:5] == [done, "hard_sharing", "multi-head", "3", "finished"]
    assert row[7:] == ["0.875", "0.5", "0.3125"]  # last acc and loss, summary mig
    assert _row(out, broken)[:5] == [broken, "single_task", "", "4", "failed"]
    assert _row(out, broken)[7:] == ["", "9", ""]


def test_list_filters_and_chooses_metric_columns(store: RunStore, capsys: pytest.CaptureFixture[str]) -> None:
    broken = store.list_runs(status="failed")[0].id
    code, out, _ = run_cli(["runs", "list", "--store", str(store.path), "--status", "failed", "--metric", "loss"], capsys)
    assert code == 0 and "1 run in" in out and "hard_sharing" not in out
    assert _row(out, broken)[4] == "failed" and _row(out, broken)[7:] == ["9"]
    code, out, _ = run_cli(["runs", "list", "--store", str(store.path), "--study", "nothing"], capsys)
    assert code == 0 and out.strip() == f"no runs with study 'nothing' in {store.path}"


def test_show_prints_status_timings_config_metrics_and_artifacts(store: RunStore, capsys: pytest.CaptureFixture[str]) -> None:
    run = store.list_runs(study="hard_sharing")[0]
    code, out, err = run_cli(["runs", "show", run.id[:-1], "--store", str(store.path)], capsys)
    assert (code, err) == (0, "")
    lines = [line.rstrip() for line in out.splitlines()]
    assert f"run          {run.id}" in lines
    assert "status       finished" in lines
    assert f"artifacts    {run.artifacts_dir}" in lines
    assert "duration     " in out and "over 1 attempt(s)" in out
    # config as YAML, keys sorted
    start = lines.index("config")
    assert lines[start + 1 : start + 6] == ["encoder:", "  channels:", "  - 32", "  - 64", "lr: 0.001"]
    metric_rows = {cells[0]: cells[1:] for cells in (_cells(line) for line in lines) if len(cells) >= 2}
    assert metric_rows["acc"] == ["9", "0.875"] and metric_rows["loss"] == ["9", "0.5"]
    assert metric_rows["mig"] == ["0.3125"]


def _cells(line: str) -> list[str]:
    # a table row is "│ a │ b │"; the outer splits are empty
    return [cell.strip() for cell in line.strip().split("│")[1:-1]] if line.startswith("│") else []


def test_show_a_failed_run_prints_its_error_and_json_config(store: RunStore, capsys: pytest.CaptureFixture[str]) -> None:
    run = store.list_runs(status="failed")[0]
    code, out, _ = run_cli(["runs", "show", run.id, "--store", str(store.path), "--json"], capsys)
    assert code == 0
    assert "error        loss became nan (at step 1)" in out
    assert '{\n  "lr": 0.1\n}' in out


def test_export_writes_the_csv(store: RunStore, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_path = tmp_path / "metrics.csv"
    code, out, _ = run_cli(["runs", "export", "--csv", str(out_path), "--store", str(store.path)], capsys)
    assert code == 0 and out.strip() == f"wrote 5 metric rows of 2 runs to {out_path}"
    rows = list(csv.DictReader(out_path.open()))
    assert [(r["study"], r["metric"], r["step"], float(r["value"])) for r in rows] == [
        ("hard_sharing", "acc", "0", 0.25), ("hard_sharing", "acc", "9", 0.875),
        ("hard_sharing", "loss", "0", 2.0), ("hard_sharing", "loss", "9", 0.5),
        ("single_task", "loss", "0", 9.0),
    ]
    code, out, _ = run_cli(["runs", "export", "--csv", "-", "--store", str(store.path), "--study", "single_task"], capsys)
    assert code == 0 and out.splitlines()[0].startswith("run_id,study,") and len(out.splitlines()) == 2


def test_unknown_run_id_is_one_line_and_exit_code_2(store: RunStore, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["runs", "show", "abc", "--store", str(store.path)], capsys)
    assert code == 2 and out == ""
    assert err == f"error: no run 'abc' in {store.path}; `mtlens runs list` shows the ids\n"


def test_user_errors_exit_2(store: RunStore, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.sqlite"
    code, _, err = run_cli(["runs", "list", "--store", str(missing)], capsys)
    assert code == 2 and err.startswith(f"error: no run store at {missing}") and not missing.exists()
    code, _, err = run_cli(["runs", "list", "--store", str(store.path), "--status", "done"], capsys)
    assert code == 2 and err.startswith("error: unknown run status 'done'; use one of created, running")
    run_id = store.list_runs()[0].id
    code, _, err = run_cli(["runs", "export", "--csv", "-", "--store", str(store.path), "--run", run_id, "--study", "x"], capsys)
    assert code == 2 and "not both" in err


def test_sub_app_runs_under_typer_cli_runner(store: RunStore) -> None:
    result = CliRunner().invoke(runs_cli.app, ["list", "--store", str(store.path)])
    assert result.exit_code == 0
    assert "hard_sharing" in result.output and "single_task" in result.output


def test_rm_dry_run_then_remove_by_status_and_by_id(store: RunStore, capsys: pytest.CaptureFixture[str]) -> None:
    done, broken = (r.id for r in store.list_runs())
    folder = store.artifacts_dir(broken)
    (folder / "checkpoint.pt").write_bytes(b"x")
    code, out, err = run_cli(["runs", "rm", "--status", "failed", "--dry-run", "--store", str(store.path)], capsys)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"would remove {broken} (single_task, failed): 1 metric rows, folder {folder.resolve()}",
        f"would remove 1 run (1 metric rows) from {store.path}",
    ]
    assert len(store.list_runs()) == 2 and folder.is_dir()
    code, out, _ = run_cli(["runs", "rm", "--status", "failed", "--store", str(store.path)], capsys)
    assert code == 0 and out.splitlines()[-1] == f"removed 1 run (1 metric rows) from {store.path}"
    assert [r.id for r in store.list_runs()] == [done] and not folder.exists() and store.count_metrics() == 4
    code, out, _ = run_cli(["runs", "rm", done[:-1], "--store", str(store.path)], capsys)
    assert code == 0 and out.startswith(f"removed {done} (hard_sharing multi-head, finished): 4 metric rows")
    assert store.list_runs() == []


def test_a_killed_run_is_shown_dead_with_no_growing_duration(store: RunStore, capsys: pytest.CaptureFixture[str]) -> None:
    import sqlite3
    import subprocess
    import sys

    killed = store.create_run("hard_sharing", {"lr": 0.01}, seed=5, name="killed")
    store.start(killed)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    with sqlite3.connect(store.path) as conn:
        conn.execute("UPDATE runs SET pid = ?, last_started_at = last_started_at - 7200 WHERE id = ?", (child.pid, killed))
    conn.close()
    code, out, _ = run_cli(["runs", "list", "--store", str(store.path)], capsys)
    assert code == 0 and _row(out, killed)[4:7][0] == "dead" and _row(out, killed)[6] == "?"
    code, out, _ = run_cli(["runs", "list", "--status", "dead", "--store", str(store.path)], capsys)
    assert code == 0 and "1 run in" in out and killed in out
    code, out, _ = run_cli(["runs", "show", killed, "--store", str(store.path)], capsys)
    assert code == 0
    assert f"status       dead (stored as running, but process {child.pid} on" in out
    assert "`mtlens train --resume` continues it" in out
    assert "duration     0.0s over 1 attempt(s), plus the killed attempt (its end is unknown)" in out
