"""`mtlens train / reproduce / sweep / report`: bad input is one line, exit 2, nothing written; presets ship in
the package and run from any folder; `reproduce --list`; `report` re-renders from the store alone."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from _cli import run_cli
from mtlens.runs import RunStore
from mtlens.studies import load_study_config
from mtlens.studies.runner import plan

TINY = ("study: hard_sharing\nvariants: [multi_head]\ndata: {dataset: tiny, n_tasks: 2, subset: 96}\n"
        "model: {latent_dim: 4, head_hidden: [16]}\ntrain: {epochs: 1, batch_size: 32}\n")



BAD = [
    (["reproduce", "nosuch"], "unknown study 'nosuch'; choose one of: autoencoders, balancing, decoding, "),
    (["reproduce", "hard-sharing", "--preset", "nosuch"], "unknown preset 'nosuch' for study hard_sharing"),
    (["reproduce", "hard-sharing", "--backend", "threads"], "unknown backend 'threads'"),
    (["reproduce", "hard-sharing", "--address", "127.0.0.1:9"], "--address is for the ray backend"),
    (["sweep", "CFG", "--grid", "train.lrr=1e-3,1e-4"], "unknown config key 'train.lrr'"),
    (["sweep", "CFG", "--grid", "train.lr=1e-3,fast"], "config key 'train.lr': Input should be a valid number"),
    (["sweep", "CFG", "--grid", "train.lr"], "is not key=value1,value2"),
    (["sweep", "CFG", "--grid", "store=a.sqlite,b.sqlite"], "cannot be swept"),
    (["train", "--config", "CFG", "--set", "train.lr=[1"], "override train.lr='[1'"),
    (["train", "--config", "CFG", "--set", "metrics.names=[mig, nosuch]"], "unknown metric 'nosuch'"),
    (["train", "--config", "CFG", "--set", "metrics.options={sap: {num_train: 10}}"], "not among metrics.names"),
    (["train", "--config", "CFG", "--set", "method.options={nosuch: 1}"], "ew: unknown option 'nosuch'"),
    (["train", "--config", "CFG", "--method", "nosuch"], "unknown method 'nosuch'"),
    (["train", "--config", "CFG", "--set", "train.seed=3"], "'train.seed' is set per cell from `seeds`"),
    (["train", "--config", "CFG", "--store", "AFILE/s.sqlite"], "is a file, not a folder"),
    (["train", "--config", "CFG", "--set", "single_tasks=[5]", "--set", "variants=[single_task]"],
     "single_tasks [5] are not task indices 0..1"),
    (["report", "nosuch", "--store", "STORE"], "neither a study"),
    (["train", "--config", "CFG", "--set", "variants=[random]", "--method", "mgda"], "random variant's encoder is frozen"),
    (["train", "--config", "CFG", "--set", "variants=[mtan]", "--method", "mgda", "--method-level", "feature"],
     "needs one shared representation that every path from the shared parameters to the losses crosses, and "
     "architecture mtan has none"),
    (["train", "--config", "CFG", "--set", "variants=[multi_head, mmoe]", "--method", "gradnorm"],
     "method gradnorm at level 'param' needs one last shared layer (GradNorm's W), and architecture mmoe has none"),
]


@pytest.mark.parametrize("argv, message", BAD, ids=[" ".join(a[:3]) + f" {i}" for i, (a, _) in enumerate(BAD)])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(argv, message, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text(TINY)
    (tmp_path / "afile").write_text("")
    store = tmp_path / "existing.sqlite"
    RunStore(store).close()
    argv = [{"CFG": "c.yaml", "AFILE/s.sqlite": "afile/s.sqlite", "STORE": str(store)}.get(a, a) for a in argv]
    code, _, err = run_cli(argv, capsys)
    assert code == 2 and message in err and err.count("\n") == 1, err
    # (reading the existing store may leave SQLite's -wal / -shm side files; no run, no new file)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(("-wal", "-shm"))) == [
        "afile", "c.yaml", "existing.sqlite"]
    assert RunStore(store).list_runs() == []


def test_a_ray_address_that_does_not_answer_is_one_line(tmp_path: Path, capsys, monkeypatch) -> None:
    pytest.importorskip("ray", reason="the Ray backend test needs the extra: pip install 'mtlens[ray]'")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text(TINY)
    code, _, err = run_cli(["train", "--config", "c.yaml", "--backend", "ray", "--address", "127.0.0.1:9"], capsys)
    assert code == 2 and "Ray address 127.0.0.1:9 does not answer" in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]


def test_readme_method_flags_mean_each_study_s_method_choice() -> None:
    # issue 9: `--method pcgrad --method-level feature` was rejected for balancing ("unknown config key 'method'")
    from mtlens.studies import STUDIES

    overrides = STUDIES.get("balancing").method_overrides("pcgrad", "feature")
    cfg = load_study_config("balancing/quick", overrides)
    assert [j.cell.name for j in plan([cfg])] == ["seed0/ew/param", "seed0/pcgrad/feature"]
    cfg = load_study_config("hard_sharing/quick", STUDIES.get("hard_sharing").method_overrides("pcgrad", "feature"))
    assert (cfg.method.name, cfg.method.level) == ("pcgrad", "feature")


def test_reproduce_list_names_every_study_and_preset(capsys) -> None:
    code, out, _ = run_cli(["reproduce", "--list"], capsys)
    assert code == 0
    for study, presets in {"hard-sharing": ["paper", "quick"], "balancing": ["multimnist", "paper", "quick"]}.items():
        for preset in presets:
            assert any(line.split("│")[1:3] and study in line and f" {preset} " in line for line in out.splitlines())
    assert "expected wall time" in out


def test_reproduce_runs_a_shipped_preset_from_any_folder(tmp_path: Path) -> None:
    # A fresh interpreter in an empty folder: the preset comes from the package, not from a repository checkout.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "OMP_NUM_THREADS": "1"}
    tiny = ["--set", "data.dataset=tiny", "--set", "data.subset=96", "--set", "data.n_tasks=2",
            "--set", "variants=[multi_head, random]", "--set", "train.epochs=1", "--set", "metrics.names=[]",
            "--set", "metrics.options={}", "--set", "model.head_hidden=[16]"]
    proc = subprocess.run([sys.executable, "-m", "mtlens", "reproduce", "hard-sharing", "--preset", "quick",
                           "--backend", "serial", "--quiet", *tiny], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "2 cells finished, 0 failed" in proc.stdout
    assert "report: runs/reports/hard_sharing_quick/report.html" in proc.stdout
    assert (tmp_path / "runs" / "reports" / "hard_sharing_quick" / "report.html").is_file()


def test_the_wheel_ships_the_presets_and_published_numbers(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                           str(tmp_path), str(root)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PIP_NO_INDEX": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    [wheel] = tmp_path.glob("mtlens-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for member in ("hard_sharing/quick.yaml", "hard_sharing/paper.yaml", "balancing/quick.yaml",
                   "balancing/paper.yaml", "published/seed000.yaml", "published/seed004.yaml", "wall_times.yaml"):
        assert f"mtlens/configs/{member}" in names


def test_report_rerenders_a_study_from_the_store_alone(ported, tmp_path: Path, capsys) -> None:
    first = ported["hard_sharing"]
    [run_id] = [r.id for r in RunStore(first.store).list_runs() if r.name == "seed0/multi_head"]
    code, out, _ = run_cli(["report", run_id, "--store", str(first.store), "--out", str(tmp_path / "again")], capsys)
    assert code == 0 and out.strip() == f"report: {tmp_path / 'again' / 'report.html'}"
    old = first.result.report_html.with_suffix(".md").read_text().split("## Provenance")[0]
    new = (tmp_path / "again" / "report.md").read_text().split("## Provenance")[0]
    assert new == old


def test_a_script_without_a_main_guard_runs_on_the_pool(tmp_path: Path) -> None:
    # Spawned workers must not re-run the user's script (it would start the study again in every worker).
    (tmp_path / "s.py").write_text(
        "from mtlens.studies import load_study_config, run_study\n"
        "cfg = load_study_config('hard_sharing/quick', ['train.epochs=1', 'data.dataset=tiny', 'data.n_tasks=2',\n"
        "    'data.subset=96', 'variants=[multi_head, random]', 'metrics.names=[]', 'metrics.options={}',\n"
        "    'model.head_hidden=[16]'])\n"
        "result = run_study(cfg, backend='pool', workers=2, threads=1, display=False)\n"
        "print(result.finished, result.failed)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "s.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0 and proc.stdout.split() == ["2", "0"], proc.stderr[-2000:]
