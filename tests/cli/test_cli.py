import json
from pathlib import Path

import pytest

from mtlens.cli import main
from mtlens.runs import RunStore


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    return exc.value.code, out, err


def test_data_commands(tmp_path: Path, capsys) -> None:
    code, out, _ = run(["data", "list"], capsys)
    assert code == 0 and "tiny" in out.split()
    code, out, _ = run(["data", "info", "tiny", "--json"], capsys)
    info = json.loads(out)
    assert code == 0 and [f["size"] for f in info["factors"]] == [3, 8, 8] and info["source"].startswith("renderer")
    code, out, _ = run(["data", "preview", "tiny", "--out", str(tmp_path / "g.png"), "--n", "6"], capsys)
    assert code == 0 and (tmp_path / "g.png").stat().st_size > 1000
    code, out, _ = run(["data", "tasks", "tiny", "--n-tasks", "2", "--n", "0"], capsys)
    assert code == 0 and "task_1" in out


def test_train_end_to_end_with_overrides(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("study: hard_sharing\nvariants: [multi_head, single_task]\nsingle_tasks: [1]\n"
                   "data: {dataset: tiny, n_tasks: 2}\ntrain: {epochs: 1, batch_size: 32, progress: false}\n")
    store = tmp_path / "runs" / "s.sqlite"
    code, out, _ = run(["train", "--config", str(cfg), "--store", str(store), "--set", "model.latent_dim=4",
                        "--backend", "serial", "--quiet"], capsys)
    assert code == 0 and "2 cells finished, 0 failed" in out
    runs = RunStore(store).list_runs()
    assert sorted(r.name for r in runs) == ["seed0/multi_head", "seed0/single_task/task_1"]
    assert all(r.config["model"]["latent_dim"] == 4 for r in runs)
    report = tmp_path / "runs" / "reports" / "hard_sharing_custom"
    assert (report / "figures" / "figure-1.png").exists() and "task_1" in (report / "report.md").read_text()
    # running it again skips the finished cells instead of training again
    code, out, _ = run(["train", "--config", str(cfg), "--store", str(store), "--set", "model.latent_dim=4",
                        "--backend", "serial", "--quiet"], capsys)
    assert code == 0 and "0 cells finished, 0 failed, 2 already finished" in out and len(RunStore(store).list_runs()) == 2
    code, _, err = run(["train", "--config", str(cfg), "--set", "train.epoch=3"], capsys)
    assert code == 2 and "unknown config key 'train.epoch'; valid keys here: batch_size" in err


def test_eval_scores_a_trained_run_and_stores_the_metrics(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("study: hard_sharing\nvariants: [multi_head]\ndata: {dataset: tiny, n_tasks: 2}\n"
                   "train: {epochs: 1, batch_size: 32, progress: false}\n")
    store = tmp_path / "s.sqlite"
    assert run(["train", "--config", str(cfg), "--store", str(store), "--backend", "serial", "--quiet"], capsys)[0] == 0
    [r] = RunStore(store).list_runs()
    code, out, err = run(["eval", r.id[:10], "--store", str(store), "--metrics", "mig,sap",
                          "--setting", "mig.num_train=300", "--setting", "sap.num_train=300",
                          "--setting", "sap.num_test=100"], capsys)
    assert code == 0, err
    stored = {m.name: m.value for m in RunStore(store).metrics(r.id)}
    assert 0 <= stored["mig"] <= 1 and 0 <= stored["sap"] <= 1
    # the same seed gives the same scores
    run(["eval", r.id, "--store", str(store), "--metrics", "mig", "--setting", "mig.num_train=300"], capsys)
    assert {m.name: m.value for m in RunStore(store).metrics(r.id)}["mig"] == stored["mig"]
    code, _, err = run(["eval", "zzz", "--store", str(store)], capsys)
    assert code == 2 and "no run 'zzz'" in err
